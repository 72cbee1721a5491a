/**
 * Credential repository contract on every store: the single-use rules Kapija relies on across
 * instances are compare-and-sets in SQL — a TOTP time-step is accepted once (last_step only moves
 * forward) and a recovery code is used once (used_at is null) — and an account's second factors are
 * listed, counted and removed by type without touching another account's.
 */
import { randomBytes } from 'node:crypto';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createAccountRepository } from '../../../src/store/accounts.js';
import { createCredentialRepository, type CredentialRepository } from '../../../src/store/credentials.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
/** Simultaneous attempts in each race: more than two, so "exactly one wins" is not a coin toss. */
const RACERS = 5;

describe.each(stores())('credential repository contract (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let clock: number;
  let credentials: CredentialRepository;

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    credentials = createCredentialRepository(db, () => clock);
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });
  beforeEach(() => {
    clock = T0;
  });

  const newAccount = async () =>
    (await createAccountRepository(db, () => clock).create({ username: `c${randomBytes(6).toString('hex')}` }, null)).id;
  const lookup = () => randomBytes(16).toString('hex');

  describe('TOTP time-steps (compare-and-set on last_step)', () => {
    it('accepts a step once; the same or an older step is refused, a later one accepted', async () => {
      const accountId = await newAccount();
      const totp = await credentials.add({ accountId, type: 'totp', name: 'App', secretEnc: 'sealed' });
      expect(totp.lastStep).toBeNull();

      clock = T0 + 1000;
      expect(await credentials.acceptTotpStep(totp.id, 100)).toBe(true);
      expect(await credentials.acceptTotpStep(totp.id, 100)).toBe(false);
      expect(await credentials.acceptTotpStep(totp.id, 99)).toBe(false);
      const [afterFirst] = await credentials.list(accountId, 'totp');
      expect(afterFirst).toMatchObject({ lastStep: 100, lastUsedAt: new Date(T0 + 1000) });

      clock = T0 + 31_000;
      expect(await credentials.acceptTotpStep(totp.id, 101)).toBe(true);
      expect(await credentials.acceptTotpStep(totp.id, 100)).toBe(false);
      expect(await credentials.acceptTotpStep(totp.id, 101)).toBe(false);
      const [afterSecond] = await credentials.list(accountId, 'totp');
      expect(afterSecond).toMatchObject({ lastStep: 101, lastUsedAt: new Date(T0 + 31_000) });
    });

    it('of simultaneous attempts with the same step, exactly one is accepted', async () => {
      const accountId = await newAccount();
      const totp = await credentials.add({ accountId, type: 'totp', secretEnc: 'sealed' });
      await credentials.acceptTotpStep(totp.id, 500);

      const results = await Promise.all(Array.from({ length: RACERS }, () => credentials.acceptTotpStep(totp.id, 501)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await credentials.list(accountId, 'totp'))[0]!.lastStep).toBe(501);
    });

    it('keeps each credential’s step apart, and accepts steps only for a TOTP credential that exists', async () => {
      const a = await credentials.add({ accountId: await newAccount(), type: 'totp', secretEnc: 'sealed' });
      const b = await credentials.add({ accountId: await newAccount(), type: 'totp', secretEnc: 'sealed' });
      expect(await credentials.acceptTotpStep(a.id, 700)).toBe(true);
      expect(await credentials.acceptTotpStep(b.id, 700)).toBe(true);

      const code = await credentials.add({ accountId: a.accountId, type: 'recovery', lookup: lookup() });
      expect(await credentials.acceptTotpStep(code.id, 700)).toBe(false);
      expect((await credentials.list(a.accountId, 'recovery'))[0]!.lastStep).toBeNull();
      expect(await credentials.acceptTotpStep('00000000-0000-0000-0000-000000000000', 700)).toBe(false);
    });
  });

  describe('recovery codes (compare-and-set on used_at is null)', () => {
    it('uses a code once; a second use is refused and the count of unused codes drops by one', async () => {
      const accountId = await newAccount();
      const [first, second, third] = [lookup(), lookup(), lookup()];
      await credentials.replaceRecoveryCodes(accountId, [first!, second!, third!]);
      expect(await credentials.countUnusedRecoveryCodes(accountId)).toBe(3);

      clock = T0 + 5000;
      expect(await credentials.consumeRecoveryCode(accountId, second!)).toBe(true);
      expect(await credentials.consumeRecoveryCode(accountId, second!)).toBe(false);
      expect(await credentials.countUnusedRecoveryCodes(accountId)).toBe(2);
      expect(await credentials.findByLookup('recovery', second!)).toMatchObject({ usedAt: new Date(T0 + 5000), lastUsedAt: new Date(T0 + 5000) });
      expect(await credentials.findByLookup('recovery', first!)).toMatchObject({ usedAt: null });
    });

    it('refuses a code of another account and a code that does not exist', async () => {
      const owner = await newAccount();
      const other = await newAccount();
      const code = lookup();
      await credentials.replaceRecoveryCodes(owner, [code]);
      expect(await credentials.consumeRecoveryCode(other, code)).toBe(false);
      expect(await credentials.consumeRecoveryCode(owner, lookup())).toBe(false);
      expect(await credentials.countUnusedRecoveryCodes(owner)).toBe(1);
    });

    it('of simultaneous uses of one code, exactly one succeeds', async () => {
      const accountId = await newAccount();
      const code = lookup();
      await credentials.replaceRecoveryCodes(accountId, [code, lookup()]);

      const results = await Promise.all(Array.from({ length: RACERS }, () => credentials.consumeRecoveryCode(accountId, code)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await credentials.countUnusedRecoveryCodes(accountId)).toBe(1);
    });

    it('a new set replaces every earlier code, used or not', async () => {
      const accountId = await newAccount();
      const [old1, old2, fresh] = [lookup(), lookup(), lookup()];
      await credentials.replaceRecoveryCodes(accountId, [old1!, old2!]);
      await credentials.consumeRecoveryCode(accountId, old1!);
      await credentials.replaceRecoveryCodes(accountId, [fresh!]);
      expect((await credentials.list(accountId, 'recovery')).map((c) => c.lookup)).toEqual([fresh]);
      expect(await credentials.consumeRecoveryCode(accountId, old2!)).toBe(false);
      expect(await credentials.consumeRecoveryCode(accountId, fresh!)).toBe(true);
    });
  });

  describe('an account’s factors', () => {
    it('lists them in order of creation, all or of one type, and only the account’s own', async () => {
      const accountId = await newAccount();
      const other = await newAccount();
      clock = T0 + 1;
      const totp = await credentials.add({ accountId, type: 'totp', name: 'App', secretEnc: 'sealed' });
      clock = T0 + 2;
      const key = await credentials.add({ accountId, type: 'webauthn', name: 'Key', lookup: lookup(), config: { counter: 0 } });
      clock = T0 + 3;
      const code = await credentials.add({ accountId, type: 'recovery', lookup: lookup() });
      await credentials.add({ accountId: other, type: 'totp', secretEnc: 'sealed' });

      expect((await credentials.list(accountId)).map((c) => c.id)).toEqual([totp.id, key.id, code.id]);
      expect(await credentials.list(accountId, 'webauthn')).toEqual([key]);
      expect(key.config).toEqual({ counter: 0 });
      expect(await credentials.list(await newAccount())).toEqual([]);
    });

    it('enrolledTypes counts recovery codes only while one is unused', async () => {
      const accountId = await newAccount();
      expect(await credentials.enrolledTypes(accountId)).toEqual(new Set());
      await credentials.add({ accountId, type: 'totp', secretEnc: 'sealed' });
      const code = lookup();
      await credentials.replaceRecoveryCodes(accountId, [code]);
      expect(await credentials.enrolledTypes(accountId)).toEqual(new Set(['totp', 'recovery']));

      await credentials.consumeRecoveryCode(accountId, code);
      expect(await credentials.enrolledTypes(accountId)).toEqual(new Set(['totp']));
    });

    it('removeType removes every credential of that type of that account and says how many', async () => {
      const accountId = await newAccount();
      const other = await newAccount();
      await credentials.add({ accountId, type: 'totp', secretEnc: 'sealed' });
      await credentials.replaceRecoveryCodes(accountId, [lookup(), lookup(), lookup()]);
      await credentials.replaceRecoveryCodes(other, [lookup()]);

      expect(await credentials.removeType(accountId, 'recovery')).toBe(3);
      expect(await credentials.removeType(accountId, 'recovery')).toBe(0);
      expect((await credentials.list(accountId)).map((c) => c.type)).toEqual(['totp']);
      expect(await credentials.enrolledTypes(accountId)).toEqual(new Set(['totp']));
      expect(await credentials.countUnusedRecoveryCodes(other)).toBe(1);
    });
  });
});
