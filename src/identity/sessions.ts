/**
 * After an identity's level drops (revocation), the sessions signed in above what it now supports
 * end at once: their grants and tokens are revoked and the services are told by back-channel logout.
 */
import { levelOfAcr, rank } from '../assurance/levels.js';
import type { SessionService } from '../oidc/sessions.js';
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
