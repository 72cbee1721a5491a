/**
 * One fixed PKCE pair (RFC 7636 Appendix B) for tests and benchmarks whose subject is not PKCE:
 * Kapija requires S256 of every client, so every authorization request carries the challenge and
 * every code exchange the verifier.
 */
export const TEST_PKCE = {
  verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
  challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
} as const;

/** The authorization request parameters of TEST_PKCE. */
export const PKCE_CHALLENGE = { code_challenge: TEST_PKCE.challenge, code_challenge_method: 'S256' } as const;

/** Adds TEST_PKCE's verifier to an authorization_code grant that names none. */
export function withVerifier<T extends Record<string, string>>(params: T): T {
  return params.grant_type === 'authorization_code' && params.code_verifier === undefined ? { ...params, code_verifier: TEST_PKCE.verifier } : params;
}
