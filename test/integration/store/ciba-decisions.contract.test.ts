/**
 * The one answer to each CIBA request (store/ciba-decisions.ts) on every store: the first claim
 * wins, concurrent claims leave exactly one, a released answer can be given again, and expired
 * rows are purged.
 */
import { randomBytes } from 'node:crypto';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createAccountRepository } from '../../../src/store/accounts.js';
import { createCibaDecisionRepository, type CibaDecisionRepository } from '../../../src/store/ciba-decisions.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

describe.each(stores())('CIBA decisions (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let repo: CibaDecisionRepository;
  let accountId: string;
  let now = Date.UTC(2030, 0, 1);

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    repo = createCibaDecisionRepository(db, () => now);
    accountId = (await createAccountRepository(db).create({ username: `ciba-${randomBytes(3).toString('hex')}` }, 'x')).id;
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  const claim = (requestHash: string, decision: 'approved' | 'denied', expiresAt = now + 600_000) => repo.claim({ requestHash, accountId, clientId: 'call-centre', decision, expiresAt });

  test('the first answer stands; a second, either way, is refused', async () => {
    expect(await claim('h1', 'approved')).toBe(true);
    expect(await claim('h1', 'approved')).toBe(false);
    expect(await claim('h1', 'denied')).toBe(false);
    expect(await repo.decided(['h1', 'h2'])).toEqual(new Map([['h1', 'approved']]));
  });

  test('of answers given at once, exactly one lands', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => claim('h-race', i % 2 ? 'approved' : 'denied')));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await repo.decided(['h-race'])).size).toBe(1);
  });

  test('an answer taken back (the engine could not be told) can be given again, only the same decision is released', async () => {
    expect(await claim('h3', 'denied')).toBe(true);
    await repo.release('h3', 'approved');
    expect(await repo.decided(['h3'])).toEqual(new Map([['h3', 'denied']]));
    await repo.release('h3', 'denied');
    expect(await repo.decided(['h3'])).toEqual(new Map());
    expect(await claim('h3', 'approved')).toBe(true);
  });

  test('answers of expired requests are purged', async () => {
    expect(await claim('h-old', 'approved', now + 1000)).toBe(true);
    now += 2000;
    expect(await repo.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await repo.decided(['h-old', 'h1'])).toEqual(new Map([['h1', 'approved']]));
  });
});
