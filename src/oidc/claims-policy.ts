/**
 * What a service may receive about a citizen. A claim is released only when the service is
 * registered for a scope that covers it (whatever the `claims` parameter asks for) and the citizen
 * has not refused it to that service. oidc-provider releases what the grant and the `claims`
 * parameter cover; this policy is applied on top of it, where the account's claims are read
 * (accounts.ts), on the consent page (interactions/consent.ts) and in the account portal.
 */

/** Which claims each scope releases (OpenID Connect Core §5.4). */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['preferred_username', 'name', 'given_name', 'family_name', 'birthdate', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  /** The national identifier: only for clients allowed this scope, and only with explicit consent. */
  jmbg: ['jmbg'],
} as const;

/** The citizen's national identifier: never required, released only when ticked explicitly. */
export const NATIONAL_ID_CLAIM = 'jmbg';

/** Scopes of a service registered without any: the everyday ones, never the national identifier. */
const UNREGISTERED_SCOPES = ['openid', 'profile', 'email'];

interface ClientLike {
  readonly scope?: string | undefined;
}

/** The scopes a service is registered for. */
export function registeredScopes(client: ClientLike | undefined): string[] {
  if (!client) return ['openid'];
  return typeof client.scope === 'string' ? client.scope.split(' ').filter(Boolean) : UNREGISTERED_SCOPES;
}

/** The personal claims the scopes cover. */
export function claimsOfScopes(scopes: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const scope of scopes) for (const claim of SCOPE_CLAIMS[scope as keyof typeof SCOPE_CLAIMS] ?? []) out.add(claim);
  return out;
}

/** Claims that may be released inside `verified_claims` (identity/verified-claims.ts). */
const VERIFIABLE_CLAIMS = ['given_name', 'family_name', 'birthdate', 'jmbg'];

/**
 * The claims a service may ever receive: those its registered scopes cover, and `verified_claims`
 * when they cover a claim that can be verified (what goes inside is cut down claim by claim).
 */
export function receivableClaims(client: ClientLike | undefined): Set<string> {
  const out = claimsOfScopes(registeredScopes(client));
  if (VERIFIABLE_CLAIMS.some((c) => out.has(c))) out.add('verified_claims');
  return out;
}

/**
 * An account's claims cut down to what may go to the service: `sub`, and the claims its registered
 * scopes cover that the citizen has not refused to it.
 */
export function releasableClaims(claims: Record<string, unknown>, client: ClientLike | undefined, refused: ReadonlySet<string>): Record<string, unknown> {
  const receivable = receivableClaims(client);
  const out: Record<string, unknown> = {};
  for (const [claim, value] of Object.entries(claims)) {
    if (claim === 'sub' || (receivable.has(claim) && !refused.has(claim))) out[claim] = value;
  }
  return out;
}
