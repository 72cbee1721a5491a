/**
 * Wallet presentation requests on every store (store/wallet-presentations.ts): each step of a
 * request (fetched, answered, redeemed) happens once, also when two instances race for it; a request
 * is redeemed only for its interaction and its flow; nothing after expiry; purge removes the expired.
 */
import { randomBytes } from 'node:crypto';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createWalletPresentationRepository, type WalletPresentationRepository } from '../../../src/store/wallet-presentations.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

const MINUTE = 60 * 1000;

describe.each(stores())('wallet presentation requests (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let clock: number;
  let repo: WalletPresentationRepository;
  /** A second instance on the same database. */
  let other: WalletPresentationRepository;

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    clock = Date.now();
    repo = createWalletPresentationRepository(db, () => clock);
    other = createWalletPresentationRepository(db, () => clock);
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  const create = async (interactionUid: string, flow: 'same_device' | 'cross_device' = 'same_device') => {
    const id = randomBytes(24).toString('base64url');
    await repo.create({ id, interactionUid, flow, clientId: 'x509_san_dns:kapija.test', nonce: 'n', state: 's', responseKey: 'sealed-key', ttlMs: 5 * MINUTE });
    return id;
  };

  it('is fetched once, answered once and redeemed once, whichever instance comes first', async () => {
    const id = await create('uid-1');
    expect(await repo.find(id)).toMatchObject({ id, interactionUid: 'uid-1', status: 'pending', outcome: null });
    expect(await Promise.all([repo.markFetched(id), other.markFetched(id), repo.markFetched(id)])).toEqual(expect.arrayContaining([true, false, false]));
    const answers = await Promise.all([repo.settle(id, 'answered', 'outcome-a', 'code-hash-a'), other.settle(id, 'answered', 'outcome-b', 'code-hash-b')]);
    expect(answers.filter(Boolean)).toHaveLength(1);
    const [winner, loser] = answers[0] ? ['a', 'b'] : ['b', 'a'];
    expect(await repo.redeem({ responseCodeHash: `code-hash-${loser}` }, 'uid-1')).toBeUndefined();
    const redeemed = await Promise.all([repo.redeem({ responseCodeHash: `code-hash-${winner}` }, 'uid-1'), other.redeem({ responseCodeHash: `code-hash-${winner}` }, 'uid-1')]);
    expect(redeemed.filter(Boolean)).toEqual([expect.objectContaining({ id, outcome: `outcome-${winner}` })]);
    expect(await repo.redeem({ responseCodeHash: `code-hash-${winner}` }, 'uid-1')).toBeUndefined();
  });

  it('an unfetched request cannot be answered; a request is redeemed only for its interaction and flow', async () => {
    const id = await create('uid-2', 'cross_device');
    expect(await repo.settle(id, 'answered', 'o')).toBe(false);
    expect(await repo.markFetched(id)).toBe(true);
    expect(await repo.settle(id, 'answered', 'o')).toBe(true);
    expect(await repo.redeem({ id, flow: 'cross_device' }, 'uid-other')).toBeUndefined();
    expect(await repo.redeem({ responseCodeHash: 'none' }, 'uid-2')).toBeUndefined();
    expect(await repo.redeem({ id, flow: 'cross_device' }, 'uid-2')).toMatchObject({ id, outcome: 'o' });
    expect(await repo.redeem({ id, flow: 'cross_device' }, 'uid-2')).toBeUndefined();
  });

  it('nothing is fetched, answered or redeemed after expiry, and purge removes expired rows only', async () => {
    const id = await create('uid-3');
    const live = await create('uid-4');
    expect(await repo.markFetched(id)).toBe(true);
    expect(await repo.listForInteraction('uid-3')).toHaveLength(1);
    clock += 6 * MINUTE;
    const fresh = await create('uid-5');
    expect(await repo.find(id)).toBeUndefined();
    expect(await repo.markFetched(live)).toBe(false);
    expect(await repo.settle(id, 'answered', 'late')).toBe(false);
    expect(await repo.listForInteraction('uid-3')).toEqual([]);
    expect(await repo.purgeExpired()).toBeGreaterThanOrEqual(2);
    expect(await repo.find(fresh)).toBeDefined();
  });
});
