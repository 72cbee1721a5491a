/**
 * oidc-provider's `findAccount` for tokens made under a mandate. The login, the session, the grant
 * and every token stay the representative's (their factors, their session: the engine's checks that
 * a token, its grant and its account agree hold unchanged); a token whose grant was made under a
 * mandate (mandate_grants), for a pairwise service that accepts representation, is answered with:
 *
 * - `sub` the principal's pairwise subject: the engine derives `sub` from the account id through
 *   the pairwise identifier, which for this request gives the principal's ({@link representedSubject});
 * - `act: { sub }`, the representative's pairwise subject (RFC 8693 §4.1), `mandate_id` and
 *   `mandate_purposes`;
 * - the principal's claims, released under the principal's own refusals (accounts.ts), and each
 *   release recorded in the principal's ledger;
 * - the mandate checked at every use: withdrawn or expired, the account is not found, so the token
 *   endpoint answers invalid_grant and userinfo invalid_token from that moment on.
 *
 * Lookups without a token (the authorization endpoint), services that did not opt in and services
 * with public subject identifiers (which could not be told two subjects apart) are answered as before.
 */
import Provider, { type FindAccount, type KoaContextWithOIDC } from 'oidc-provider';
import type { MandateService } from './service.js';

type SubjectClient = { clientId: string; subjectType?: string; sectorIdentifier?: string; metadata(): Record<string, unknown> };

export interface RepresentationDeps {
  mandates: MandateService;
  /** The pairwise subject of an account for a client (the request's, unless given), as the engine derives it. */
  subjectFor(ctx: KoaContextWithOIDC, accountId: string, client?: SubjectClient): Promise<string>;
}

/** Per request: the representative's account id and the principal's, once findAccount found a token made under a mandate. */
const representing = new WeakMap<object, { representative: string; principal: string }>();

/**
 * The account whose pairwise subject the engine should derive for `accountId` in the current
 * request: the principal's when the request answers a token the representative holds for them.
 */
export function representedSubject(accountId: string): string {
  const ctx = Provider.ctx as object | undefined;
  const r = ctx ? representing.get(ctx) : undefined;
  return r && r.representative === accountId ? r.principal : accountId;
}

/** Whether a client takes tokens acting for someone: it opted in and its subjects are pairwise. */
export const representable = (client: { metadata(): Record<string, unknown>; subjectType?: string } | undefined): boolean =>
  Boolean(client && client.metadata()['kapija_accepts_representation'] === true && client.subjectType === 'pairwise');

export function withRepresentation(inner: FindAccount, deps: RepresentationDeps): FindAccount {
  return async (ctx, id, token) => {
    const client = ctx?.oidc?.client;
    const grantId = (token as { grantId?: string } | undefined)?.grantId;
    if (!grantId || !representable(client)) return inner(ctx, id, token);
    const representation = await deps.mandates.representationOf(grantId, client!.clientId);
    if (!representation) return inner(ctx, id, token);
    // A grant made under a mandate is never the representative's own: once the mandate ended, nobody is found.
    if (!('mandate' in representation)) return undefined;
    const m = representation.mandate;
    if (m.representativeId !== id) return undefined;
    const [principal, representative] = await Promise.all([inner(ctx, m.principalId), inner(ctx, id)]);
    if (!principal || !representative) return undefined;
    const act = { sub: await deps.subjectFor(ctx, id) };
    representing.set(ctx, { representative: id, principal: m.principalId });
    // The data released is the principal's: its ledger entry goes to the principal (oidc/provider.ts releaseOf).
    const state = ctx.state as { kapijaDataSubject?: Record<string, string> };
    state.kapijaDataSubject = { ...state.kapijaDataSubject, [id]: m.principalId };
    return {
      accountId: id,
      claims: async (use, scope, claims, rejected) => ({
        ...(await principal.claims(use, scope, claims, rejected)),
        act,
        mandate_id: m.id,
        mandate_purposes: [...m.purposes],
      }),
    };
  };
}

/**
 * Token introspection (RFC 7662) of a token made under a mandate, as oidc-provider's introspection
 * `allowedPolicy` step: false (answered `active: false`) once the mandate ended; otherwise the
 * answer carries the principal's `sub` (for the token's service), `act` and `mandate_id`, like
 * userinfo. Other tokens are left as they are (true).
 */
export function representationIntrospection(deps: RepresentationDeps) {
  return async (ctx: KoaContextWithOIDC, token: { grantId?: string; clientId?: string; accountId?: string; extra?: Record<string, unknown> }): Promise<boolean> => {
    const { grantId, clientId, accountId } = token;
    if (!grantId || !clientId || !accountId) return true;
    const client = await ctx.oidc.provider.Client.find(clientId);
    if (!client || !representable(client)) return true;
    const representation = await deps.mandates.representationOf(grantId, clientId);
    if (!representation) return true;
    if (!('mandate' in representation) || representation.mandate.representativeId !== accountId) return false;
    const m = representation.mandate;
    representing.set(ctx, { representative: accountId, principal: m.principalId });
    const state = ctx.state as { kapijaDataSubject?: Record<string, string> };
    state.kapijaDataSubject = { ...state.kapijaDataSubject, [accountId]: m.principalId };
    token.extra = { ...token.extra, act: { sub: await deps.subjectFor(ctx, accountId, client) }, mandate_id: m.id };
    return true;
  };
}
