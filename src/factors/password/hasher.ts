/**
 * argon2id password hashing with configurable parameters (at least OWASP's m=19 MiB, t=2, p=1).
 * A hash made with other parameters is reported as needing a re-hash, done at the next sign-in.
 *
 * At most `concurrency` hashes run at once in a process (default: its share of the machine's cores);
 * the others wait their turn. More would not finish sooner, since each keeps a core busy, but each
 * holds its `memoryCost` of memory: four at once in Node's thread pool were ~76 MB per process.
 *
 * Passwords are Unicode-normalised (NFC) here, for hashing and verifying alike, so "é" typed as one
 * code point or as "e" + combining accent is the same password. Hashes made before normalisation
 * (of a non-NFC password) still verify: the password as typed is tried second, and such a hash is
 * then reported as needing a re-hash, which stores the NFC form. ASCII passwords are NFC already.
 */
import argon2 from 'argon2';

export interface Argon2Params {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Verifies (the NFC form, then the password as typed); `hash` undefined still spends the same time (against a dummy hash) and returns false. */
  verify(hash: string | null | undefined, password: string): Promise<boolean>;
  /** True for a hash of other parameters, or one that {@link verify} matched only without NFC. */
  needsRehash(hash: string): boolean;
}

export function createPasswordHasher(params: Argon2Params, concurrency = 1): PasswordHasher {
  const options = { type: argon2.argon2id, ...params } as const;
  const limit = createLimit(Math.max(1, concurrency));
  const hash = (password: string) => limit(() => argon2.hash(password.normalize('NFC'), options));
  const check = (digest: string, password: string) => limit(() => argon2.verify(digest, password));
  // Hashes that matched only the password as typed (not its NFC form): re-hashed at the next chance.
  const legacy = new Set<string>();
  // Made once, lazily: unknown usernames are verified against it so they cost as much as known ones.
  let dummy: Promise<string> | undefined;
  return {
    hash,
    async verify(digest, password) {
      if (!digest) {
        dummy ??= hash('kapija-dummy-password');
        // As many checks as a known account would cost (two for a password that is not NFC).
        await check(await dummy, password.normalize('NFC')).catch(() => false);
        if (password.normalize('NFC') !== password) await check(await dummy, password).catch(() => false);
        return false;
      }
      try {
        const nfc = password.normalize('NFC');
        if (await check(digest, nfc)) return true;
        if (nfc === password || !(await check(digest, password))) return false;
        if (legacy.size >= 1000) legacy.clear();
        legacy.add(digest);
        return true;
      } catch {
        return false;
      }
    },
    needsRehash: (hash) => legacy.delete(hash) || argon2.needsRehash(hash, options),
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
