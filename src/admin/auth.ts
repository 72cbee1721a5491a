/**
 * Authentication of the admin API: a bearer access token issued by Kapija itself, looked up
 * in-process. It must carry the kapija:admin scope, come from a client registered with that scope,
 * belong to an active account with a role, and not be sender-constrained (DPoP is not accepted here).
 */
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { KapijaError } from '../errors.js';
import type { AccountRepository } from '../store/accounts.js';
import type { RoleRepository } from '../store/roles.js';
import { ADMIN_SCOPE, type Actor } from './service.js';

const REALM = 'Bearer realm="kapija-admin"';

function challenge(ctx: Context, error?: string, extra = ''): void {
  ctx.set('www-authenticate', error ? `${REALM}, error="${error}"${extra}` : REALM);
}

export function bearerAuth(deps: { provider: Provider; accounts: AccountRepository; roles: RoleRepository }) {
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
    const actor: Actor = { accountId: account.id, role: roles.includes('admin') ? 'admin' : 'auditor', ip: ctx.ip || null };
    ctx.state.actor = actor;
    await next();
  };
}
