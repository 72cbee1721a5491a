/**
 * oidc-provider's `findAccount`: the claims a service may receive. oidc-provider then releases only
 * the claims that the granted scopes (or the `claims` parameter, within the grant) cover.
 */
import type { FindAccount } from 'oidc-provider';
import type { AccountRepository, Account } from '../store/accounts.js';

/** Which claims each scope releases (OpenID Connect Core §5.4). */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['preferred_username', 'name', 'given_name', 'family_name', 'birthdate', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  /** The national identifier: only for clients allowed this scope, and only with explicit consent. */
  jmbg: ['jmbg'],
} as const;

export function accountClaims(account: Account): Record<string, unknown> {
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
    jmbg: account.jmbg ?? undefined,
  };
}

/**
 * `readAlong` answers for an account this request already read with the token it holds
 * (oidc/adapter.ts), so a token, refresh or userinfo request reads the account no second time.
 */
export function createFindAccount(accounts: AccountRepository, readAlong?: (id: string) => { account: Account | undefined } | undefined): FindAccount {
  return async (_ctx, id) => {
    const kept = readAlong?.(id);
    const account = kept ? kept.account : await accounts.findById(id);
    if (!account || account.status !== 'active') return undefined;
    return { accountId: account.id, claims: async () => ({ ...accountClaims(account), sub: account.id }) };
  };
}

/**
 * Pairwise subject identifiers (OpenID Connect Core §8.1): a keyed hash of sector and account under
 * a subkey of the master key, stable across instances and restarts, unlinkable between sectors.
 */
export function createPairwiseSubject(mac: (purpose: string, data: string) => string): (sector: string, accountId: string) => string {
  return (sector, accountId) => mac('pairwise-sub', `${sector.toLowerCase()}|${accountId}`);
}
