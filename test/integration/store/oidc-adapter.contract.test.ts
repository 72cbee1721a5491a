/**
 * The knex adapter's contract, on every store: the cases of node-oidc-provider
 * test/adapters/memory_adapter.test.js (expiry, uid and userCode indexes, grant revocation,
 * re-assigned indexes) plus what Kapija adds on top (consume, listByAccount, purgeExpired).
 * Time is an injected clock, so expiry is exact and the suite does not sleep.
 */
import { randomBytes } from 'node:crypto';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { createAdapterClass, type AdapterConstructor } from '../../../src/oidc/adapter.js';
import { createOidcPayloadRepository, type OidcPayloadRepository } from '../../../src/store/oidc-payloads.js';
import { createClientRepository, type ClientRepository } from '../../../src/store/clients.js';
import { createAccountRepository } from '../../../src/store/accounts.js';
import { createAuditLog } from '../../../src/store/audit.js';
import { createSecretBox } from '../../../src/security/crypto.js';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

/** Every model oidc-provider persists through the adapter, other than Client. */
const MODELS = [
  'Session',
  'Interaction',
  'AuthorizationCode',
  'AccessToken',
  'RefreshToken',
  'Grant',
  'ClientCredentials',
  'PushedAuthorizationRequest',
  'ReplayDetection',
  'DeviceCode',
] as const;

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

