/**
 * Attacks on the audit log's integrity by someone who can write the database but has not the
 * master key: a row rewritten with the plain SHA-256 chain recomputed after it, the newest rows
 * removed, a citizen's downloaded ledger altered, and a ledger longer than one page of 10 000.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { runCli } from '../../src/cli/index.js';
import { canonicalJson, createAuditLog } from '../../src/store/audit.js';
import { Agent, type Page } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { stores, type StoreName } from '../support/databases.js';
import { createTestAccount, kapijaForSuite, TEST_ENV } from '../support/kapija.js';

interface Row {
  id: string;
  chain: string;
  seq: number;
  at: number;
  actor: string;
  action: string;
  subject_account_id: string | null;
  client_id: string | null;
  ip: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

/** SHA-256 over the canonical JSON of a row, as anyone can recompute it without a key. */
const plainHash = (r: Omit<Row, 'hash'>) =>
  createHash('sha256')
    .update(canonicalJson({ ...r, seq: Number(r.seq), at: Number(r.at), details: JSON.parse(r.details) as unknown }))
    .digest('hex');

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-chain-'));
const script = path.resolve('scripts/verify-ledger.mjs');

function runScript(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }));
  });
}

describe.each(stores())('the audit chain against a database writer, on %s', (store: StoreName) => {
  const server = kapijaForSuite({ store });
  const env = () => ({ ...TEST_ENV, MASTER_KEY: server.kapija.config.masterKey!.toString('base64'), DATA_DIR: server.kapija.config.dataDir, ...server.testDb.env });

  async function cli(argv: string[]) {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, env(), { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), stdin: Readable.from([]) });
    return { code, stdout, stderr };
  }

  /** Changes one row and recomputes every hash after it with plain SHA-256, as an attacker would. */
  async function rewrite(chain: string, seq: number, details: Record<string, unknown>) {
    const rows = (await server.kapija.db('audit_events').where({ chain }).orderBy('seq')) as Row[];
    let prev = rows[seq - 2]?.hash ?? '0'.repeat(64);
    for (const r of rows.slice(seq - 1)) {
      const next = { ...r, seq: Number(r.seq), at: Number(r.at), prev_hash: prev, details: r.seq === seq ? JSON.stringify(details) : r.details };
      const { hash: _old, ...rest } = next;
      next.hash = plainHash(rest);
      await server.kapija.db('audit_events').where({ id: r.id }).update({ details: next.details, prev_hash: next.prev_hash, hash: next.hash });
      prev = next.hash;
    }
  }

  /** Opens `path` in the account portal as `citizen`, signing in through Kapija first. */
  async function portal(agent: Agent, citizen: Awaited<ReturnType<typeof createTestAccount>>, where: string): Promise<Page> {
    let page = await agent.request(new URL(where, server.url));
    if (page.status === 303 && !page.headers.get('location')!.startsWith('/account')) {
      const callback = await signIn(agent, new URL(page.headers.get('location')!), `${server.url}/account/callback`, citizen);
      const back = await agent.request(callback);
      page = await agent.request(new URL(back.headers.get('location')!, server.url));
    }
    return page;
  }

  test('ASVS 5.0 V16.4.2 / NIST SP 800-92 §4.3: a row rewritten with the plain SHA-256 chain recomputed after it fails kapija audit verify', async () => {
    const chain = `admin-rewrite-${store}`;
    const log = createAuditLog(server.kapija.db);
    for (let i = 0; i < 5; i += 1) await log.append({ chain, actor: 'cli', action: 'admin.test', details: { i } });
    // every instance signs the heads that grew, once a minute
    expect(await server.kapija.checkpointAudit()).toBeGreaterThanOrEqual(1);
    for (let i = 5; i < 7; i += 1) await log.append({ chain, actor: 'cli', action: 'admin.test', details: { i } });
    // the next run signs only the heads that grew since
    expect(await server.kapija.checkpointAudit()).toBe(1);
    expect(await server.kapija.checkpointAudit()).toBe(0);
    await log.append({ chain, actor: 'cli', action: 'admin.test', details: { i: 7 } });
    expect(await cli(['audit', 'verify', '--chain', chain])).toEqual({ code: 0, stdout: 'audit log intact: 8 entries checked, 2 signed checkpoints\n', stderr: '' });

    await rewrite(chain, 2, { i: 1, hidden: 'nothing happened' });
    // the chain alone still looks whole: that is the attack
    expect(await log.verify(chain)).toEqual({ ok: true, checked: 8 });
    const res = await cli(['audit', 'verify', '--chain', chain]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^kapija: audit log broken: chain ${chain} seq 5 differs from the checkpoint signed at \\S+ \\(rewritten\\)\n$`));

    // a checkpoint re-signed by the writer with a key of their own does not pass either
    await server.kapija.db('audit_checkpoints').where({ chain }).update({ hash: (await server.kapija.db('audit_events').where({ chain, seq: 5 }).first()).hash });
    expect((await cli(['audit', 'verify', '--chain', chain])).stderr).toMatch(/the checkpoint of chain \S+ seq 5 is not signed by this Kapija's audit key/);
  });

  test('ASVS 5.0 V16.4.2 / NIST SP 800-92 §4.3: the newest rows removed, with their checkpoints, are found against the last anchor', async () => {
    const chain = `admin-truncate-${store}`;
    const log = createAuditLog(server.kapija.db);
    for (let i = 0; i < 4; i += 1) await log.append({ chain, actor: 'cli', action: 'admin.test', details: { i } });
    const file = path.join(tmp(), 'anchor.json');
    const anchored = await cli(['audit', 'anchor', '--chain', chain, '--out', file]);
    expect(anchored).toEqual({ code: 0, stdout: `anchor of 1 chain heads written to ${file}; keep it outside this database\n`, stderr: '' });
    const anchor = JSON.parse(fs.readFileSync(file, 'utf8')) as { heads: { chain: string; seq: number }[]; keys: { kid: string }[] };
    expect(anchor.heads).toMatchObject([{ chain, seq: 4 }]);
    // the anchor carries the key published for everyone
    const published = (await (await fetch(new URL('/.well-known/kapija-audit-keys', server.url))).json()) as { keys: { kid: string; kty: string; crv: string }[] };
    expect(published.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: anchor.keys[0]!.kid });
    expect(await cli(['audit', 'verify', '--chain', chain, '--anchor', file])).toMatchObject({ code: 0, stdout: 'audit log intact: 4 entries checked, 1 signed checkpoints, 1 anchored heads\n' });

    await server.kapija.db('audit_events').where({ chain }).andWhere('seq', '>', 2).delete();
    await server.kapija.db('audit_checkpoints').where({ chain }).delete();
    expect((await cli(['audit', 'verify', '--chain', chain])).code).toBe(0); // the database alone cannot tell
    const res = await cli(['audit', 'verify', '--chain', chain, '--anchor', file]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^kapija: audit log broken: chain ${chain} seq 4, signed in the anchor at \\S+, is gone \\(newest entries removed; the chain ends at seq 2\\)\n$`));

    // an anchor edited to match the shortened chain is not signed
    const forged = JSON.parse(fs.readFileSync(file, 'utf8')) as { heads: { seq: number; hash: string }[] };
    const head = (await server.kapija.db('audit_events').where({ chain, seq: 2 }).first()) as Row;
    forged.heads[0] = { ...forged.heads[0]!, seq: 2, hash: head.hash };
    const forgedFile = path.join(tmp(), 'forged.json');
    fs.writeFileSync(forgedFile, JSON.stringify(forged));
    expect((await cli(['audit', 'verify', '--chain', chain, '--anchor', forgedFile])).stderr).toMatch(/the anchor of chain \S+ seq 2 is not signed by this Kapija's audit key/);
    expect((await cli(['audit', 'verify', '--anchor', path.join(tmp(), 'none.json')])).code).toBe(64);
  });

  test("GDPR Art. 15 / ASVS 5.0 V16.4.2: the citizen's ledger download verifies offline against the published key, and a changed download fails", async () => {
    // Unproofed: the ledger holds only what the test does (the portal needs no verified identity).
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const agent = new Agent('en');
    const activity = await portal(agent, citizen, '/account/activity');
    expect(activity.body).toContain(`with the public key at ${server.url}/.well-known/kapija-audit-keys`);
    const download = await portal(agent, citizen, '/account/activity/export');
    expect(download.status).toBe(200);
    const doc = JSON.parse(download.body) as { format: string; entries: Record<string, unknown>[]; keys_url: string; checkpoints: unknown[] };
    expect(doc.format).toBe('kapija-ledger/1');
    expect(doc.keys_url).toBe(`${server.url}/.well-known/kapija-audit-keys`);
    expect(doc.checkpoints.length).toBeGreaterThanOrEqual(1);
    // every field the hash covers is there
    expect(doc.entries[0]).toEqual(
      expect.objectContaining({ id: expect.any(String), chain: `account:${citizen.account.id}`, seq: 1, at: expect.any(Number), actor: citizen.account.id, action: 'ledger.signin', subject_account_id: citizen.account.id, client_id: expect.any(String), ip: null, details: expect.any(Object), prev_hash: '0'.repeat(64), hash: expect.stringMatching(/^[0-9a-f]{64}$/) }),
    );

    const dir = tmp();
    const file = path.join(dir, 'kapija-activity.json');
    const keys = path.join(dir, 'audit-keys.json');
    fs.writeFileSync(file, download.body);
    fs.writeFileSync(keys, await (await fetch(doc.keys_url)).text());
    const ok = await cli(['audit', 'verify', '--file', file, '--key', keys]);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(ok.stdout).toMatch(new RegExp(`^ledger intact: ${doc.entries.length} entries, signed by audit key `));
    expect(await runScript(file, keys)).toMatchObject({ code: 0, stderr: '' });

    // an entry changed and its hash recomputed
    const changed = structuredClone(doc) as typeof doc;
    const first = changed.entries[0] as unknown as Row & { details: Record<string, unknown> };
    first.client_id = 'another-service';
    const { hash: _h, time: _t, service_name: _s, ...material } = first as unknown as Row & { time: string; service_name: string };
    first.hash = createHash('sha256').update(canonicalJson(material)).digest('hex');
    const changedFile = path.join(dir, 'changed.json');
    fs.writeFileSync(changedFile, JSON.stringify(changed));
    const bad = await cli(['audit', 'verify', '--file', changedFile, '--key', keys]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^kapija: ledger broken: /);
    expect((await runScript(changedFile, keys)).code).toBe(1);

    // the newest entry left out
    const shortened = { ...doc, entries: doc.entries.slice(0, -1) };
    const shortFile = path.join(dir, 'short.json');
    fs.writeFileSync(shortFile, JSON.stringify(shortened));
    expect((await cli(['audit', 'verify', '--file', shortFile, '--key', keys])).stderr).toMatch(/closing signature does not match|checkpoint/);
    expect((await runScript(shortFile, keys)).code).toBe(1);
  });

  test('GDPR Art. 15 / Art. 20: a ledger of more than 10 000 entries downloads whole, as JSON and as CSV', async () => {
    // Unproofed: the ledger holds only what the test does (the portal needs no verified identity).
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const chain = `account:${citizen.account.id}`;
    const total = 10_050;
    let prev = '0'.repeat(64);
    const start = Date.now() - total * 1000;
    for (let base = 0; base < total; base += 500) {
      const batch: Row[] = [];
      for (let i = base; i < Math.min(total, base + 500); i += 1) {
        const partial = { id: randomUUID(), chain, seq: i + 1, at: start + i * 1000, actor: citizen.account.id, action: 'ledger.signin', subject_account_id: citizen.account.id, client_id: null, ip: null, details: JSON.stringify({ acr: 'x', amr: ['pwd', 'otp'] }), prev_hash: prev };
        prev = plainHash(partial);
        batch.push({ ...partial, hash: prev });
      }
      await server.kapija.db('audit_events').insert(batch);
    }
    const agent = new Agent('en');
    expect((await portal(agent, citizen, '/account/activity')).status).toBe(200);
    const own = await server.kapija.audit.count({ chain });
    expect(own).toBeGreaterThan(total);

    const download = await portal(agent, citizen, '/account/activity/export');
    const doc = JSON.parse(download.body) as { entries: { seq: number }[] };
    expect(doc.entries.length).toBe(own);
    expect(doc.entries.map((e) => e.seq).slice(-2)).toEqual([own - 1, own]);
    const file = path.join(tmp(), 'long.json');
    fs.writeFileSync(file, download.body);
    expect((await cli(['audit', 'verify', '--file', file])).code).toBe(0);

    const csv = await portal(agent, citizen, '/account/activity/export?format=csv');
    const lines = csv.body.split('\r\n');
    expect(lines[0]).toBe('time,id,chain,seq,at,actor,action,subject_account_id,client_id,service_name,ip,details,prev_hash,hash');
    expect(lines.length).toBe(own + 1);
  }, 120_000);
});
