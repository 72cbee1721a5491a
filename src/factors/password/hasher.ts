/**
 * argon2id password hashing with configurable parameters (at least OWASP's m=19 MiB, t=2, p=1).
 * A hash made with other parameters is reported as needing a re-hash, done at the next sign-in.
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

export function createPasswordHasher(params: Argon2Params): PasswordHasher {
  const options = { type: argon2.argon2id, ...params } as const;
  // Made once, lazily: unknown usernames are verified against it so they cost as much as known ones.
  let dummy: Promise<string> | undefined;
  return {
    hash: (password) => argon2.hash(password, options),
    async verify(hash, password) {
      if (!hash) {
        dummy ??= argon2.hash('kapija-dummy-password', options);
        await argon2.verify(await dummy, password).catch(() => false);
        return false;
      }
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false;
      }
    },
    needsRehash: (hash) => argon2.needsRehash(hash, options),
  };
}
