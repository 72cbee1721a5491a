/**
 * Throttling of attempts (passwords, second factors, passkeys, self-service mail and links) with
 * rate-limiter-flexible, stored in the database so it holds across every instance. Each tier counts
 * failures under a key made of some of the attempt's parts (account name, client address, passkey
 * credential id, device); a tier whose part is missing does not apply. Keys are stored only as keyed
 * hashes (HMAC under a subkey of the master key), never as typed names, addresses or e-mail addresses.
 * Delays grow in tiers, then a temporary lock; see {@link TIERS}, {@link PASSWORD_TIERS} and
 * {@link PASSKEY_TIERS}.
 */
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { SecretBox } from './crypto.js';

export type KeyPart = 'account' | 'ip' | 'credential' | 'device';

export interface ThrottleKeys {
  /** The normalised account name or id the attempt was for. */
  account?: string | undefined;
  ip: string;
  /** The id of the passkey credential offered (as the client sent it). */
  credential?: string | undefined;
  /** Keyed hash of the browser's device cookie, when it sent one. */
  device?: string | undefined;
}

export interface Tier {
  /** The parts the counter is keyed by (all must be present for the tier to apply). */
  by: readonly KeyPart[];
  points: number;
  duration: number;
  blockDuration: number;
  /**
   * An account-wide ceiling: a browser that has completed a sign-in to the account before (see
   * {@link AttemptOptions.trusted}) is not held back by it, and a success does not clear it.
   */
  ceiling?: true;
}

export interface AttemptOptions {
  /** Asked only when a ceiling tier would hold the attempt back: whether the browser is known to the account. */
  trusted?: () => Promise<boolean>;
}

/** One tier's counters, in rate-limiter-flexible's terms: a consumed budget per key that blocks once exceeded. */
export interface ThrottleCounter {
  get(key: string): Promise<RateLimiterRes | null>;
  /** Counts one point; rejects with a {@link RateLimiterRes} once the budget is exceeded. */
  consume(key: string): Promise<RateLimiterRes>;
  delete(key: string): Promise<boolean>;
  /** The key the counter stores for `key` (rate-limiter-flexible: its prefix, a colon, the key). */
  getKey?(key: string): string;
}

/** A stored counter as read: points consumed, and when it ends (epoch ms; null: never). */
export interface StoredCounter {
  points: number;
  expire: number | null;
}

/** Where the counters are kept (store/rate-limits.ts keeps them in the database, shared by every instance). */
export interface ThrottleStorage {
  counter(options: { keyPrefix: string; points: number; duration: number; blockDuration: number }): ThrottleCounter;
  /**
   * The live counters among the stored `keys` (as {@link ThrottleCounter.getKey} names them), read
   * in one round trip; a storage without it is read tier by tier.
   */
  readMany?(keys: string[]): Promise<Map<string, StoredCounter>>;
  /** Deletes the counters stored under `keys` in one round trip. */
  deleteMany?(keys: string[]): Promise<void>;
}

export interface Throttle {
  /** Seconds to wait before another attempt is allowed; 0 when allowed now. */
  retryAfter(keys: ThrottleKeys, opts?: AttemptOptions): Promise<number>;
  /** Counts a failure; returns the wait that now applies (0 if none). */
  fail(keys: ThrottleKeys, opts?: AttemptOptions): Promise<number>;
  /** Clears the counters of the account (or credential) after a success; ceilings and per-address counters stay. */
  succeed(keys: ThrottleKeys): Promise<void>;
}

/** Per account and per address: second factors (after the password) and self-service. */
export const TIERS: readonly Tier[] = [
  { by: ['account'], points: 5, duration: 15 * 60, blockDuration: 60 },
  { by: ['account'], points: 10, duration: 3600, blockDuration: 15 * 60 },
  { by: ['account'], points: 20, duration: 24 * 3600, blockDuration: 3600 },
  { by: ['ip'], points: 100, duration: 3600, blockDuration: 3600 },
];

/**
 * Passwords (NIST SP 800-63B 5.2.2, OWASP Authentication Cheat Sheet): the growing delays count per
 * account name and address, so a stranger elsewhere cannot lock the citizen out; 100 failures per
 * address and hour; and a ceiling of 100 failures per account name and hour from all addresses
 * together, which a browser the account has signed in from before passes. A known browser that keeps
 * failing is held back on its own (per account and device cookie).
 */
export const PASSWORD_TIERS: readonly Tier[] = [
  { by: ['account', 'ip'], points: 5, duration: 15 * 60, blockDuration: 60 },
  { by: ['account', 'ip'], points: 10, duration: 3600, blockDuration: 15 * 60 },
  { by: ['account', 'ip'], points: 20, duration: 24 * 3600, blockDuration: 3600 },
  { by: ['ip'], points: 100, duration: 3600, blockDuration: 3600 },
  { by: ['account', 'device'], points: 20, duration: 24 * 3600, blockDuration: 3600 },
  { by: ['account'], points: 100, duration: 3600, blockDuration: 3600, ceiling: true },
];

/**
 * Passwordless passkey sign-in, never for everyone at once: the growing delays count per credential id
 * offered and address, so a stranger who learnt a credential id cannot lock its holder out; 100
 * failures per address and hour; 100 per credential id and hour from all addresses together.
 */
