/**
 * The throttles read every applying tier's counter in one statement and clear them in one, with
 * the same answers as the library's tier-by-tier reading; a success right after a clean reading
 * deletes nothing, and one after a failure clears the counters.
 */
import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createRateLimitRepository, type RateLimitRepository } from '../../../src/store/rate-limits.js';
import { createThrottle, PASSWORD_TIERS, TIERS } from '../../../src/security/rate-limit.js';
import { createSecretBox } from '../../../src/security/crypto.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

describe.each(stores())('throttle counters (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let repo: RateLimitRepository;
  const box = createSecretBox(randomBytes(32));

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    repo = createRateLimitRepository(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });
  afterEach(() => jest.restoreAllMocks());

  const attempt = () => ({ account: `u${randomBytes(4).toString('hex')}`, ip: `10.0.${randomBytes(1)[0]!}.${randomBytes(1)[0]!}`, device: randomBytes(8).toString('hex') });

  test('one read for every tier, with the waits the library reads tier by tier', async () => {
    const grouped = createThrottle(repo, { scope: 'password', box, tiers: PASSWORD_TIERS });
    // The same counters, read only through the library (a storage without readMany).
    const oneByOne = createThrottle({ counter: (o) => repo.counter(o) }, { scope: 'password', box, tiers: PASSWORD_TIERS });
    const keys = attempt();
    const reads = jest.spyOn(repo, 'readMany');
    expect(await grouped.retryAfter(keys)).toBe(0);
    expect(reads).toHaveBeenCalledTimes(1);
    expect(reads.mock.calls[0]![0]).toHaveLength(PASSWORD_TIERS.length);
    for (let i = 0; i < 6; i += 1) await grouped.fail(keys);
    const wait = await grouped.retryAfter(keys);
    expect(wait).toBeGreaterThan(0);
    // The same reading, a few milliseconds apart (the wait is rounded up to a second).
    expect(Math.abs(wait - (await oneByOne.retryAfter(keys)))).toBeLessThanOrEqual(1);
    expect(reads).toHaveBeenCalledTimes(2);
  });

  test('a success clears the counters in one statement, and deletes nothing after a clean reading', async () => {
    const throttle = createThrottle(repo, { scope: 'second-factor', box, tiers: TIERS });
    const deletes = jest.spyOn(repo, 'deleteMany');
    const clean = attempt();
    expect(await throttle.retryAfter(clean)).toBe(0);
    await throttle.succeed(clean);
    expect(deletes).not.toHaveBeenCalled();
    // Without a reading first, the success deletes.
    await throttle.succeed(attempt());
    expect(deletes).toHaveBeenCalledTimes(1);

    const failing = attempt();
    for (let i = 0; i < 6; i += 1) await throttle.fail(failing);
    expect(await throttle.retryAfter(failing)).toBeGreaterThan(0);
    await throttle.succeed(failing);
    expect(deletes).toHaveBeenCalledTimes(2);
    // The per-address tier stays; the account's tiers are cleared.
    const after = createThrottle(repo, { scope: 'second-factor', box, tiers: TIERS.filter((t) => t.by.includes('account')) });
    expect(await after.retryAfter(failing)).toBe(0);

    // A failure between the clean reading and the success is cleared by it.
    const raced = attempt();
    expect(await throttle.retryAfter(raced)).toBe(0);
    for (let i = 0; i < 6; i += 1) await throttle.fail(raced);
    await throttle.succeed(raced);
    expect(deletes).toHaveBeenCalledTimes(3);
    expect(await throttle.retryAfter(raced)).toBe(0);
  });
});