describe.each(stores())('oidc adapter contract (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let clock: number;
  let payloads: OidcPayloadRepository;
  let clients: ClientRepository;
  let KnexAdapter: AdapterConstructor;
  const adapter = (model: string): Adapter => new KnexAdapter(model);
  const tick = (ms: number) => {
    clock += ms;
  };
  const rowCount = async () => Number(((await db('oidc_payloads').count({ n: '*' })) as { n: number | string }[])[0]!.n);

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    clients = createClientRepository(db, createSecretBox(randomBytes(32)));
  });

  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  beforeEach(async () => {
    await db('oidc_payloads').delete();
    clock = T0;
    payloads = createOidcPayloadRepository(db, () => clock);
    KnexAdapter = createAdapterClass(payloads, clients);
  });

  describe('round trip', () => {
    it.each(MODELS)('%s: find returns what upsert stored', async (model) => {
      const payload: AdapterPayload = {
        jti: `${model}-1`,
        kind: model,
        accountId: 'account-1',
        grantId: 'grant-1',
        uid: `uid-${model}`,
        userCode: model === 'DeviceCode' ? 'ABCD-EFGH' : undefined,
        scope: 'openid profile',
        claims: { id_token: { acr: { essential: true, values: ['http://eidas.europa.eu/LoA/high'] } } },
        extra: { name: 'Ђорђе Петровић 😀', nested: [1, 'two', null, { three: true }] },
      };
      // JSON drops undefined members, as every persistent adapter does.
      const expected = JSON.parse(JSON.stringify(payload)) as AdapterPayload;

      await adapter(model).upsert(`${model}-1`, payload, 60);

      expect(await adapter(model).find(`${model}-1`)).toEqual(expected);
      expect(await adapter(model).find(`${model}-unknown`)).toBeUndefined();
    });

    it('keeps models apart: the same id in another model is a different record', async () => {
      await adapter('AccessToken').upsert('same-id', { jti: 'same-id', kind: 'AccessToken' }, 60);
      await adapter('RefreshToken').upsert('same-id', { jti: 'same-id', kind: 'RefreshToken' }, 60);

      expect(await adapter('AccessToken').find('same-id')).toEqual({ jti: 'same-id', kind: 'AccessToken' });
      expect(await adapter('RefreshToken').find('same-id')).toEqual({ jti: 'same-id', kind: 'RefreshToken' });
      expect(await adapter('AuthorizationCode').find('same-id')).toBeUndefined();

      await adapter('AccessToken').destroy('same-id');
      expect(await adapter('AccessToken').find('same-id')).toBeUndefined();
      expect(await adapter('RefreshToken').find('same-id')).toEqual({ jti: 'same-id', kind: 'RefreshToken' });
    });

    it('a re-saved record replaces the stored payload and lifetime', async () => {
      const a = adapter('Session');
      await a.upsert('s1', { uid: 'u1', accountId: 'acc', loginTs: 1 }, 10);
      await a.upsert('s1', { uid: 'u1', accountId: 'acc', loginTs: 2 }, 100);

      tick(50_000);
      expect(await a.find('s1')).toEqual({ uid: 'u1', accountId: 'acc', loginTs: 2 });
      expect(await rowCount()).toBe(1);
    });

    it('serves oidc-provider Client lookups from the client registry and refuses to store clients', async () => {
      await clients.create({ client_id: 'adapter-rp', redirect_uris: ['https://rp.example/cb'] }, 'rp-secret-value');
      const a = adapter('Client');

      expect(await a.find('adapter-rp')).toEqual({
        client_id: 'adapter-rp',
        redirect_uris: ['https://rp.example/cb'],
        client_secret: 'rp-secret-value',
      });
      expect(await a.find('no-such-client')).toBeUndefined();
      await expect(a.upsert('dyn', { client_id: 'dyn' }, 60)).rejects.toThrow(/clients are managed/);
      expect(await rowCount()).toBe(0);
    });
  });

  describe('expiry', () => {
    it.each(MODELS)('%s: a record is found until its lifetime has passed, then never', async (model) => {
      const a = adapter(model);
      await a.upsert('short', { jti: 'short', accountId: 'account' }, 1);

      tick(999);
      expect(await a.find('short')).toEqual({ jti: 'short', accountId: 'account' });

      tick(1); // expires_at is exclusive: at exactly upsert time + expiresIn the record is gone
      expect(await a.find('short')).toBeUndefined();

      tick(60_000);
      expect(await a.find('short')).toBeUndefined();
    });

    it('expires session uid indexes', async () => {
      const a = adapter('Session');
      await a.upsert('session', { uid: 'uid' }, 1);
      expect(await a.findByUid('uid')).toEqual({ uid: 'uid' });

      tick(1001);
      expect(await a.findByUid('uid')).toBeUndefined();
    });

    it('expires user code indexes', async () => {
      const a = adapter('DeviceCode');
      await a.upsert('device', { userCode: 'code' }, 1);
      expect(await a.findByUserCode('code')).toEqual({ userCode: 'code' });

      tick(1001);
      expect(await a.findByUserCode('code')).toBeUndefined();
    });

    it('an expired record stays invisible even after it is consumed', async () => {
      const a = adapter('AuthorizationCode');
      await a.upsert('code', { jti: 'code' }, 1);
      tick(2000);
      await a.consume('code');
      expect(await a.find('code')).toBeUndefined();
    });
  });

  describe('findWithContext (a token, its grant, its session and its account in one round trip)', () => {
    it('returns the artefact with its live grant and session, each only while it lives', async () => {
      await payloads.upsert('Grant', 'g5', { jti: 'g5', accountId: 'acc', clientId: 'rp' }, 30);
      await payloads.upsert('Session', 's5', { jti: 's5', uid: 'uid5', accountId: 'acc' }, 45);
      await payloads.upsert('Session', 's6', { jti: 's6', uid: 'uid6', accountId: 'acc' }, 45);
      await payloads.upsert('AccessToken', 'at5', { jti: 'at5', grantId: 'g5', sessionUid: 'uid5', accountId: 'acc' }, 60);
      await payloads.upsert('AccessToken', 'lone', { jti: 'lone', accountId: 'acc' }, 60);
      await payloads.consume('AccessToken', 'at5');
      const found = (models: string[], id: string) =>
        payloads.findWithContext(models, id).then(({ payloads: p, grant, session, account }) => ({ payloads: Object.fromEntries(p), grant, session, account }));
      expect(await found(['AccessToken'], 'at5')).toEqual({
        payloads: { AccessToken: { jti: 'at5', grantId: 'g5', sessionUid: 'uid5', accountId: 'acc', consumed: Math.floor(T0 / 1000) } },
        grant: { jti: 'g5', accountId: 'acc', clientId: 'rp' },
        session: { jti: 's5', uid: 'uid5', accountId: 'acc' },
        account: undefined, // no such account
      });
      expect(await found(['AccessToken'], 'lone')).toEqual({ payloads: { AccessToken: { jti: 'lone', accountId: 'acc' } }, grant: undefined, session: undefined, account: undefined });
      expect(await found(['RefreshToken'], 'at5')).toEqual({ payloads: {}, grant: undefined, session: undefined, account: undefined });
      tick(31_000); // the grant expired, the session and the token not yet
      expect(await found(['AccessToken'], 'at5')).toMatchObject({ payloads: { AccessToken: { jti: 'at5' } }, grant: undefined, session: { jti: 's5' } });
      tick(15_000); // now the session too
      expect(await found(['AccessToken'], 'at5')).toMatchObject({ payloads: { AccessToken: { jti: 'at5' } }, grant: undefined, session: undefined });
      await payloads.upsert('Grant', 'g5', { jti: 'g5', accountId: 'acc', clientId: 'rp' }, 60);
      tick(15_000); // now the token expired, the re-saved grant not yet
      expect(await found(['AccessToken'], 'at5')).toEqual({ payloads: {}, grant: { jti: 'g5', accountId: 'acc', clientId: 'rp' }, session: undefined, account: undefined });
    });

    it('looks one value up as several models, and reads the account the artefact names, never its password hash', async () => {
      const accounts = createAccountRepository(db, () => clock);
      const citizen = await accounts.create({ username: `c-${randomBytes(4).toString('hex')}`, email: 'c@example.rs', emailVerified: true, givenName: 'Мила', familyName: 'Јовић', jmbg: null }, 'hash-never-read');
      await payloads.upsert('RefreshToken', 'v1', { jti: 'v1', accountId: citizen.id }, 60);
      await payloads.upsert('ClientCredentials', 'v2', { jti: 'v2', clientId: 'rp' }, 60);
      const both = await payloads.findWithContext(['AccessToken', 'ClientCredentials', 'RefreshToken'], 'v1');
      expect(Object.fromEntries(both.payloads)).toEqual({ RefreshToken: { jti: 'v1', accountId: citizen.id } });
      expect(both.account).toEqual(await accounts.findById(citizen.id));
      expect(both.account).toMatchObject({ givenName: 'Мила', emailVerified: true, status: 'active' });
      expect(JSON.stringify(both.account)).not.toContain('hash-never-read');
      const cc = await payloads.findWithContext(['AccessToken', 'ClientCredentials', 'RefreshToken'], 'v2');
      expect(Object.fromEntries(cc.payloads)).toEqual({ ClientCredentials: { jti: 'v2', clientId: 'rp' } });
      expect(cc.account).toBeUndefined();
      await expect(payloads.findWithContext([], 'v1')).rejects.toThrow(/one to three/);
    });
  });

  describe('saveAll (several artefacts in one step)', () => {
    it('saves new and existing artefacts, the last save of one artefact winning, and moves their indexes', async () => {
      await payloads.upsert('Session', 's1', { jti: 's1', uid: 'u-old', accountId: 'acc' }, 60);
      await payloads.consume('Session', 's1');
      await payloads.saveAll([
        { model: 'AuthorizationCode', id: 'c1', payload: { jti: 'c1', grantId: 'g9', accountId: 'acc' }, expiresInSeconds: 60 },
        { model: 'Session', id: 's1', payload: { jti: 's1', uid: 'u-first', accountId: 'acc' }, expiresInSeconds: 60 },
        { model: 'Session', id: 's1', payload: { jti: 's1', uid: 'u-new', accountId: 'acc' }, expiresInSeconds: 120 },
      ]);
      expect(await payloads.find('AuthorizationCode', 'c1')).toEqual({ jti: 'c1', grantId: 'g9', accountId: 'acc' });
      // A re-save clears the consumed mark and the old uid, as upsert does.
      expect(await payloads.find('Session', 's1')).toEqual({ jti: 's1', uid: 'u-new', accountId: 'acc' });
      expect(await payloads.findByUid('Session', 'u-old')).toBeUndefined();
      expect(await payloads.findByUid('Session', 'u-new')).toMatchObject({ jti: 's1' });
      tick(61_000);
      expect(await payloads.find('AuthorizationCode', 'c1')).toBeUndefined();
      expect(await payloads.find('Session', 's1')).toBeDefined();
    });

    const devices = async () => (await db('session_devices').where({ session_uid: 'u-dev' })) as { account_id: string; ip: string | null; created_at: number | string; last_seen_at: number | string }[];
    const device = { sessionUid: 'u-dev', accountId: 'acc', ip: '192.0.2.7', userAgent: 'Browser/1' };
    const session = (expiresInSeconds = 60) => ({ model: 'Session', id: 'sd1', payload: { jti: 'sd1', uid: 'u-dev', accountId: 'acc' }, expiresInSeconds });

    it("touches the session's device in the same step: the first touch fixes where it started, each later one when it was last seen", async () => {
      await db('session_devices').where({ session_uid: 'u-dev' }).delete();
      await payloads.saveAll([{ model: 'AuthorizationCode', id: 'cd1', payload: { jti: 'cd1', grantId: 'g9', accountId: 'acc' }, expiresInSeconds: 60 }, session()], device);
      expect(await payloads.find('AuthorizationCode', 'cd1')).toBeDefined();
      expect(await devices()).toEqual([expect.objectContaining({ account_id: 'acc', ip: '192.0.2.7' })]);
      expect(Number((await devices())[0]!.last_seen_at)).toBe(T0);
      tick(90_000);
      await payloads.saveAll([session(120)], device);
      const [row] = await devices();
      expect([Number(row!.created_at), Number(row!.last_seen_at)]).toEqual([T0, T0 + 90_000]);
      await expect(payloads.saveAll([{ ...session(), payload: { jti: 'sd1', uid: 'someone-else', accountId: 'acc' } }], device)).rejects.toThrow(/with its session/);
    });

    it('writes no device row when the saves fail, and no saves when the device row fails', async () => {
      await db('session_devices').where({ session_uid: 'u-dev' }).delete();
      const broken = { model: 'AuthorizationCode', id: null as unknown as string, payload: { jti: 'x' }, expiresInSeconds: 60 };
      // (by its message: better-sqlite3's error is not always an Error of the test's realm)
      await expect(payloads.saveAll([session(), broken], device)).rejects.toHaveProperty('message', expect.stringMatching(/null/i));
      expect(await payloads.find('Session', 'sd1')).toBeUndefined();
      expect(await devices()).toEqual([]);
      await expect(payloads.saveAll([session()], { ...device, accountId: null as unknown as string })).rejects.toHaveProperty('message', expect.stringMatching(/null/i));
      expect(await payloads.find('Session', 'sd1')).toBeUndefined();
      expect(await devices()).toEqual([]);
    });
  });

  describe('rotation (consume and successor in one step)', () => {
    it('consumes the presented token and saves its successor together, once', async () => {
      await payloads.upsert('RefreshToken', 'rt1', { jti: 'rt1', grantId: 'g1', accountId: 'acc' }, 60);
      tick(1000);
      expect(await payloads.consumeAndSave('RefreshToken', 'rt1', [{ model: 'RefreshToken', id: 'rt2', payload: { jti: 'rt2', grantId: 'g1', accountId: 'acc' }, expiresInSeconds: 60 }])).toBe(true);
      expect(await payloads.find('RefreshToken', 'rt1')).toMatchObject({ consumed: Math.floor((T0 + 1000) / 1000) });
      expect(await payloads.find('RefreshToken', 'rt2')).toEqual({ jti: 'rt2', grantId: 'g1', accountId: 'acc' });
      // The same token presented again (a concurrent reuse): nothing is consumed or saved.
      expect(await payloads.consumeAndSave('RefreshToken', 'rt1', [{ model: 'RefreshToken', id: 'rt3', payload: { jti: 'rt3', grantId: 'g1' }, expiresInSeconds: 60 }])).toBe(false);
      expect(await payloads.find('RefreshToken', 'rt3')).toBeUndefined();
    });

    it('saves no successor for an expired or unknown token', async () => {
      await payloads.upsert('RefreshToken', 'old', { jti: 'old', grantId: 'g2' }, 1);
      tick(2000);
      expect(await payloads.consumeAndSave('RefreshToken', 'old', [{ model: 'RefreshToken', id: 'next', payload: { jti: 'next', grantId: 'g2' }, expiresInSeconds: 60 }])).toBe(false);
      expect(await payloads.consumeAndSave('RefreshToken', 'missing', [{ model: 'RefreshToken', id: 'next', payload: { jti: 'next', grantId: 'g2' }, expiresInSeconds: 60 }])).toBe(false);
      expect(await payloads.find('RefreshToken', 'next')).toBeUndefined();
    });
  });

  describe('rotation with its ledger entry (one step)', () => {
    const successor = (id: string) => [{ model: 'RefreshToken', id, payload: { jti: id, grantId: 'g9', accountId: 'acc9' }, expiresInSeconds: 60 }];
    const record = (n: number) => ({ chain: 'account:acc9', actor: 'acc9', action: 'ledger.data_released', subjectAccountId: 'acc9', clientId: 'rp', details: { claims: ['sub'], channel: 'id_token', n } });

    it('appends the entry exactly when the tokens are saved, on the chain, and not for a reuse', async () => {
      const audit = createAuditLog(db, () => clock);
      await db('audit_events').where({ chain: 'account:acc9' }).delete();
      await audit.append({ ...record(0), action: 'ledger.signin' });
      await payloads.upsert('RefreshToken', 'r1', { jti: 'r1', grantId: 'g9', accountId: 'acc9' }, 60);
      expect(await payloads.consumeAndSave('RefreshToken', 'r1', successor('r2'), record(1))).toBe(true);
      expect(await payloads.find('RefreshToken', 'r2')).toBeDefined();
      // Reuse: nothing consumed, nothing saved, nothing recorded.
      expect(await payloads.consumeAndSave('RefreshToken', 'r1', successor('r3'), record(2))).toBe(false);
      expect(await payloads.find('RefreshToken', 'r3')).toBeUndefined();
      const entries = await audit.list({ chain: 'account:acc9' });
      expect(entries.map((e) => [e.seq, e.action, e.details.n])).toEqual([[2, 'ledger.data_released', 1], [1, 'ledger.signin', 0]]);
      expect(entries[0]!.prevHash).toBe(entries[1]!.hash);
      expect(await audit.verify('account:acc9')).toEqual({ ok: true, checked: 2 });
    });

    it('takes its turn on a chain appended to concurrently, and every entry lands', async () => {
      const audit = createAuditLog(db, () => clock);
      await db('audit_events').where({ chain: 'account:acc9' }).delete();
      for (let i = 0; i < 6; i += 1) await payloads.upsert('RefreshToken', `p${i}`, { jti: `p${i}`, grantId: 'g9', accountId: 'acc9' }, 60);
      const results = await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => payloads.consumeAndSave('RefreshToken', `p${i}`, successor(`q${i}`), record(i))),
        ...Array.from({ length: 6 }, (_, i) => audit.append({ ...record(10 + i), action: 'ledger.signin' })),
      ]);
      expect(results.slice(0, 6)).toEqual([true, true, true, true, true, true]);
      const entries = await audit.list({ chain: 'account:acc9' });
      expect(entries).toHaveLength(12);
      expect(entries.map((e) => e.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(await audit.verify('account:acc9')).toEqual({ ok: true, checked: 12 });
    });
  });

  describe('consume', () => {
    it('marks the record consumed at the current time, in epoch seconds, keeping the payload', async () => {
      const a = adapter('AuthorizationCode');
      const payload = { jti: 'code', grantId: 'g', accountId: 'acc', scope: 'openid' };
      await a.upsert('code', payload, 60);
      expect(await a.find('code')).not.toHaveProperty('consumed');

      tick(5_500);
      await a.consume('code');

      const found = await a.find('code');
      expect(found).toEqual({ ...payload, consumed: Math.floor((T0 + 5_500) / 1000) });
      expect(Number.isInteger(found!.consumed)).toBe(true);
    });

    it('does not change the record lifetime', async () => {
      const a = adapter('RefreshToken');
      await a.upsert('rt', { jti: 'rt' }, 10);
      tick(1000);
      await a.consume('rt');

      tick(8_999);
      expect(await a.find('rt')).toMatchObject({ jti: 'rt', consumed: Math.floor((T0 + 1000) / 1000) });
      tick(1);
      expect(await a.find('rt')).toBeUndefined();
    });

    it('consumes only the named record of the named model', async () => {
      await adapter('AuthorizationCode').upsert('one', { jti: 'one' }, 60);
      await adapter('AuthorizationCode').upsert('two', { jti: 'two' }, 60);
      await adapter('RefreshToken').upsert('one', { jti: 'one' }, 60);

      await adapter('AuthorizationCode').consume('one');

      expect(await adapter('AuthorizationCode').find('one')).toHaveProperty('consumed');
      expect(await adapter('AuthorizationCode').find('two')).not.toHaveProperty('consumed');
      expect(await adapter('RefreshToken').find('one')).not.toHaveProperty('consumed');
    });

    it('is visible through the uid and user code indexes too', async () => {
      await adapter('DeviceCode').upsert('device', { userCode: 'UC-1', uid: 'dev-uid' }, 60);
      await adapter('DeviceCode').consume('device');

      expect(await adapter('DeviceCode').findByUserCode('UC-1')).toEqual({
        userCode: 'UC-1',
        uid: 'dev-uid',
        consumed: Math.floor(T0 / 1000),
      });
    });
  });

  describe('secondary indexes', () => {
    it('finds a session by its uid, only within the Session model', async () => {
      await adapter('Session').upsert('session-1', { uid: 'uid-1', accountId: 'acc' }, 60);
      await adapter('Session').upsert('session-2', { uid: 'uid-2', accountId: 'acc' }, 60);
      await adapter('Interaction').upsert('interaction-1', { uid: 'uid-3' }, 60);

      expect(await adapter('Session').findByUid('uid-1')).toEqual({ uid: 'uid-1', accountId: 'acc' });
      expect(await adapter('Session').findByUid('uid-2')).toEqual({ uid: 'uid-2', accountId: 'acc' });
      expect(await adapter('Session').findByUid('uid-3')).toBeUndefined();
      expect(await adapter('Session').findByUid('session-1')).toBeUndefined();
      expect(await adapter('Interaction').findByUid('uid-1')).toBeUndefined();
    });

    it('finds a device code by its user code, only within its model', async () => {
      await adapter('DeviceCode').upsert('device', { userCode: 'WDJB-MJHT', grantId: 'g' }, 60);

      expect(await adapter('DeviceCode').findByUserCode('WDJB-MJHT')).toEqual({ userCode: 'WDJB-MJHT', grantId: 'g' });
      expect(await adapter('DeviceCode').findByUserCode('XXXX-XXXX')).toBeUndefined();
      expect(await adapter('AccessToken').findByUserCode('WDJB-MJHT')).toBeUndefined();
    });

    it('updates session uid and user code indexes when a record is re-saved', async () => {
      const session = adapter('Session');
      const device = adapter('DeviceCode');
      const sessionPayload = { uid: 'new-uid' };
      const devicePayload = { userCode: 'new-code' };

      await session.upsert('session', { uid: 'old-uid' }, 60);
      await session.upsert('session', sessionPayload, 60);
      await device.upsert('device', { userCode: 'old-code' }, 60);
      await device.upsert('device', devicePayload, 60);

      expect(await session.findByUid('old-uid')).toBeUndefined();
      expect(await session.findByUid('new-uid')).toEqual(sessionPayload);
      expect(await device.findByUserCode('old-code')).toBeUndefined();
      expect(await device.findByUserCode('new-code')).toEqual(devicePayload);
    });

    it('removes secondary and grant indexes when records are destroyed', async () => {
      const session = adapter('Session');
      const device = adapter('DeviceCode');

      await session.upsert('session', { uid: 'uid' }, 60);
      await device.upsert('device', { grantId: 'grant', jti: 'device', userCode: 'code' }, 60);
      await session.destroy('session');
      await device.destroy('device');

      expect(await session.find('session')).toBeUndefined();
      expect(await session.findByUid('uid')).toBeUndefined();
      expect(await device.findByUserCode('code')).toBeUndefined();
      expect(await rowCount()).toBe(0);
    });

    it('does not delete a secondary index reassigned to another record', async () => {
      const a = adapter('DeviceCode');
      const replacement = { userCode: 'code' };

      await a.upsert('first', { userCode: 'code' }, 60);
      await a.upsert('second', replacement, 60);
      await a.destroy('first');

      expect(await a.findByUserCode('code')).toEqual(replacement);
    });

    it('a destroyed interaction is not brought back by a later save, and goes when it expires', async () => {
      const interaction = adapter('Interaction');
      await interaction.upsert('finished', { uid: 'i-uid', returnTo: '/auth/finished', result: { login: { accountId: 'a' } } }, 60);
      await interaction.destroy('finished');
      expect(await interaction.find('finished')).toBeUndefined();
      // A step that loaded it before the resume saves it afterwards (interactions/kit.ts finishWith).
      await interaction.upsert('finished', { uid: 'i-uid', returnTo: '/auth/finished', result: { login: { accountId: 'a' } } }, 60);
      expect(await interaction.find('finished')).toBeUndefined();
      // Nothing of it is kept but the tombstone's key and expiry.
      const [kept] = (await db('oidc_payloads').where({ model: 'Interaction', id: 'finished' })) as { payload: string; uid: string | null }[];
      expect(JSON.parse(kept!.payload)).toEqual({});
      expect(kept!.uid).toBeNull();
      // Other models are saved again after a destroy as before.
      await adapter('Session').upsert('s', { uid: 's' }, 60);
      await adapter('Session').destroy('s');
      await adapter('Session').upsert('s', { uid: 's2' }, 60);
      expect(await adapter('Session').find('s')).toEqual({ uid: 's2' });
      tick(61_000);
      expect(await payloads.purgeExpired()).toBe(2);
      expect(await rowCount()).toBe(0);
    });

    it('claims an interaction once: its payload for one of two claims, nothing after, again after a revive', async () => {
      const stored = { uid: 'c-uid', returnTo: '/auth/c', result: { login: { accountId: 'a' } } };
      await adapter('Interaction').upsert('claimed', stored, 60);
      const both = await Promise.all([payloads.claimInteraction('claimed'), payloads.claimInteraction('claimed')]);
      expect(both.filter((p) => p !== undefined)).toEqual([stored]);
      expect(await adapter('Interaction').find('claimed')).toBeUndefined();
      await adapter('Interaction').upsert('claimed', stored, 60);
      expect(await payloads.claimInteraction('claimed')).toBeUndefined();
      await payloads.reviveInteraction('claimed', { ...stored, result: undefined }, 60);
      expect(await adapter('Interaction').find('claimed')).toEqual({ uid: 'c-uid', returnTo: '/auth/c' });
      expect(await payloads.claimInteraction('missing')).toBeUndefined();
      tick(61_000);
      await payloads.reviveInteraction('claimed', stored, 60);
      expect(await payloads.claimInteraction('claimed')).toEqual(stored);
    });

    it('destroying an unknown record is harmless', async () => {
      await adapter('Session').upsert('kept', { uid: 'kept' }, 60);
      await expect(adapter('Session').destroy('missing')).resolves.toBeUndefined();
      expect(await adapter('Session').find('kept')).toEqual({ uid: 'kept' });
    });
  });

  describe('grant revocation', () => {
    it('revokes every model of a grant, whichever adapter instance is asked', async () => {
      const grantModels = ['AuthorizationCode', 'AccessToken', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'];
      for (const model of grantModels) {
        await adapter(model).upsert(`${model}-g1`, { grantId: 'g1', jti: `${model}-g1`, userCode: `${model}-code` }, 120);
        await adapter(model).upsert(`${model}-g2`, { grantId: 'g2', jti: `${model}-g2` }, 120);
      }
      await adapter('Session').upsert('session', { uid: 'uid', accountId: 'acc' }, 120);
      await adapter('Grant').upsert('g1', { jti: 'g1', accountId: 'acc', clientId: 'rp' }, 120);

      await adapter('AccessToken').revokeByGrantId('g1');

      for (const model of grantModels) {
        expect(await adapter(model).find(`${model}-g1`)).toBeUndefined();
        expect(await adapter(model).findByUserCode(`${model}-code`)).toBeUndefined();
        expect(await adapter(model).find(`${model}-g2`)).toEqual({ grantId: 'g2', jti: `${model}-g2` });
      }
      // Records that are not members of the grant stay: oidc-provider destroys the Grant itself.
      expect(await adapter('Session').findByUid('uid')).toEqual({ uid: 'uid', accountId: 'acc' });
      expect(await adapter('Grant').find('g1')).toEqual({ jti: 'g1', accountId: 'acc', clientId: 'rp' });
    });

    it('deduplicates grant members on repeated upsert', async () => {
      const a = adapter('AccessToken');
      const payload = { grantId: 'grant', jti: 'token' };

      await a.upsert('token', payload, 60);
      await a.upsert('token', payload, 60);
      expect(await rowCount()).toBe(1);

      await a.revokeByGrantId('grant');
      expect(await a.find('token')).toBeUndefined();
      expect(await rowCount()).toBe(0);
    });

    it('moves grant membership when a record is updated', async () => {
      const a = adapter('AccessToken');
      const payload = { grantId: 'second', jti: 'token' };

      await a.upsert('token', { grantId: 'first', jti: 'token' }, 60);
      await a.upsert('token', payload, 60);
      await a.revokeByGrantId('first');

      expect(await a.find('token')).toEqual(payload);

      await a.revokeByGrantId('second');
      expect(await a.find('token')).toBeUndefined();
    });

    it('a record re-saved without a grant leaves the grant', async () => {
      const a = adapter('AccessToken');
      await a.upsert('token', { grantId: 'grant', jti: 'token' }, 60);
      await a.upsert('token', { jti: 'token' }, 60);

      await a.revokeByGrantId('grant');
      expect(await a.find('token')).toEqual({ jti: 'token' });
    });

    it('still revokes the longest-lived member after shorter ones have expired', async () => {
      const a = adapter('AccessToken');
      const r = adapter('RefreshToken');
      await a.upsert('short', { grantId: 'grant', jti: 'short' }, 1);
      await r.upsert('long', { grantId: 'grant', jti: 'long' }, 2);

      tick(1001);
      expect(await a.find('short')).toBeUndefined();
      expect(await r.find('long')).toEqual({ grantId: 'grant', jti: 'long' });

      await a.revokeByGrantId('grant');
      expect(await r.find('long')).toBeUndefined();
      expect(await rowCount()).toBe(0);
    });
  });

  describe('listByAccount', () => {
    it("lists one account's live records of one model only", async () => {
      await adapter('Session').upsert('s-a1', { uid: 'u1', accountId: 'alice' }, 3600);
      await adapter('Session').upsert('s-a2', { uid: 'u2', accountId: 'alice' }, 7200);
      await adapter('Session').upsert('s-a-expiring', { uid: 'u3', accountId: 'alice' }, 10);
      await adapter('Session').upsert('s-b', { uid: 'u4', accountId: 'bob' }, 3600);
      await adapter('Session').upsert('s-anon', { uid: 'u5' }, 3600);
      await adapter('Grant').upsert('g-a', { jti: 'g-a', accountId: 'alice', clientId: 'rp' }, 3600);
      await adapter('Grant').upsert('g-b', { jti: 'g-b', accountId: 'bob', clientId: 'rp' }, 3600);
      await adapter('AccessToken').upsert('at-a', { jti: 'at-a', accountId: 'alice', grantId: 'g-a' }, 3600);
      tick(10_000);

      const sessions = await payloads.listByAccount('alice', 'Session');
      expect(sessions.map((s) => s.id).sort()).toEqual(['s-a1', 's-a2']);
      const first = sessions.find((s) => s.id === 's-a1')!;
      expect(first).toEqual({
        model: 'Session',
        id: 's-a1',
        grantId: null,
        accountId: 'alice',
        expiresAt: T0 + 3600 * 1000,
        payload: { uid: 'u1', accountId: 'alice' },
      });

      const grants = await payloads.listByAccount('alice', 'Grant');
      expect(grants).toEqual([
        {
          model: 'Grant',
          id: 'g-a',
          grantId: null,
          accountId: 'alice',
          expiresAt: T0 + 3600 * 1000,
          payload: { jti: 'g-a', accountId: 'alice', clientId: 'rp' },
        },
      ]);
      expect((await payloads.listByAccount('bob', 'Session')).map((s) => s.id)).toEqual(['s-b']);
      expect(await payloads.listByAccount('carol', 'Session')).toEqual([]);
    });

    it('follows a record whose account changed and reports consumption', async () => {
      await adapter('Session').upsert('s', { uid: 'u', accountId: 'alice' }, 60);
      await adapter('Session').upsert('s', { uid: 'u', accountId: 'bob' }, 60);
      await adapter('Session').consume('s');

      expect(await payloads.listByAccount('alice', 'Session')).toEqual([]);
      const [bobs] = await payloads.listByAccount('bob', 'Session');
      expect(bobs?.payload).toEqual({ uid: 'u', accountId: 'bob', consumed: Math.floor(T0 / 1000) });
    });
  });

  describe('latestGrant (the earlier consent carried over to a new session)', () => {
    it("is the newest live grant of the account's own for the client, with the account's refusals to the client", async () => {
      await db('mandate_grants').delete();
      await db('consent_refusals').delete();
      await payloads.upsert('Grant', 'g-old', { jti: 'g-old', accountId: 'alice', clientId: 'rp' }, 3600);
      await payloads.upsert('Grant', 'g-new', { jti: 'g-new', accountId: 'alice', clientId: 'rp' }, 7200);
      // Newer, but made under a mandate (whatever became of it: no mandates row), for another client,
      // another account's or expired: none of them is carried over.
      await payloads.upsert('Grant', 'g-mandate', { jti: 'g-mandate', accountId: 'alice', clientId: 'rp' }, 9000);
      await db('mandate_grants').insert({ grant_id: 'g-mandate', mandate_id: 'm-gone', created_at: clock });
      await payloads.upsert('Grant', 'g-other-rp', { jti: 'g-other-rp', accountId: 'alice', clientId: 'rp2' }, 9000);
      await payloads.upsert('Grant', 'g-bob', { jti: 'g-bob', accountId: 'bob', clientId: 'rp' }, 9000);
      await payloads.upsert('Grant', 'g-short', { jti: 'g-short', accountId: 'alice', clientId: 'rp' }, 10);
      await payloads.upsert('Session', 's-a', { uid: 'u', accountId: 'alice', clientId: 'rp' }, 9000);
      await db('consent_refusals').insert([
        { account_id: 'alice', client_id: 'rp', claim: 'email', refused_at: clock },
        { account_id: 'alice', client_id: 'rp', claim: 'jmbg', refused_at: clock },
        { account_id: 'alice', client_id: 'rp2', claim: 'birthdate', refused_at: clock },
        { account_id: 'bob', client_id: 'rp', claim: 'family_name', refused_at: clock },
      ]);
      tick(10_000);
      const { grant, refused } = await payloads.latestGrant('alice', 'rp');
      expect(grant).toEqual({ model: 'Grant', id: 'g-new', grantId: null, accountId: 'alice', expiresAt: T0 + 7200 * 1000, payload: { jti: 'g-new', accountId: 'alice', clientId: 'rp' } });
      expect(refused).toEqual(new Set(['email', 'jmbg']));
      expect(await payloads.latestGrant('alice', 'rp3')).toEqual({ grant: undefined, refused: new Set() });
      expect(await payloads.latestGrant('carol', 'rp2')).toEqual({ grant: undefined, refused: new Set() });
      // Only the grant under a mandate left: nothing is carried over, the refusals still read.
      await payloads.destroy('Grant', 'g-old');
      await payloads.destroy('Grant', 'g-new');
      expect(await payloads.latestGrant('alice', 'rp')).toEqual({ grant: undefined, refused: new Set(['email', 'jmbg']) });
      expect((await payloads.latestGrant('alice', 'rp2')).grant?.id).toBe('g-other-rp');
    });
  });

  describe('purgeExpired', () => {
    it('deletes only expired rows and says how many', async () => {
      await adapter('AccessToken').upsert('expired-1', { jti: 'expired-1' }, 1);
      await adapter('Interaction').upsert('expired-2', { uid: 'i' }, 2);
      await adapter('Session').upsert('live', { uid: 's' }, 3600);
      await adapter('Grant').upsert('no-lifetime', { jti: 'no-lifetime' }, undefined as unknown as number);

      tick(2000);
      expect(await payloads.purgeExpired()).toBe(2);

      expect(await rowCount()).toBe(2);
      const ids = ((await db('oidc_payloads').select('id').orderBy('id')) as { id: string }[]).map((r) => r.id);
      expect(ids).toEqual(['live', 'no-lifetime']);
      expect(await adapter('Session').find('live')).toEqual({ uid: 's' });
      expect(await adapter('Grant').find('no-lifetime')).toEqual({ jti: 'no-lifetime' });

      expect(await payloads.purgeExpired()).toBe(0);
    });

    it('takes an explicit time', async () => {
      await adapter('AccessToken').upsert('a', { jti: 'a' }, 10);
      await adapter('AccessToken').upsert('b', { jti: 'b' }, 20);

      expect(await payloads.purgeExpired(T0 + 9_999)).toBe(0);
      expect(await payloads.purgeExpired(T0 + 10_000)).toBe(1);
      expect(await adapter('AccessToken').find('b')).toEqual({ jti: 'b' });
      expect(await payloads.purgeExpired(T0 + 60_000)).toBe(1);
      expect(await rowCount()).toBe(0);
    });
  });
});