export const PASSKEY_TIERS: readonly Tier[] = [
  { by: ['credential', 'ip'], points: 5, duration: 15 * 60, blockDuration: 60 },
  { by: ['credential', 'ip'], points: 10, duration: 3600, blockDuration: 15 * 60 },
  { by: ['credential', 'ip'], points: 20, duration: 24 * 3600, blockDuration: 3600 },
  { by: ['ip'], points: 100, duration: 3600, blockDuration: 3600 },
  { by: ['credential'], points: 100, duration: 3600, blockDuration: 3600, ceiling: true },
];

export function createThrottle(storage: ThrottleStorage, opts: { scope: string; box: Pick<SecretBox, 'mac'>; tiers?: readonly Tier[] }): Throttle {
  const limiters = (opts.tiers ?? TIERS).map((tier, i) => ({
    tier,
    limiter: storage.counter({ keyPrefix: `${opts.scope}:${i}`, points: tier.points, duration: tier.duration, blockDuration: tier.blockDuration }),
  }));
  /** The stored key: a keyed hash of the parts, or undefined when a part is missing. */
  const keyFor = (tier: Tier, keys: ThrottleKeys): string | undefined => {
    const parts = tier.by.map((part) => keys[part]);
    if (parts.some((p) => p === undefined)) return undefined;
    return opts.box.mac('rate-limit', JSON.stringify([opts.scope, ...tier.by.map((part, i) => `${part}=${parts[i]}`)]));
  };
  const applying = (keys: ThrottleKeys) =>
    limiters.flatMap(({ tier, limiter }) => {
      const key = keyFor(tier, keys);
      return key === undefined ? [] : [{ tier, limiter, key }];
    });
  /**
   * The counters a success would clear that retryAfter found absent, by the keys object it was given:
   * a success right after (the same attempt) then has nothing to delete. A failure counted since
   * forgets it; a counter another request created meanwhile stays, which only holds back more.
   */
  const foundClear = new WeakMap<ThrottleKeys, string>();
  const clearable = (list: ReturnType<typeof applying>) => list.filter(({ tier }) => !tier.ceiling && (tier.by.includes('account') || tier.by.includes('credential')));
  /** Every applying tier's stored key, when the storage can read or delete them all at once. */
  const storedKeys = (list: ReturnType<typeof applying>) => {
    const keys = list.map(({ limiter, key }) => limiter.getKey?.(key));
    return keys.every((k): k is string => k !== undefined) ? keys : undefined;
  };
  // A tier blocks once its budget is exceeded; msBeforeNext is then the rest of the block.
  const wait = (tier: Tier, res: Pick<RateLimiterRes, 'consumedPoints' | 'msBeforeNext'> | null) =>
    res && res.consumedPoints > tier.points ? Math.max(1, Math.ceil(res.msBeforeNext / 1000)) : 0;
  /** The longest wait, leaving out ceilings when the browser is trusted (asked only if a ceiling holds). */
  const longest = async (waits: Array<{ tier: Tier; seconds: number }>, o: AttemptOptions | undefined) => {
    const others = Math.max(0, ...waits.filter((w) => !w.tier.ceiling).map((w) => w.seconds));
    const ceilings = Math.max(0, ...waits.filter((w) => w.tier.ceiling).map((w) => w.seconds));
    if (ceilings <= others) return others;
    return o?.trusted && (await o.trusted()) ? others : ceilings;
  };

  return {
    async retryAfter(keys, o) {
      const list = applying(keys);
      const stored = storage.readMany && storedKeys(list);
      if (stored && storage.readMany) {
        // The library's own reading of a counter (get): consumed points, and the time left until it ends.
        const rows = await storage.readMany(stored);
        const cleared = storedKeys(clearable(list));
        if (cleared && !cleared.some((k) => rows.has(k))) foundClear.set(keys, JSON.stringify(cleared));
        else foundClear.delete(keys);
        const at = Date.now();
        const waits = list.map(({ tier }, i) => {
          const row = rows.get(stored[i]!);
          return { tier, seconds: wait(tier, row ? { consumedPoints: row.points, msBeforeNext: row.expire === null ? -1 : Math.max(row.expire - at, 0) } : null) };
        });
        return longest(waits, o);
      }
      const waits = await Promise.all(applying(keys).map(async ({ tier, limiter, key }) => ({ tier, seconds: wait(tier, await limiter.get(key)) })));
      return longest(waits, o);
    },
    async fail(keys, o) {
      foundClear.delete(keys);
      const waits = await Promise.all(
        applying(keys).map(async ({ tier, limiter, key }) => {
          try {
            return { tier, seconds: wait(tier, await limiter.consume(key)) };
          } catch (rejection) {
            if (rejection instanceof RateLimiterRes) return { tier, seconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
            throw rejection;
          }
        }),
      );
      return longest(waits, o);
    },
    async succeed(keys) {
      const cleared = clearable(applying(keys));
      const stored = storage.deleteMany && storedKeys(cleared);
      if (stored && storage.deleteMany) {
        const absent = foundClear.get(keys) === JSON.stringify(stored);
        foundClear.delete(keys);
        if (stored.length && !absent) await storage.deleteMany(stored);
        return;
      }
      await Promise.all(cleared.map(({ limiter, key }) => limiter.delete(key)));
    },
  };
}
