/**
 * `kapija certs refresh` on each store: CRLs from files and URLs, verified before they are stored,
 * refused one line each, never rolled back; and the validator reading them back from the store.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { runCli } from '../../src/cli/index.js';
import { loadConfig } from '../../src/config.js';
import { createCertificateSignIn, parseTrustAnchors, verifyCrl } from '../../src/factors/certificate/index.js';
import { createCertificateCrlRepository } from '../../src/store/certificate-crls.js';
import { migrate, openStore, type Db } from '../../src/store/db.js';
import { createTestDatabase, stores, type StoreName, type TestDatabase } from '../support/databases.js';
import { TEST_ENV } from '../support/kapija.js';
import { makeTestEidPki, type TestEidPki } from '../support/test-ca.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function kapija(env: Record<string, string>, argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, env, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), stdin: Readable.from([]) });
  return { code, stdout, stderr };
}

const SECRET = 'proxy-secret-for-the-certificate-tests';
let pki: TestEidPki;
let anchorsFile: string;
let files: Record<'intermediate' | 'root' | 'withdrawn' | 'foreign' | 'tampered' | 'notCrl', string>;
let server: http.Server;
let base: string;

beforeAll(async () => {
  pki = makeTestEidPki();
  anchorsFile = path.join(pki.dir, 'anchors.pem');
  fs.writeFileSync(anchorsFile, pki.anchorsPem);
  const write = (name: string, data: Buffer) => {
    const f = path.join(pki.dir, name);
    fs.writeFileSync(f, data);
    return f;
  };
  const tampered = Buffer.from(pki.crls.intermediate);
  tampered[tampered.length - 3]! ^= 0x01;
  files = {
    intermediate: write('intermediate.crl', pki.crls.intermediate),
    root: write('root.crl', pki.crls.root),
    withdrawn: write('withdrawn.crl', pki.crls.revokedIntermediate),
    foreign: write('foreign.crl', pki.crls.foreign),
    tampered: write('tampered.crl', tampered),
    notCrl: write('not.crl', Buffer.from('hello')),
  };
  server = http.createServer((req, res) => {
    const body = req.url === '/intermediate.crl' ? pki.crls.intermediate : req.url === '/root.crl' ? pki.crls.root : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/pkix-crl' }).end(body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

describe.each(stores())('kapija certs refresh on %s', (store: StoreName) => {
  let db: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase(store);
    env = { ...TEST_ENV, ...db.env, CERT_TRUST_ANCHORS: anchorsFile, CERT_PROXY_SECRET: SECRET };
  });
  afterAll(async () => {
    await db?.drop();
  });

  test('without CERT_TRUST_ANCHORS: one usage line', async () => {
    const { CERT_TRUST_ANCHORS: _, CERT_PROXY_SECRET: __, ...off } = env;
    expect(await kapija(off, ['certs', 'refresh', '--file', files.root])).toEqual({ code: 64, stdout: '', stderr: 'kapija: CERT_TRUST_ANCHORS is not set: certificate sign-in is off\n' });
  });

  test('without CERT_CRL_URLS or --file: one usage line', async () => {
    expect(await kapija(env, ['certs', 'refresh'])).toEqual({ code: 64, stdout: '', stderr: 'kapija: no CRL to refresh: set CERT_CRL_URLS or give --file\n' });
  });

  test('a CRL from a CA outside the trust anchors, a tampered one, a file that is no CRL, a missing file: refused, one line each', async () => {
    const run = await kapija(env, ['certs', 'refresh', '--file', files.foreign, '--file', files.tampered, '--file', files.notCrl, '--file', path.join(pki.dir, 'missing.crl')]);
    expect(run.code).toBe(1);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      `kapija: CRL from ${files.foreign} refused: issued by "C=RS, O=Kapija Test, CN=Some Other Root", which is not among the trust anchors (CERT_TRUST_ANCHORS)`,
      `kapija: CRL from ${files.tampered} refused: its signature does not verify with the certificate of "C=RS, O=Kapija Test, CN=Kapija Test eID Citizens CA"`,
      `kapija: CRL from ${files.notCrl} refused: not a certificate revocation list (DER or PEM)`,
      `kapija: CRL from ${path.join(pki.dir, 'missing.crl')} refused: cannot be read`,
    ]);
    // Nothing was stored: both CAs still lack a CRL.
    expect(run.stdout.match(/^warning: no current CRL/gm)).toHaveLength(3);
  });

  test('before any CRL is stored, the validator fails closed', async () => {
    const conn = openStore(loadConfig({ ...env }).database);
    try {
      await migrate(conn);
      const signIn = createCertificateSignIn(loadConfig(env), createCertificateCrlRepository(conn))!;
      expect(await signIn.validator.validate(pki.citizen.pem)).toEqual({ ok: false, reason: 'crl_unavailable' });
    } finally {
      await conn.destroy();
    }
  });

  test('files: verified and stored, then unchanged; the stored CRLs decide revocation', async () => {
    const first = await kapija(env, ['certs', 'refresh', '--file', files.intermediate, '--file', files.root]);
    const withdrawn = await kapija(env, ['certs', 'refresh', '--file', files.withdrawn]);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^stored: CRL of "C=RS, O=Kapija Test, CN=Kapija Test eID Citizens CA" no\. 1, 1 revoked, next update \S+\nstored: CRL of "C=RS, O=Kapija Test, CN=Kapija Test eID Root" no\. 1, 1 revoked, next update \S+\nwarning: no current CRL of "C=RS, O=Kapija Test, CN=Kapija Test eID Withdrawn CA": certificates it issued are refused until one is stored\n$/);
    expect(withdrawn).toMatchObject({ code: 0, stderr: '' });
    expect(withdrawn.stdout).toMatch(/^stored: CRL of "C=RS, O=Kapija Test, CN=Kapija Test eID Withdrawn CA" no\. 1, 0 revoked, next update \S+\n$/);
    const again = await kapija(env, ['certs', 'refresh', '--file', files.intermediate]);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toMatch(/^unchanged: CRL of "C=RS, O=Kapija Test, CN=Kapija Test eID Citizens CA"/);

    const conn: Db = openStore(loadConfig(env).database);
    try {
      const signIn = createCertificateSignIn(loadConfig(env), createCertificateCrlRepository(conn))!;
      expect(await signIn.validator.validate(pki.citizen.pem)).toMatchObject({ ok: true, identity: { jmbg: pki.citizen.jmbg } });
      expect(await signIn.validator.validate(pki.revoked.pem)).toEqual({ ok: false, reason: 'revoked' });
      expect(await signIn.validator.validate(pki.underRevokedIntermediate.pem)).toEqual({ ok: false, reason: 'revoked' });
      const audit = (await conn('audit_events').where({ action: 'certs.crl.stored' })) as unknown[];
      expect(audit).toHaveLength(3);
    } finally {
      await conn.destroy();
    }
  });

  test('a newer CRL replaces the stored one; the older one is then refused (no roll-back)', async () => {
    const next = path.join(pki.dir, `intermediate-next-${store}.crl`);
    fs.writeFileSync(next, pki.nextCrl('intermediate'));
    const newer = await kapija(env, ['certs', 'refresh', '--file', next]);
    expect(newer).toMatchObject({ code: 0, stderr: '' });
    expect(newer.stdout).toMatch(/^stored: CRL of "C=RS, O=Kapija Test, CN=Kapija Test eID Citizens CA" no\. \d+, 1 revoked/);
    const old = await kapija(env, ['certs', 'refresh', '--file', files.intermediate]);
    expect(old).toMatchObject({ code: 1, stdout: '' });
    expect(old.stderr).toBe(`kapija: CRL from ${files.intermediate} refused: older than the one stored for "C=RS, O=Kapija Test, CN=Kapija Test eID Citizens CA"\n`);
  });

  test('URLs from CERT_CRL_URLS: fetched and verified; a failing URL is one line and exit 1', async () => {
    const urls = { ...env, CERT_CRL_URLS: `${base}/root.crl,${base}/gone.crl` };
    const run = await kapija(urls, ['certs', 'refresh']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^unchanged: CRL of "C=RS, O=Kapija Test, CN=Kapija Test eID Root"/);
    expect(run.stderr).toBe(`kapija: CRL from ${base}/gone.crl refused: cannot be fetched: HTTP 404\n`);
  });

  test('the first CRL of a CA stored by two refreshes at once: one stores it, the other finds it unchanged', async () => {
    const conn = openStore(loadConfig(env).database);
    try {
      await conn('certificate_crls').del();
      const repo = createCertificateCrlRepository(conn);
      const crl = await verifyCrl(pki.crls.root, parseTrustAnchors(pki.anchorsPem), new Date());
      const input = { ...crl, revokedCount: crl.revoked.size, source: 'test' };
      const outcomes = await Promise.all([repo.put(input), repo.put(input), repo.put(input)]);
      expect(outcomes.sort()).toEqual(['stored', 'unchanged', 'unchanged']);
      expect(await repo.list()).toEqual([expect.objectContaining({ issuer: crl.issuer, revokedCount: 1, crlNumber: '1', source: 'test' })]);
    } finally {
      await conn.destroy();
    }
  });
});
