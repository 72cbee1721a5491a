/**
 * The counters of the throttles (`rate_limits`, in rate-limiter-flexible's own layout: key, points,
 * expire in epoch ms). The throttles (security/rate-limit.ts) count through {@link RateLimitRepository.counter},
 * which hands the table to the library; {@link RateLimitRepository.purgeExpired} removes the expired
 * ones, with Kapija's other expired rows.
 */
import { RateLimiterPostgres, RateLimiterSQLite, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { StoredCounter, ThrottleStorage } from '../security/rate-limit.js';
import { isPostgres, type Db } from './db.js';

export interface RateLimitRepository extends Required<Pick<ThrottleStorage, 'readMany' | 'deleteMany'>> {
  /** One tier's counters under `keyPrefix`, kept in `rate_limits` and shared by every instance. */
  counter(options: { keyPrefix: string; points: number; duration: number; blockDuration: number }): RateLimiterAbstract;
  /** Deletes the counters (and locks) that ended before `at` (the library's clock: epoch ms). */
  purgeExpired(at?: number): Promise<number>;
}

export function createRateLimitRepository(db: Db, now: () => number = Date.now): RateLimitRepository {
  const pg = isPostgres(db);
  return {
    counter(tier) {
      // The `rate_limits` table is created by a migration (the library's own "create table if not
      // exists" races between instances starting together on an empty PostgreSQL database).
      const options = {
        storeClient: db,
        storeType: 'knex',
        tableName: 'rate_limits',
        tableCreated: true,
        ...tier,
        clearExpiredByTimeout: false,
      };
      return pg ? new RateLimiterPostgres(options) : new RateLimiterSQLite(options as ConstructorParameters<typeof RateLimiterSQLite>[0]);
    },
    // The library's own condition for a live counter (its clock is Date.now(), as here).
    async readMany(keys) {
      const rows: Array<{ key: string; points: number | string; expire: number | string | null }> = await db('rate_limits')
        .select('key', 'points', 'expire')
        .whereIn('key', keys)
        .andWhere((q) => q.where('expire', '>', Date.now()).orWhereNull('expire'));
      return new Map<string, StoredCounter>(rows.map((r) => [r.key, { points: Number(r.points), expire: r.expire === null ? null : Number(r.expire) }]));
    },
    async deleteMany(keys) {
      await db('rate_limits').whereIn('key', keys).delete();
    },
    async purgeExpired(at = now()) {
      return db('rate_limits').where('expire', '<', at).delete();
    },
  };
}
