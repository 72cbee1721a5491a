/**
 * Authentication of the admin API: a bearer access token issued by Kapija itself, looked up
 * in-process. It must carry the kapija:admin scope, come from a client registered with that scope,
 * belong to an active account with a role, and not be sender-constrained (DPoP is not accepted here).
 * As in the console, the sign-in behind the token must have reached ADMIN_MIN_ACR, and a change
 * needs one from the last 10 minutes (the token's acr and auth_time, see extraTokenClaims); else the
 * answer is a step-up challenge (RFC 9470: 401, error="insufficient_user_authentication").
 */
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { KapijaError } from '../errors.js';
import { ACR, levelOfAcr, rank, type AcrLevel } from '../oidc/acr.js';
import type { AccountRepository } from '../store/accounts.js';
import type { RoleRepository } from '../store/roles.js';
import { honestLevel, type IdentityLevel } from '../identity/levels.js';
import { ADMIN_REAUTH_SECONDS, ADMIN_SCOPE, type Actor } from './service.js';

const REALM = 'Bearer realm="kapija-admin"';

function challenge(ctx: Context, error?: string, extra = ''): void {
  ctx.set('www-authenticate', error ? `${REALM}, error="${error}"${extra}` : REALM);
}

/** How and when the token's holder signed in, kept for {@link requireFreshSignIn}. */
interface SignInOfToken {
  readonly authTime: number | undefined;
}

function stepUp(ctx: Context, code: 'admin.step_up_required' | 'admin.reauthenticate', params: string): KapijaError {
  challenge(ctx, 'insufficient_user_authentication', `, error_description="${code === 'admin.reauthenticate' ? 'a more recent sign-in is required' : 'a higher level of assurance is required'}", ${params}`);
  return new KapijaError(code, 401);
}

/** A change needs a sign-in from the last {@link ADMIN_REAUTH_SECONDS} (RFC 9470 max_age). */
export function requireFreshSignIn(ctx: Context, now = Date.now()): void {
  const { authTime } = ctx.state.adminSignIn as SignInOfToken;
  if (authTime === undefined || Math.floor(now / 1000) - authTime > ADMIN_REAUTH_SECONDS) {
    throw stepUp(ctx, 'admin.reauthenticate', `max_age=${ADMIN_REAUTH_SECONDS}`);
  }
}

/**
 * `identityLevel`: the identity level in force for an account; a token whose acr is above what the
 * identity now supports (its proofing expired after the sign-in) counts as below the level.
 */
export function bearerAuth(deps: { provider: Provider; accounts: AccountRepository; roles: RoleRepository; minAcr: AcrLevel; identityLevel?: ((accountId: string) => Promise<IdentityLevel>) | undefined }) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(ctx.get('authorization'));
    if (!m) {
      challenge(ctx);
      throw new KapijaError('admin.unauthenticated', 401);
    }
    const token = await deps.provider.AccessToken.find(m[1]!);
    if (!token || token.isExpired || token.isSenderConstrained()) {
      challenge(ctx, 'invalid_token');
      throw new KapijaError('admin.unauthenticated', 401);
    }
    const scopes = String(token.scope ?? '').split(' ');
    const client = token.clientId ? await deps.provider.Client.find(token.clientId) : undefined;
    // The scope only counts when the client was registered for it: a service that happened to be
    // registered without a scope list must not obtain administration rights.
    const clientScopes = String(client?.scope ?? '').split(' ');
    if (!scopes.includes(ADMIN_SCOPE) || !clientScopes.includes(ADMIN_SCOPE)) {
      challenge(ctx, 'insufficient_scope', `, scope="${ADMIN_SCOPE}"`);
      throw new KapijaError('admin.forbidden', 403);
    }
    const account = token.accountId ? await deps.accounts.findById(token.accountId) : undefined;
    const roles = account && account.status === 'active' ? await deps.roles.rolesOf(account.id) : [];
    if (!account || roles.length === 0) throw new KapijaError('admin.forbidden', 403);
    const extra = (token.extra ?? {}) as { acr?: unknown; auth_time?: unknown };
    const level = levelOfAcr(extra.acr);
    const supported = level && deps.identityLevel ? rank(level) <= rank(honestLevel('high', await deps.identityLevel(account.id))) : true;
    if (!level || rank(level) < rank(deps.minAcr) || !supported) {
      throw stepUp(ctx, 'admin.step_up_required', `acr_values="${ACR[deps.minAcr]}"`);
    }
    ctx.state.adminSignIn = { authTime: typeof extra.auth_time === 'number' ? extra.auth_time : undefined } satisfies SignInOfToken;
    const actor: Actor = { accountId: account.id, role: roles.includes('admin') ? 'admin' : 'auditor', ip: ctx.ip || null };
    ctx.state.actor = actor;
    await next();
  };
}
