/**
 * argon2id password hashing: PHC strings with the configured parameters, re-hash on change.
 */
import { createPasswordHasher } from '../../../../src/factors/password/hasher.js';

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
