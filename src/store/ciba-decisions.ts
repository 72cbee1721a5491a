/**
 * The citizen's answers to backchannel authentication requests (`ciba_decisions`): one per request,
 * keyed by a keyed hash of its auth_req_id. `claim` is the single step that decides a request; a
 * second answer (the form sent twice, an approval racing a denial at another instance) is refused.
 */
import type { Db } from './db.js';

export type CibaDecision = 'approved' | 'denied';

export interface CibaDecisionRepository {
  /** Records the answer; false (nothing written) when the request was answered already. */
  claim(input: { requestHash: string; accountId: string; clientId: string; decision: CibaDecision; expiresAt: number }): Promise<boolean>;
  /** Takes back an answer the engine could not be told (so the citizen may answer again). */
  release(requestHash: string, decision: CibaDecision): Promise<void>;
  /** The answers given to these requests, by request hash. */
  decided(requestHashes: readonly string[]): Promise<Map<string, CibaDecision>>;
  /** Deletes the answers whose request expired before `at`. */
  purgeExpired(at?: number): Promise<number>;
}

export function createCibaDecisionRepository(db: Db, now: () => number = Date.now): CibaDecisionRepository {
  return {
    async claim(input) {
      const inserted = (await db('ciba_decisions')
        .insert({
          request_hash: input.requestHash,
          account_id: input.accountId,
          client_id: input.clientId,
          decision: input.decision,
          decided_at: now(),
          expires_at: input.expiresAt,
        })
        .onConflict('request_hash')
        .ignore()
        .returning('request_hash')) as unknown[];
      return inserted.length === 1;
    },
    async release(requestHash, decision) {
      await db('ciba_decisions').where({ request_hash: requestHash, decision }).delete();
    },
    async decided(requestHashes) {
      if (requestHashes.length === 0) return new Map();
      const rows = (await db('ciba_decisions').whereIn('request_hash', [...requestHashes]).select('request_hash', 'decision')) as { request_hash: string; decision: CibaDecision }[];
      return new Map(rows.map((r) => [r.request_hash, r.decision]));
    },
    async purgeExpired(at = now()) {
      return db('ciba_decisions').where('expires_at', '<=', at).delete();
    },
  };
}
