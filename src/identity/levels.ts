/**
 * Identity assurance levels and the rule that ties them to the acr Kapija asserts.
 *
 * Under eIDAS (Implementing Regulation (EU) 2015/1502) a level of assurance covers enrolment
 * (identity proofing and verification) as well as authentication: whatever the factors, a
 * self-registered identity is at most low. So the level asserted is the lower of the two.
 *
 *   none         nobody checked who registered (self-registration)
 *   low          an attribute was checked remotely (e.g. an activation letter to a registered address)
 *   substantial  a document was checked (at a counter) against the person or remotely with evidence
 *   high         a document was checked in person at a counter, or the ID card's qualified certificate
 */
import { LEVELS, rank, type AcrLevel } from '../assurance/levels.js';

export type IdentityLevel = 'none' | AcrLevel;
export const IDENTITY_LEVELS: readonly IdentityLevel[] = ['none', 'low', 'substantial', 'high'];

export const isIdentityLevel = (v: unknown): v is IdentityLevel => typeof v === 'string' && (IDENTITY_LEVELS as readonly string[]).includes(v);

/** Rank of an identity level: none 0, low 1, substantial 2, high 3. */
export const identityRank = (level: IdentityLevel) => IDENTITY_LEVELS.indexOf(level);

/**
 * The level to assert: the lower of the authentication level and the identity level. There is no
 * acr below low, so an unproofed identity yields low (which says nothing about who the person is).
 */
export function honestLevel(authentication: AcrLevel, identity: IdentityLevel): AcrLevel {
  const identityAsAcr: AcrLevel = identity === 'none' ? 'low' : identity;
  return rank(identityAsAcr) < rank(authentication) ? identityAsAcr : authentication;
}

/** Whether an identity at `identity` supports a sign-in at `needed` (the identity half of the rule). */
export function identitySupports(identity: IdentityLevel, needed: AcrLevel): boolean {
  return needed === 'low' || identityRank(identity) >= identityRank(needed);
}

export { LEVELS };
