/**
 * argon2id password hashing: PHC strings with the configured parameters, re-hash on change.
 */
import { createLimit, createPasswordHasher } from '../../../../src/factors/password/hasher.js';

const PARAMS = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
const hasher = createPasswordHasher(PARAMS);

describe('createPasswordHasher', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hasher.hash('correct horse ђ 😀');
  });

  it('makes argon2id hashes with the configured parameters and a random salt', async () => {
    const [, type, version, params] = hash.split('$');
    expect([type, version]).toEqual(['argon2id', 'v=19']);
    expect(params!.split(',').sort()).toEqual(['m=19456', 'p=1', 't=2']);
    expect(hash).not.toContain('correct horse');
    expect(await hasher.hash('correct horse ђ 😀')).not.toBe(hash);
  });

  it('verifies the right password only', async () => {
    expect(await hasher.verify(hash, 'correct horse ђ 😀')).toBe(true);
    expect(await hasher.verify(hash, 'correct horse ђ')).toBe(false);
    expect(await hasher.verify(hash, '')).toBe(false);
  });

  it('returns false, without throwing, for a missing or malformed hash', async () => {
    await expect(hasher.verify(undefined, 'anything')).resolves.toBe(false);
    await expect(hasher.verify(null, 'anything')).resolves.toBe(false);
    await expect(hasher.verify('', 'anything')).resolves.toBe(false);
    await expect(hasher.verify('not-a-phc-string', 'anything')).resolves.toBe(false);
  });

  it('reports a re-hash when the parameters change, not otherwise', () => {
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(createPasswordHasher({ ...PARAMS, timeCost: 3 }).needsRehash(hash)).toBe(true);
    expect(createPasswordHasher({ ...PARAMS, memoryCost: 32768 }).needsRehash(hash)).toBe(true);
    expect(createPasswordHasher({ ...PARAMS, parallelism: 2 }).needsRehash(hash)).toBe(true);
  });

  it('a hash made with other parameters still verifies', async () => {
    const stronger = createPasswordHasher({ ...PARAMS, timeCost: 3 });
    expect(await stronger.verify(hash, 'correct horse ђ 😀')).toBe(true);
  });
});

describe('createLimit (at most n hashes at once per process)', () => {
  it('runs at most n tasks at once, the rest in arrival order, and frees a slot when a task fails', async () => {
    const limit = createLimit(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const task = (i: number, fail = false) => async () => {
      running += 1;
      most = Math.max(most, running);
      order.push(i);
      await new Promise((r) => setTimeout(r, 5));
      running -= 1;
      if (fail) throw new Error(`task ${i}`);
      return i;
    };
    const results = await Promise.allSettled([0, 1, 2, 3, 4, 5].map((i) => limit(task(i, i === 1))));
    expect(most).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(await limit(task(6))).toBe(6);
  });

  it('a hasher limited to one hash at a time still verifies concurrent sign-ins correctly', async () => {
    const one = createPasswordHasher(PARAMS, 1);
    const digest = await one.hash('first password');
    const answers = await Promise.all([one.verify(digest, 'first password'), one.verify(digest, 'wrong'), one.verify(undefined, 'x'), one.verify(digest, 'first password')]);
    expect(answers).toEqual([true, false, false, true]);
  });
});
