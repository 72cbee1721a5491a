/**
 * Contracts of the self-service tables on SQLite and PostgreSQL: single-use, expiring link hashes;
 * a queued mail and its link written together; known devices per account (read with the account a
 * notice is addressed with); pending accounts and e-mail look-ups.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createAccountRepository } from '../../../src/store/accounts.js';
import { createAccountTokenRepository } from '../../../src/store/account-tokens.js';
import { createKnownDeviceRepository } from '../../../src/store/known-devices.js';
import { createMailQueueRepository } from '../../../src/store/mail-queue.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

describe.each(stores())('self-service storage (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let clock = 1_800_000_000_000;
  const now = () => clock;

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  const account = async (status: 'active' | 'pending' = 'active', email = `p.${randomBytes(3).toString('hex')}@Example.rs`) =>
    createAccountRepository(db, now).create({ username: `u${randomBytes(4).toString('hex')}`, email, status }, null);

  test('a token is used once, only for its purpose, and not after it expires', async () => {
    const tokens = createAccountTokenRepository(db, now);
    const a = await account();
    const hash = randomBytes(32).toString('base64url');
    await tokens.create({ accountId: a.id, purpose: 'reset_password', tokenHash: hash, ttlSeconds: 60, data: { returnUid: 'x' } });
    expect(await tokens.peek(hash, 'verify_email')).toBeUndefined();
    expect(await tokens.peek(hash, 'reset_password')).toMatchObject({ accountId: a.id, data: { returnUid: 'x' } });
    const [first, second] = await Promise.all([tokens.consume(hash, 'reset_password'), tokens.consume(hash, 'reset_password')]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
    expect(await tokens.consume(hash, 'reset_password')).toBeUndefined();

    const late = randomBytes(32).toString('base64url');
    await tokens.create({ accountId: a.id, purpose: 'not_me', tokenHash: late, ttlSeconds: 60 });
    clock += 61_000;
    expect(await tokens.consume(late, 'not_me')).toBeUndefined();
    expect(await tokens.purgeExpired()).toBeGreaterThanOrEqual(2);
  });

  test('revokeAll spends every live token of one purpose of one account', async () => {
    const tokens = createAccountTokenRepository(db, now);
    const a = await account();
    const b = await account();
    const [h1, h2, h3] = [0, 1, 2].map(() => randomBytes(32).toString('base64url'));
    await tokens.create({ accountId: a.id, purpose: 'reset_password', tokenHash: h1!, ttlSeconds: 600 });
    await tokens.create({ accountId: a.id, purpose: 'not_me', tokenHash: h2!, ttlSeconds: 600 });
    await tokens.create({ accountId: b.id, purpose: 'reset_password', tokenHash: h3!, ttlSeconds: 600 });
    expect(await tokens.revokeAll(a.id, 'reset_password')).toBe(1);
    expect(await tokens.peek(h1!, 'reset_password')).toBeUndefined();
    expect(await tokens.peek(h2!, 'not_me')).toBeDefined();
    expect(await tokens.peek(h3!, 'reset_password')).toBeDefined();
  });

  test('known devices: the first is not news, a second one is, a known one is not', async () => {
    const devices = createKnownDeviceRepository(db, now);
    const seen = async (accountId: string, device: string) => {
      const { isNew, hadOthers } = await devices.remember(accountId, device);
      return { isNew, hadOthers };
    };
    const a = await account();
    expect(await seen(a.id, 'd1')).toEqual({ isNew: true, hadOthers: false });
    expect(await seen(a.id, 'd1')).toEqual({ isNew: false, hadOthers: true });
    expect(await seen(a.id, 'd2')).toEqual({ isNew: true, hadOthers: true });
    expect(await devices.count(a.id)).toBe(2);
    const b = await account();
    expect(await seen(b.id, 'd1')).toEqual({ isNew: true, hadOthers: false });
  });

  test('a device new to an account that had others comes with the account, as it is now', async () => {
    const devices = createKnownDeviceRepository(db, now);
    const accounts = createAccountRepository(db, now);
    const a = await account();
    await devices.remember(a.id, 'd1');
    await accounts.setVerifiedEmail(a.id, 'novi@example.rs');
    const news = await devices.remember(a.id, 'd2');
    expect(news).toMatchObject({ isNew: true, hadOthers: true, account: { id: a.id, email: 'novi@example.rs', emailVerified: true, status: 'active' } });
    expect(news.account).toEqual(await accounts.findById(a.id));
  });

  test('a queued mail and the link it carries are written together or not at all', async () => {
    const tokens = createAccountTokenRepository(db, now);
    const queue = createMailQueueRepository(db, now);
    const a = await account();
    const hashes = [0, 1].map(() => randomBytes(32).toString('base64url'));
    const link = tokens.row({ accountId: a.id, purpose: 'not_me', tokenHash: hashes[0]!, ttlSeconds: 600, data: { since: '1' } });
    const mail = (id: string) => ({ id, kind: 'new_device', message: 'sealed', accountId: a.id });
    const kept = randomUUID();
    await queue.add(mail(kept), clock + 60_000, link);
    expect(await tokens.peek(hashes[0]!, 'not_me')).toMatchObject({ accountId: a.id, data: { since: '1' } });
    expect(await db('mail_queue').where({ id: kept })).toHaveLength(1);

    // A message that cannot be kept (its id is taken) takes its new link with it…
    const second = tokens.row({ accountId: a.id, purpose: 'not_me', tokenHash: hashes[1]!, ttlSeconds: 600 });
    await expect(queue.add(mail(kept), clock + 60_000, second)).rejects.toHaveProperty('message', expect.stringMatching(/constraint/i));
    expect(await tokens.peek(hashes[1]!, 'not_me')).toBeUndefined();
    // … and a link that cannot be kept (its id is taken), its message.
    const other = randomUUID();
    await expect(queue.add(mail(other), clock + 60_000, link)).rejects.toHaveProperty('message', expect.stringMatching(/constraint/i));
    expect(await db('mail_queue').where({ id: other })).toHaveLength(0);
  });

  test('pending accounts: found by e-mail case-insensitively, activated by verification, stale ones freed', async () => {
    const accounts = createAccountRepository(db, now);
    const email = `Pending.${randomBytes(3).toString('hex')}@Example.rs`;
    const a = await account('pending', email);
    expect((await accounts.findByEmail(email.toLowerCase())).map((x) => x.id)).toEqual([a.id]);
    await accounts.setVerifiedEmail(a.id, email);
    expect(await accounts.findById(a.id)).toMatchObject({ status: 'active', emailVerified: true });
    expect(await accounts.deleteStalePending(a.username, clock + 1)).toBe(false);

    const stale = await account('pending');
    expect(await accounts.deleteStalePending(stale.username, clock)).toBe(false);
    expect(await accounts.deleteStalePending(stale.username, clock + 1)).toBe(true);
    expect(await accounts.findById(stale.id)).toBeUndefined();
  });
});
