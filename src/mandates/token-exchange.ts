/**
 * Token exchange (RFC 8693) for mandates, at the token endpoint as the grant type
 * `urn:ietf:params:oauth:grant-type:token-exchange` (oidc-provider has none built in).
 *
 * A service that accepts representation, holding a representative's access token of its own
 * (`subject_token`, type access_token), exchanges it for one that acts for a principal, named by
 * `requested_subject`: the principal's pairwise `sub` at this service (which the service learnt
 * from an earlier sign-in under the mandate). The mandate must be in force for this service; the new
 * token belongs to a new grant of the representative bound to the mandate, so it answers (userinfo)
 * with the principal's `sub` and the representative's `act` (represented-account.ts), and stops the
 * moment the mandate is withdrawn or expires. Its scope is at most the subject token's. Refused
 * without a mandate, for another service's token, for a token already acting for someone, and for
 * services that did not opt in, and for a representative whose account is no longer active. Each
 * exchange is a use in both ledgers.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { MandateService } from './service.js';
import { representable } from './represented-account.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface TokenExchangeDeps {
  mandates: MandateService;
  /** The pairwise subject of an account for the request's client. */
  subjectFor(ctx: KoaContextWithOIDC, accountId: string): Promise<string>;
  /** Whether the account is active (not locked, disabled or deleted). */
  activeAccount(accountId: string): Promise<boolean>;
}

export function registerTokenExchange(provider: Provider, deps: TokenExchangeDeps): void {
  const handler = async (ctx: KoaContextWithOIDC) => {
    const client = ctx.oidc.client!;
    const params = ctx.oidc.params as Record<string, unknown>;
    if (!representable(client)) throw new errors.UnauthorizedClient('this service does not accept representation');
    if (params['subject_token_type'] !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token_type must be urn:ietf:params:oauth:token-type:access_token');
    const subjectToken = params['subject_token'];
    const requested = params['requested_subject'];
    if (typeof subjectToken !== 'string' || !subjectToken) throw new errors.InvalidRequest('subject_token is required');
    if (typeof requested !== 'string' || !requested) throw new errors.InvalidRequest('requested_subject is required');
    const { AccessToken, Grant } = ctx.oidc.provider;
    const at = await AccessToken.find(subjectToken);
    // Only this service's own, live token of a signed-in citizen (not one acting for someone already).
    if (!at || at.isExpired || at.clientId !== client.clientId || !at.accountId || !at.grantId) throw new errors.InvalidGrant('subject_token is not valid');
    if (await deps.mandates.representationOf(at.grantId, client.clientId)) throw new errors.InvalidGrant('subject_token already acts for someone');
    // The representative's account must still be active (not locked, disabled or deleted): a token of
    // a grant no browser session holds (CIBA, device) outlives the sessions a lock ends.
    if (!(await deps.activeAccount(at.accountId))) throw new errors.InvalidGrant('subject_token is not valid');
    const representativeId = at.accountId;
    let mandate;
    for (const m of await deps.mandates.usableFor(representativeId, client.clientId)) {
      if ((await deps.subjectFor(ctx, m.principalId)) === requested) {
        mandate = m;
        break;
      }
    }
    if (!mandate) throw new errors.InvalidGrant('no mandate in force lets this subject act for requested_subject at this service');
    const original = await Grant.find(at.grantId);
    if (!original || original.accountId !== representativeId) throw new errors.InvalidGrant('subject_token is not valid');
    const grant = new Grant({ accountId: representativeId, clientId: client.clientId });
    const scope = [...(at.scopes ?? [])].filter((s) => s !== 'offline_access').join(' ');
    if (scope) grant.addOIDCScope(scope);
    const claims = original.getOIDCClaims();
    if (claims.length) grant.addOIDCClaims(claims);
    const rejected = original.getRejectedOIDCClaims();
    if (rejected.length) grant.rejectOIDCClaims(rejected);
    const grantId = await grant.save();
    await deps.mandates.bindGrant(grantId, mandate);
    const token = new AccessToken({ accountId: representativeId, client, grantId, gty: 'token-exchange', scope: scope || undefined });
    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();
    await deps.mandates.recordUse(mandate, client.clientId, 'token_exchange');
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      ...(scope ? { scope } : {}),
      act: { sub: await deps.subjectFor(ctx, representativeId) },
      mandate_id: mandate.id,
    };
  };
  (provider.registerGrantType as unknown as (name: string, h: (ctx: KoaContextWithOIDC) => Promise<void>, params: string[]) => void).call(provider, TOKEN_EXCHANGE, handler, [
    'subject_token',
    'subject_token_type',
    'requested_subject',
    'requested_token_type',
    'scope',
  ]);
}
