/**
 * argon2id password hashing with configurable parameters (at least OWASP's m=19 MiB, t=2, p=1).
 * A hash made with other parameters is reported as needing a re-hash, done at the next sign-in.
 *
 * At most `concurrency` hashes run at once in a process (default: its share of the machine's cores);
 * the others wait their turn. More would not finish sooner, since each keeps a core busy, but each
 * holds its `memoryCost` of memory: four at once in Node's thread pool were ~76 MB per process.
 */
import argon2 from 'argon2';

export interface Argon2Params {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Verifies; `hash` undefined still spends the same time (against a dummy hash) and returns false. */
  verify(hash: string | null | undefined, password: string): Promise<boolean>;
  needsRehash(hash: string): boolean;
}

export function createPasswordHasher(params: Argon2Params, concurrency = 1): PasswordHasher {
  const options = { type: argon2.argon2id, ...params } as const;
  const limit = createLimit(Math.max(1, concurrency));
  const hash = (password: string) => limit(() => argon2.hash(password, options));
  const check = (digest: string, password: string) => limit(() => argon2.verify(digest, password));
  // Made once, lazily: unknown usernames are verified against it so they cost as much as known ones.
  let dummy: Promise<string> | undefined;
  return {
    hash,
    async verify(digest, password) {
      if (!digest) {
        dummy ??= hash('kapija-dummy-password');
        await check(await dummy, password).catch(() => false);
        return false;
      }
      try {
        return await check(digest, password);
      } catch {
        return false;
      }
    },
    needsRehash: (hash) => argon2.needsRehash(hash, options),
  };
}

/** Runs at most `n` of the given tasks at once, the others in the order they came. */
export function createLimit(n: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else running += 1;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running -= 1;
    }
  };
}
