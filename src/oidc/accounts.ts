/**
 * oidc-provider's `findAccount`: the claims a service may receive. oidc-provider then releases only
 * the claims that the granted scopes (or the `claims` parameter, within the grant) cover; before
 * that, claims-policy.ts leaves out what the service is not registered for and what the citizen
 * refused to it, whatever the request or the grant says.
 */
import type { FindAccount } from 'oidc-provider';
import type { AccountRepository, Account } from '../store/accounts.js';
import { releasableClaims } from './claims-policy.js';
import type { VerifiedIdentity } from '../store/identities.js';
import { buildVerifiedClaims } from '../identity/verified-claims.js';
import { honestLevel } from '../identity/levels.js';
import { levelOfAcr, rank } from './acr.js';

export { SCOPE_CLAIMS } from './claims-policy.js';

/**
 * The claims of an account: its self-asserted profile, and the JMBG only from a verified identity
 * in force (a national identifier typed at registration proves nothing and is never released).
 */
export function accountClaims(account: Account, identity?: VerifiedIdentity): Record<string, unknown> {
  const name = [account.givenName, account.familyName].filter(Boolean).join(' ');
  return {
    sub: account.id,
    preferred_username: account.username,
    name: name || undefined,
    given_name: account.givenName ?? undefined,
    family_name: account.familyName ?? undefined,
    birthdate: account.birthdate ?? undefined,
    locale: account.locale ?? undefined,
    updated_at: Math.floor(account.updatedAt.getTime() / 1000),
    email: account.email ?? undefined,
    email_verified: account.email ? account.emailVerified : undefined,
    jmbg: identity && identity.level !== 'none' ? identity.attributes.jmbg : undefined,
  };
}

/**
 * `readAlong` answers for an account this request already read with the token it holds
 * (oidc/adapter.ts), so a token, refresh or userinfo request reads the account no second time.
 * `refusals` gives the claims the citizen refused to a service (store/consent-refusals.ts).
 */
export function createFindAccount(
  accounts: Pick<AccountRepository, 'findById'>,
  readAlong?: (id: string) => { account: Account | undefined } | undefined,
  refusals?: (accountId: string, clientId: string) => Promise<ReadonlySet<string>>,
  identity?: (accountId: string) => Promise<VerifiedIdentity | undefined>,
): FindAccount {
  return async (ctx, id, token) => {
    const kept = readAlong?.(id);
    const account = kept ? kept.account : await accounts.findById(id);
    if (!account || account.status !== 'active') return undefined;
    // A grant (refresh token, code) that asserts more than the identity now supports (its proofing
    // expired since; revocation already revoked such grants) issues nothing: the engine answers
    // invalid_grant. Only a grant above low needs the identity read.
    const asserted = levelOfAcr((token as { acr?: unknown } | undefined)?.acr);
    if (identity && asserted && asserted !== 'low' && rank(asserted) > rank(honestLevel('high', (await identity(account.id))?.level ?? 'none'))) return undefined;
    return {
      accountId: account.id,
      claims: async (_use, scope, requested, rejected) => {
        const client = ctx?.oidc?.client;
        const verifiedRequest = (requested as Record<string, unknown> | undefined)?.['verified_claims'];
        // The verified identity is read only when the service may receive something of it.
        const verified = identity && client && (verifiedRequest !== undefined || releasableClaims({ jmbg: true }, client, new Set()).jmbg) ? await identity(account.id) : undefined;
        const receivable = releasableClaims(accountClaims(account, verified), client, new Set());
        const needsRefusals = client && refusals && (verifiedRequest !== undefined || !Object.keys(receivable).every((c) => c === 'sub'));
        // Only `sub` (or nothing the service may have): no refusal to look up.
        const refused = needsRefusals ? await refusals(account.id, client.clientId) : new Set<string>();
        const released = { ...releasableClaims(receivable, client, refused), sub: account.id };
        const verifiedClaims = buildVerifiedClaims({
          identity: verified,
          request: verifiedRequest,
          grantedScope: scope,
          allowed: (claim) => claim in releasableClaims({ [claim]: true }, client, refused),
          rejected: rejected ?? [],
        });
        return verifiedClaims ? { ...released, verified_claims: verifiedClaims } : released;
      },
    };
  };
}

/**
 * Pairwise subject identifiers (OpenID Connect Core §8.1): a keyed hash of sector and account under
 * a subkey of the master key, stable across instances and restarts, unlinkable between sectors.
 */
export function createPairwiseSubject(mac: (purpose: string, data: string) => string): (sector: string, accountId: string) => string {
  return (sector, accountId) => mac('pairwise-sub', `${sector.toLowerCase()}|${accountId}`);
}
