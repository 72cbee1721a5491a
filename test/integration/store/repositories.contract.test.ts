/**
 * Repository contracts on every store: migrations, accounts, the client registry (secrets sealed at
 * rest) and the signing/cookie key set (creation, idempotence across instances, rotation, purge).
 */
import { randomBytes } from 'node:crypto';
import { isPostgres, migrate, migrationsCurrent, openStore, statement, type Db } from '../../../src/store/db.js';
import { createAccountRepository, type AccountRepository } from '../../../src/store/accounts.js';
import { CLIENT_CACHE_MS, createClientRepository, type ClientRepository } from '../../../src/store/clients.js';
import { createKeyRepository } from '../../../src/store/keys.js';
import { createKeyManager, SIGNING_ALGS, type KeyManager } from '../../../src/oidc/keys.js';
import { createSecretBox, type SecretBox } from '../../../src/security/crypto.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
/**
 * Constraint errors are matched by code, not with toThrow(): a native driver's error class can come
 * from another realm than the test's when the addon was first loaded by an earlier test file, and
 * then fails `instanceof Error`.
 */
const UNIQUE_VIOLATION = /^(SQLITE_CONSTRAINT_(PRIMARYKEY|UNIQUE)|23505)$/;
const HOUR = 3600 * 1000;

describe.each(stores())('repository contracts (%s)', (store) => {
  describe('migrations', () => {
    let testDb: TestDatabase;
    let db: Db;

    beforeAll(async () => {
      testDb = await createTestDatabase(store);
      db = openStore(testDb.database);
    });
    afterAll(async () => {
      await db?.destroy();
      await testDb?.drop();
    });

    it('apply every migration once; a second run is a no-op and the schema is current', async () => {
      expect(await migrationsCurrent(db)).toBe(false);

      const first = await migrate(db);
      expect(first.length).toBeGreaterThanOrEqual(2);
      expect(first[0]).toBe('20261127000000_initial');
      expect(await migrationsCurrent(db)).toBe(true);

      expect(await migrate(db)).toEqual([]);
      expect(await migrationsCurrent(db)).toBe(true);
      for (const table of ['accounts', 'oidc_payloads', 'clients', 'keys', 'credentials']) {
        expect(await db.schema.hasTable(table)).toBe(true);
      }
    });

    // PostgreSQL only: SQLite has no plan cache to choose.
    if (store === 'postgres') it('plans each prepared statement once per PostgreSQL connection', async () => {
      expect(isPostgres(db)).toBe(true);
      // Every pooled connection, including ones opened later, is set up alike.
      const modes = await Promise.all(Array.from({ length: 3 }, () => statement<{ plan_cache_mode: string }>(db, 'show_plan_cache_mode', 'show plan_cache_mode')([])));
      expect(modes.map((rows) => rows[0]!.plan_cache_mode)).toEqual(['force_generic_plan', 'force_generic_plan', 'force_generic_plan']);
    });
  });

  describe('with a migrated store', () => {
    let testDb: TestDatabase;
    let db: Db;
    let clock: number;
    const now = () => clock;
    let box: SecretBox;

    beforeAll(async () => {
      testDb = await createTestDatabase(store);
      db = openStore(testDb.database);
      await migrate(db);
      box = createSecretBox(randomBytes(32));
    });
    afterAll(async () => {
      await db?.destroy();
      await testDb?.drop();
    });
    beforeEach(() => {
      clock = T0;
    });

    describe('accounts', () => {
      let accounts: AccountRepository;
      beforeAll(async () => {
        await db('credentials').delete();
        await db('accounts').delete();
        accounts = createAccountRepository(db, now);
      });

      it('creates an account and finds it by id and by username in any case', async () => {
        const created = await accounts.create(
          { username: '  Marko.Markovic ', email: 'marko@example.rs', emailVerified: true, givenName: 'Марко', familyName: 'Марковић' },
          'hash-1',
        );
        expect(created).toMatchObject({
          username: 'marko.markovic',
          email: 'marko@example.rs',
          emailVerified: true,
          givenName: 'Марко',
          familyName: 'Марковић',
          status: 'active',
        });
        expect(created.createdAt.getTime()).toBe(T0);

        expect(await accounts.findById(created.id)).toEqual(created);
        expect(await accounts.findByUsername('MARKO.MARKOVIC')).toEqual(created);
        expect(await accounts.findByUsername('marko.markovic')).toEqual(created);
        expect(await accounts.findByUsername('marko')).toBeUndefined();
        expect(await accounts.findById('00000000-0000-0000-0000-000000000000')).toBeUndefined();
      });

      it('rejects a duplicate username, whatever its case', async () => {
        await accounts.create({ username: 'jelena' }, null);
        await expect(accounts.create({ username: 'Jelena' }, null)).rejects.toMatchObject({ code: expect.stringMatching(UNIQUE_VIOLATION) });
        await expect(accounts.create({ username: 'jelena' }, 'x')).rejects.toMatchObject({ code: expect.stringMatching(UNIQUE_VIOLATION) });
        const [{ n }] = (await db('accounts').where({ username: 'jelena' }).count({ n: '*' })) as [{ n: number | string }];
        expect(Number(n)).toBe(1);
      });

      it('stores a new password hash and returns it only through findCredentialsByUsername', async () => {
        const account = await accounts.create({ username: 'petar' }, null);
        expect(await accounts.findCredentialsByUsername('petar')).toEqual({ account, passwordHash: null });

        clock = T0 + 5000;
        await accounts.setPasswordHash(account.id, '$argon2id$v=19$new');

        const found = await accounts.findCredentialsByUsername('PETAR');
        expect(found?.passwordHash).toBe('$argon2id$v=19$new');
        expect(found?.account.updatedAt.getTime()).toBe(T0 + 5000);
        expect(found?.account.createdAt.getTime()).toBe(T0);
        expect(found?.account).not.toHaveProperty('passwordHash');
        expect(await accounts.findById(account.id)).not.toHaveProperty('passwordHash');
      });
    });

    describe('clients', () => {
      let clients: ClientRepository;
      const SECRET = 'correct-horse-battery-staple-7f3a9c';
      beforeAll(async () => {
        await db('clients').delete();
        clients = createClientRepository(db, box, now);
      });

      it('stores the secret sealed and hands it back in the metadata', async () => {
        await clients.create(
          { client_id: 'rp-sealed', client_secret: SECRET, redirect_uris: ['https://rp.example/cb'], client_name: 'Е-управа' },
          SECRET,
        );

        const row = (await db('clients').where({ client_id: 'rp-sealed' }).first()) as { secret_enc: string | null; metadata: string };
        expect(row.secret_enc).toEqual(expect.any(String));
        expect(row.secret_enc).not.toContain(SECRET);
        expect(row.secret_enc).not.toContain(Buffer.from(SECRET).toString('base64url'));
        expect(row.metadata).not.toContain(SECRET);

        expect(await clients.findMetadata('rp-sealed')).toEqual({
          client_id: 'rp-sealed',
          client_secret: SECRET,
          redirect_uris: ['https://rp.example/cb'],
          client_name: 'Е-управа',
        });
      });

      it('a public client has no secret', async () => {
        await clients.create({ client_id: 'rp-public', token_endpoint_auth_method: 'none' }, undefined);
        const found = await clients.findMetadata('rp-public');
        expect(found).toEqual({ client_id: 'rp-public', token_endpoint_auth_method: 'none' });
        expect((await clients.list()).find((c) => c.clientId === 'rp-public')?.hasSecret).toBe(false);
      });

      it('does not find unknown or disabled clients', async () => {
        await clients.create({ client_id: 'rp-disabled' }, SECRET);
        expect(await clients.findMetadata('rp-disabled')).toBeDefined();

        // This repository's own change is in force at once …
        expect(await clients.setEnabled('rp-disabled', false)).toBe(true);
        expect(await clients.findMetadata('rp-disabled')).toBeUndefined();
        expect(await clients.findMetadata('no-such-client')).toBeUndefined();
      });

      it('sees a change made elsewhere (another process or instance) within CLIENT_CACHE_MS', async () => {
        await clients.create({ client_id: 'rp-elsewhere' }, SECRET);
        expect(await clients.findMetadata('rp-elsewhere')).toBeDefined();

        await db('clients').where({ client_id: 'rp-elsewhere' }).update({ enabled: false });
        await new Promise((r) => setTimeout(r, CLIENT_CACHE_MS + 50));
        expect(await clients.findMetadata('rp-elsewhere')).toBeUndefined();
      });

      it('rejects a taken client id', async () => {
        await clients.create({ client_id: 'rp-taken' }, undefined);
        await expect(clients.create({ client_id: 'rp-taken' }, SECRET)).rejects.toMatchObject({ code: expect.stringMatching(UNIQUE_VIOLATION) });
      });

      it('a sealed secret copied to another client row does not decrypt', async () => {
        await clients.create({ client_id: 'rp-victim' }, SECRET);
        await clients.create({ client_id: 'rp-thief' }, 'thief-own-secret');
        const { secret_enc } = (await db('clients').where({ client_id: 'rp-victim' }).first()) as { secret_enc: string };
        await db('clients').where({ client_id: 'rp-thief' }).update({ secret_enc });

        await expect(clients.findMetadata('rp-thief')).rejects.toThrow();
        expect((await clients.findMetadata('rp-victim'))?.client_secret).toBe(SECRET);
      });

      it('a secret sealed under another master key does not decrypt', async () => {
        const other = createClientRepository(db, createSecretBox(randomBytes(32)), now);
        await other.create({ client_id: 'rp-other-key' }, SECRET);
        await expect(clients.findMetadata('rp-other-key')).rejects.toThrow();
      });

      it('delete removes the client', async () => {
        await clients.create({ client_id: 'rp-gone' }, SECRET);
        expect(await clients.delete('rp-gone')).toBe(true);
        expect(await clients.delete('rp-gone')).toBe(false);
        expect(await clients.findMetadata('rp-gone')).toBeUndefined();
      });
    });

    describe('keys', () => {
      const RETENTION_SECONDS = 6 * 3600;
      let manager: KeyManager;
      const keyRows = async () =>
        (await db('keys').select('*').orderBy('id')) as {
          id: string;
          use: string;
          alg: string | null;
          material_enc: string;
          retired_at: number | string | null;
          expires_at: number | string | null;
        }[];

      beforeEach(async () => {
        await db('keys').delete();
        manager = createKeyManager({ keys: createKeyRepository(db), box, retentionSeconds: RETENTION_SECONDS, now });
      });

      it('ensure() creates one RS256, ES256 and EdDSA signing key and one cookie key, sealed', async () => {
        await manager.ensure();

        const rows = await keyRows();
        expect(rows.filter((r) => r.use === 'sig').map((r) => r.alg).sort()).toEqual([...SIGNING_ALGS].sort());
        expect(rows.filter((r) => r.use === 'cookie')).toHaveLength(1);
        expect(rows).toHaveLength(4);
        for (const r of rows) {
          // The plaintext JWK's JSON (quoted member names) never appears; base64url text may contain
          // the letters "kty" by chance, so look for the quoted form only.
          expect(r.material_enc).not.toMatch(/"kty"|"d"/);
          expect(r.material_enc).toMatch(/^v1(\.[A-Za-z0-9_-]+){6}$/);
          expect(r.retired_at).toBeNull();
          expect(r.expires_at).toBeNull();
        }

        const set = await manager.load();
        expect(set.jwks.keys.map((k) => k.alg).sort()).toEqual([...SIGNING_ALGS].sort());
        for (const jwk of set.jwks.keys) {
          expect(jwk).toMatchObject({ use: 'sig', kid: expect.any(String), d: expect.any(String) });
          expect(rows.map((r) => r.id)).toContain(jwk.kid);
        }
        expect(set.jwks.keys.find((k) => k.alg === 'RS256')?.kty).toBe('RSA');
        expect(set.jwks.keys.find((k) => k.alg === 'ES256')).toMatchObject({ kty: 'EC', crv: 'P-256' });
        expect(set.jwks.keys.find((k) => k.alg === 'EdDSA')).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
        expect(set.cookieKeys).toHaveLength(1);
        expect(Buffer.from(set.cookieKeys[0]!, 'base64url')).toHaveLength(32);
      });

      it('ensure() is idempotent', async () => {
        await manager.ensure();
        const before = await manager.load();
        clock += HOUR;
        await manager.ensure();
        await createKeyManager({ keys: createKeyRepository(db), box, retentionSeconds: RETENTION_SECONDS, now }).ensure();

        expect(await keyRows()).toHaveLength(4);
        expect(await manager.load()).toEqual(before);
      });

      it('keys sealed under another master key cannot be loaded', async () => {
        await manager.ensure();
        const stranger = createKeyManager({
          keys: createKeyRepository(db),
          box: createSecretBox(randomBytes(32)),
          retentionSeconds: RETENTION_SECONDS,
          now,
        });
        await expect(stranger.load()).rejects.toThrow();
      });

      it('rotateSigning() puts new keys first and keeps the old ones published for the retention period', async () => {
        await manager.ensure();
        const oldKids = (await manager.load()).jwks.keys.map((k) => k.kid);
        const cookieBefore = (await manager.load()).cookieKeys;

        const T1 = T0 + HOUR;
        clock = T1;
        const fresh = await manager.rotateSigning();
        expect(fresh).toHaveLength(SIGNING_ALGS.length);

        const set = await manager.load();
        const kids = set.jwks.keys.map((k) => k.kid);
        expect(kids).toHaveLength(6);
        expect(new Set(kids.slice(0, 3))).toEqual(new Set(fresh));
        expect(new Set(kids.slice(3))).toEqual(new Set(oldKids));
        // oidc-provider signs with the first key of each algorithm: that must be a new one.
        for (const alg of SIGNING_ALGS) expect(fresh).toContain(set.jwks.keys.find((k) => k.alg === alg)?.kid);
        expect(set.cookieKeys).toEqual(cookieBefore);

        const rows = await keyRows();
        for (const r of rows.filter((x) => oldKids.includes(x.id))) {
          expect(Number(r.retired_at)).toBe(T1);
          expect(Number(r.expires_at)).toBe(T1 + RETENTION_SECONDS * 1000);
        }
        for (const r of rows.filter((x) => fresh.includes(x.id))) {
          expect(r.retired_at).toBeNull();
          expect(r.expires_at).toBeNull();
        }

        // ensure() after a rotation adds nothing: an active set exists.
        await manager.ensure();
        expect(await keyRows()).toHaveLength(7);
      });

      it('purge() removes rotated-out keys only once their retention has passed', async () => {
        await manager.ensure();
        const T1 = T0 + HOUR;
        clock = T1;
        const fresh = await manager.rotateSigning();
        const expiry = T1 + RETENTION_SECONDS * 1000;

        clock = expiry - 1;
        expect(await manager.purge()).toBe(0);
        expect((await manager.load()).jwks.keys).toHaveLength(6);

        clock = expiry;
        // Past retention the old keys are no longer published, even before the purge.
        expect((await manager.load()).jwks.keys.map((k) => k.kid).sort()).toEqual([...fresh].sort());
        expect(await manager.purge()).toBe(3);
        expect(await manager.purge()).toBe(0);

        const rows = await keyRows();
        expect(rows.filter((r) => r.use === 'sig').map((r) => r.id).sort()).toEqual([...fresh].sort());
        expect(rows.filter((r) => r.use === 'cookie')).toHaveLength(1);
        expect((await manager.load()).cookieKeys).toHaveLength(1);
      });
    });
  });

  if (store === 'postgres') {
    it('instances migrating an empty database together each succeed, and every migration runs once', async () => {
      const testDb = await createTestDatabase(store);
      // A pool of one connection too: the migration lock must not wait on the pool it migrates with.
      const single = testDb.database.client === 'pg' ? { ...testDb.database, poolMax: 1 } : testDb.database;
      const pools = [openStore(testDb.database), openStore(testDb.database), openStore(single)];
      try {
        const results = await Promise.all(pools.map((p) => migrate(p)));
        const applied = results.flat();
        expect(applied).toHaveLength(new Set(applied).size);
        expect(applied).toEqual(expect.arrayContaining(['20261127000000_initial', '20261127010000_credentials']));
        expect(results.filter((r) => r.length > 0)).toHaveLength(1);
        for (const p of pools) expect(await migrationsCurrent(p)).toBe(true);
      } finally {
        await Promise.all(pools.map((p) => p.destroy()));
        await testDb.drop();
      }
    });

    describe('keys across instances', () => {
      let testDb: TestDatabase;
      let pools: Db[] = [];

      beforeAll(async () => {
        testDb = await createTestDatabase(store);
        pools = [openStore(testDb.database), openStore(testDb.database), openStore(testDb.database)];
        await migrate(pools[0]!);
      });
      afterAll(async () => {
        await Promise.all(pools.map((p) => p.destroy()));
        await testDb?.drop();
      });

      it('instances on separate pools calling ensure() together create exactly one key set', async () => {
        const box = createSecretBox(randomBytes(32));
        const managers = pools.map((p) =>
          createKeyManager({ keys: createKeyRepository(p), box, retentionSeconds: 3600, now: () => T0 }),
        );

        await Promise.all(managers.map((m) => m.ensure()));

        const rows = (await pools[0]!('keys').select('use', 'alg')) as { use: string; alg: string | null }[];
        expect(rows.filter((r) => r.use === 'sig').map((r) => r.alg).sort()).toEqual([...SIGNING_ALGS].sort());
        expect(rows.filter((r) => r.use === 'cookie')).toHaveLength(1);
        expect(rows).toHaveLength(4);

        const sets = await Promise.all(managers.map((m) => m.load()));
        expect(sets[1]).toEqual(sets[0]);
        expect(sets[2]).toEqual(sets[0]);
      });
    });
  }
});
