/**
 * After an identity's level drops (revocation), the sessions signed in above what it now supports
 * end at once: their grants and tokens are revoked and the services are told by back-channel logout.
 * Offline access outlives its session, so the grants whose refresh or access tokens assert more
 * than the identity now supports are revoked too.
 */
import { levelOfAcr, rank } from '../assurance/levels.js';
import type { SessionService } from '../oidc/sessions.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import { honestLevel, type IdentityLevel } from './levels.js';

export async function endSessionsAbove(sessions: SessionService, accountId: string, level: IdentityLevel): Promise<number> {
  const ceiling = honestLevel('high', level);
  let ended = 0;
  for (const s of await sessions.listForAccount(accountId)) {
    const at = levelOfAcr(s.acr) ?? 'low';
    if (rank(at) > rank(ceiling) && (await sessions.end(s.id, { accountId }))) ended += 1;
  }
  return ended;
}

/** Revokes every grant of the account holding a token whose acr is above what `level` supports. */
export async function revokeGrantsAbove(payloads: Pick<OidcPayloadRepository, 'listByAccount' | 'revokeByGrantId'>, accountId: string, level: IdentityLevel): Promise<number> {
  const ceiling = honestLevel('high', level);
  const grants = new Set<string>();
  for (const model of ['RefreshToken', 'AccessToken']) {
    for (const token of await payloads.listByAccount(accountId, model)) {
      const at = levelOfAcr(token.payload.acr) ?? 'low';
      if (token.grantId && rank(at) > rank(ceiling)) grants.add(token.grantId);
    }
  }
  for (const grantId of grants) await payloads.revokeByGrantId(grantId);
  return grants.size;
}

/**
 * Where no engine runs (the CLI): deletes the stored sessions signed in above what `level` supports and
 * revokes the grants above it. The services are not told by back-channel logout (that needs the
 * engine); their tokens stop working with the grants.
 */
export async function dropStoredSessionsAbove(payloads: Pick<OidcPayloadRepository, 'listByAccount' | 'revokeByGrantId' | 'destroy'>, accountId: string, level: IdentityLevel): Promise<number> {
  const ceiling = honestLevel('high', level);
  let dropped = 0;
  for (const session of await payloads.listByAccount(accountId, 'Session')) {
    if (rank(levelOfAcr(session.payload.acr) ?? 'low') <= rank(ceiling)) continue;
    await payloads.destroy('Session', session.id);
    dropped += 1;
  }
  await revokeGrantsAbove(payloads, accountId, level);
  return dropped;
}
