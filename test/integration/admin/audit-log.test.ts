/**
 * The audit log on every store: entries chain by hash, concurrent appends to one chain all land
 * with distinct sequence numbers, and `kapija audit verify` finds a changed or a removed row.
 */
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { runCli } from '../../../src/cli/index.js';
import { openStore, migrate, type Db } from '../../../src/store/db.js';
import { createAuditLog, GENESIS_HASH, type AuditLog } from '../../../src/store/audit.js';
import { createRoleRepository } from '../../../src/store/roles.js';
import { createTestDatabase, stores, type StoreName, type TestDatabase } from '../../support/databases.js';
import { TEST_ENV } from '../../support/kapija.js';

async function cli(env: Record<string, string>, argv: string[], stdin = '') {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, env, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), stdin: Readable.from(stdin ? [stdin] : []) });
  return { code, stdout, stderr };
}

describe.each(stores())('audit log on %s', (store: StoreName) => {
  let testDb: TestDatabase;
  let db: Db;
  let log: AuditLog;
  let env: Record<string, string>;

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    log = createAuditLog(db);
    env = { ...TEST_ENV, MASTER_KEY: randomBytes(32).toString('base64'), ...testDb.env };
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  test('entries chain by hash, per chain, and filters find them', async () => {
    const a = await log.append({ chain: 'chain-a', actor: 'cli', action: 'admin.client.created', clientId: 'porez', details: { x: 1 } });
    const b = await log.append({ chain: 'chain-a', actor: 'u1', action: 'admin.citizen.viewed', subjectAccountId: 'acc-1', ip: '10.0.0.1' });
    const other = await log.append({ chain: 'chain-b', actor: 'u1', action: 'admin.client.updated' });
    expect([a.seq, b.seq, other.seq]).toEqual([1, 2, 1]);
    expect(a.prevHash).toBe(GENESIS_HASH);
    expect(b.prevHash).toBe(a.hash);
    expect(other.prevHash).toBe(GENESIS_HASH);
    expect((await log.list({ chain: 'chain-a' })).map((e) => e.seq)).toEqual([2, 1]);
    expect((await log.list({ subject: 'acc-1' })).map((e) => e.id)).toEqual([b.id]);
    expect((await log.list({ action: 'admin.client.' })).map((e) => e.id).sort()).toEqual([a.id, other.id].sort());
    expect(await log.count({ actor: 'u1' })).toBe(2);
    expect(await log.list({ from: new Date(Date.now() + 60_000) })).toEqual([]);
    expect(await log.verify('chain-a')).toEqual({ ok: true, checked: 2 });
  });

  test('an entry hashes alike however it was appended: nested, unordered, non-ASCII and quoted details', async () => {
    const details = { z: { b: [1, 'два', null], a: 'say "hi" \\ \u2028' }, a: 'Ђорђе Šćepanović 🙂', n: 12.5 };
    const e = await log.append({ chain: 'shapes', actor: 'acc-ž', action: 'ledger.data_released', clientId: 'porez', subjectAccountId: 'acc-ž', details });
    await log.append({ chain: 'shapes', actor: 'system', action: 'test.second' });
    expect(e.details).toEqual(details);
    expect(await log.verify('shapes')).toEqual({ ok: true, checked: 2 });
  });

  test('concurrent appends to one chain all land, in one unbroken sequence', async () => {
    const entries = await Promise.all(Array.from({ length: 8 }, (_, i) => log.append({ chain: 'busy', actor: 'system', action: 'test.append', details: { i } })));
    expect(entries.map((e) => e.seq).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await log.verify('busy')).toEqual({ ok: true, checked: 8 });
  });

  test('kapija audit verify passes an intact log, and names a changed and then a removed entry', async () => {
    const chain = 'admin';
    for (let i = 0; i < 4; i += 1) await log.append({ chain, actor: 'cli', action: 'admin.test', details: { i } });
    const ok = await cli(env, ['audit', 'verify', '--chain', chain]);
    expect(ok).toEqual({ code: 0, stdout: 'audit log intact: 4 entries checked\n', stderr: '' });

    const row = (await db('audit_events').where({ chain, seq: 2 }).first()) as { details: string };
    await db('audit_events').where({ chain, seq: 2 }).update({ details: JSON.stringify({ i: 99 }) });
    const changed = await cli(env, ['audit', 'verify']);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toBe('');
    expect(changed.stderr).toBe('kapija: audit log broken: chain admin seq 2 was changed\n');

    await db('audit_events').where({ chain, seq: 2 }).update({ details: row.details });
    expect((await cli(env, ['audit', 'verify'])).code).toBe(0);

    await db('audit_events').where({ chain, seq: 3 }).delete();
    const removed = await cli(env, ['audit', 'verify', '--chain', chain]);
    expect(removed).toEqual({ code: 1, stdout: '', stderr: 'kapija: audit log broken: chain admin seq 3 is missing\n' });
  });

  test('kapija admin create grants a role to an existing user, or creates one with --create', async () => {
    const missing = await cli(env, ['admin', 'create', '--username', 'nobody']);
    expect(missing.code).toBe(64);
    expect(missing.stderr).toMatch(/no user "nobody"/);

    const created = await cli(env, ['admin', 'create', '--username', 'Ana.Admin', '--create'], 'a long passphrase\n');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^user ana\.admin created \(id [0-9a-f-]{36}\)\nana\.admin is now an admin\n$/);
    const id = /id ([0-9a-f-]{36})/.exec(created.stdout)![1]!;
    const roles = createRoleRepository(db);
    expect(await roles.rolesOf(id)).toEqual(['admin']);

    const auditor = await cli(env, ['admin', 'create', '--username', 'ana.admin', '--role', 'auditor']);
    expect(auditor).toEqual({ code: 0, stdout: 'ana.admin is now an auditor\n', stderr: '' });
    expect((await roles.rolesOf(id)).sort()).toEqual(['admin', 'auditor']);
    const again = await cli(env, ['admin', 'create', '--username', 'ana.admin', '--role', 'auditor']);
    expect(again.stdout).toBe('ana.admin already has the role auditor\n');
    expect((await cli(env, ['admin', 'create', '--username', 'ana.admin', '--role', 'root'])).code).toBe(64);

    const grants = await createAuditLog(db).list({ action: 'admin.role.granted', subject: id });
    expect(grants.map((g) => g.details.role).sort()).toEqual(['admin', 'auditor']);
    expect(grants.every((g) => g.actor === 'cli')).toBe(true);

    const revoked = await cli(env, ['admin', 'revoke', '--username', 'ana.admin', '--role', 'admin']);
    expect(revoked).toEqual({ code: 0, stdout: 'ana.admin no longer has the role admin\n', stderr: '' });
    expect(await roles.rolesOf(id)).toEqual(['auditor']);
    expect((await cli(env, ['admin', 'revoke', '--username', 'ana.admin', '--role', 'admin'])).stdout).toBe('ana.admin did not have the role admin\n');
    expect((await createAuditLog(db).list({ action: 'admin.role.revoked', subject: id })).map((g) => g.details.role)).toEqual(['admin']);
  });
});
