/**
 * Throttling of sign-in attempts (password, TOTP, recovery codes) with rate-limiter-flexible, stored
 * in the database so it holds across every instance. Failures are counted per account name (known
 * or not: an unknown username is throttled exactly like a known one) and per client IP. Delays grow
 * in tiers, then a temporary lock:
 *   5 failures in 15 min → wait 1 min; 10 in 1 h → 15 min; 20 in 24 h → 1 h  (per account name)
 *   100 failures in 1 h → 1 h (per IP)
 */
import { RateLimiterPostgres, RateLimiterSQLite, type RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import type { Db } from '../store/db.js';
import { isPostgres } from '../store/db.js';

export interface Throttle {
  /** Seconds to wait before another attempt is allowed; 0 when allowed now. */
  retryAfter(keys: ThrottleKeys): Promise<number>;
  /** Counts a failure; returns the wait that now applies (0 if none). */
  fail(keys: ThrottleKeys): Promise<number>;
  /** Clears the per-account counters after a success. */
  succeed(keys: ThrottleKeys): Promise<void>;
}

export interface ThrottleKeys {
  /** The normalised account name or id the attempt was for. */
  account: string;
  ip: string;
}

interface Tier {
  points: number;
  duration: number;
  blockDuration: number;
  by: 'account' | 'ip';
}

export const TIERS: readonly Tier[] = [
  { by: 'account', points: 5, duration: 15 * 60, blockDuration: 60 },
  { by: 'account', points: 10, duration: 3600, blockDuration: 15 * 60 },
  { by: 'account', points: 20, duration: 24 * 3600, blockDuration: 3600 },
  { by: 'ip', points: 100, duration: 3600, blockDuration: 3600 },
];

export function createThrottle(db: Db, opts: { scope: string }): Throttle {
  const pg = isPostgres(db);
  // The `rate_limits` table is created by a migration (the library's own "create table if not
  // exists" races between instances starting together on an empty PostgreSQL database).
  const limiters = TIERS.map((tier, i) => {
    const options = {
      storeClient: db,
      storeType: 'knex',
      tableName: 'rate_limits',
      tableCreated: true,
      keyPrefix: `${opts.scope}:${i}`,
      points: tier.points,
      duration: tier.duration,
      blockDuration: tier.blockDuration,
      clearExpiredByTimeout: false,
    };
    const limiter: RateLimiterAbstract = pg
      ? new RateLimiterPostgres(options)
      : new RateLimiterSQLite(options as ConstructorParameters<typeof RateLimiterSQLite>[0]);
    return { tier, limiter };
  });
  const keyFor = (tier: Tier, keys: ThrottleKeys) => (tier.by === 'account' ? `a:${keys.account}` : `ip:${keys.ip}`);
  // A tier blocks once its budget is exceeded; msBeforeNext is then the rest of the block.
  const wait = (tier: Tier, res: RateLimiterRes | null) =>
    res && res.consumedPoints > tier.points ? Math.max(1, Math.ceil(res.msBeforeNext / 1000)) : 0;

  return {
    async retryAfter(keys) {
      const waits = await Promise.all(
        limiters.map(async ({ tier, limiter }) => wait(tier, await limiter.get(keyFor(tier, keys)))),
      );
      return Math.max(0, ...waits);
    },
    async fail(keys) {
      const waits = await Promise.all(
        limiters.map(async ({ tier, limiter }) => {
          try {
            return wait(tier, await limiter.consume(keyFor(tier, keys)));
          } catch (rejection) {
            if (rejection instanceof RateLimiterRes) return Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
            throw rejection;
          }
        }),
      );
      return Math.max(0, ...waits);
    },
    async succeed(keys) {
      await Promise.all(limiters.filter(({ tier }) => tier.by === 'account').map(({ tier, limiter }) => limiter.delete(keyFor(tier, keys))));
    },
  };
}
