/**
 * The counters of the throttles (`rate_limits`, in rate-limiter-flexible's own layout: key, points,
 * expire in epoch ms). The throttles read and write them through the library; this removes the
 * expired ones, with Kapija's other expired rows.
 */
import type { Db } from './db.js';

export interface RateLimitRepository {
  /** Deletes the counters (and locks) that ended before `at` (the library's clock: epoch ms). */
  purgeExpired(at?: number): Promise<number>;
}

export function createRateLimitRepository(db: Db, now: () => number = Date.now): RateLimitRepository {
  return {
    async purgeExpired(at = now()) {
      return db('rate_limits').where('expire', '<', at).delete();
    },
  };
}
