/**
 * Attack cases on the assurance a WebAuthn credential is given: a key made in software must not pass
 * for a hardware key (amr `hwk`, hence eIDAS high). Attestation is requested, verified against the
 * FIDO Metadata Service BLOB an operator imported (`kapija webauthn mds import`), or the operator
 * names the hardware models by AAGUID (WEBAUTHN_HWK_AAGUIDS); everything else is `swk`.
 * The authenticators are software (test/support/soft-authenticator.ts); the BLOB, its signing
 * certificate and root, and the attestation chain are made at test time (test/support/test-pki.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { decodeJwt } from 'jose';
import { runCli } from '../../src/cli/index.js';
import { completeAmr, levelFor } from '../../src/oidc/acr.js';
import { migrate } from '../../src/store/db.js';
import { migrationSource } from '../../migrations/index.js';
import { createWebAuthnMetadataRepository } from '../../src/store/webauthn-metadata.js';
import { stores, type StoreName } from '../support/databases.js';
import { Agent, type Page } from '../support/browserless.js';
import { submitForm } from '../support/sign-in.js';
import { TEST_ENV, createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { SoftAuthenticator, type SoftAuthenticatorOptions } from '../support/soft-authenticator.js';
import { issue, makeMdsBlob, makeRootCa, tempFile, type TestCert } from '../support/test-pki.js';

const ALLOWED = '2fc0579f-8113-47ea-b116-bb5a8db9202a';
const CERTIFIED = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';
const SOFTWARE_MODEL = 'd8522d9f-575b-4866-88a9-ba99fa02f35b';
const UNCERTIFIED = 'ee882879-721c-4913-9775-3dfcce97072a';

async function cli(env: Record<string, string>, argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, env, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), stdin: Readable.from([]) });
  return { code, stdout, stderr };
}

describe.each(stores())('WebAuthn attestation and the hardware-key judgement on %s', (store: StoreName) => {
  const server = kapijaForSuite({ store, env: { WEBAUTHN_HWK_AAGUIDS: ALLOWED } });
  const env = () => ({ ...TEST_ENV, ...server.testDb.env });

  // made once: the MDS root and signer, and a vendor's attestation CA with a batch certificate per model
  let mdsRoot: TestCert;
  let mdsSigner: TestCert;
  let vendorCa: TestCert;
  const batch = new Map<string, TestCert>();
  beforeAll(() => {
    mdsRoot = makeRootCa('Test FIDO MDS Root');
    mdsSigner = issue(mdsRoot, '/C=RS/O=Kapija Test/CN=Test MDS BLOB signer');
    vendorCa = makeRootCa('Test Authenticator Vendor Attestation Root');
    for (const aaguid of [CERTIFIED, SOFTWARE_MODEL, UNCERTIFIED]) {
      batch.set(aaguid, issue(vendorCa, '/C=RS/O=Test Vendor/OU=Authenticator Attestation/CN=Test Key Batch', { aaguid }));
    }
  });

  const entry = (aaguid: string, keyProtection: string[], status: string) => ({
    aaguid,
    metadataStatement: {
      aaguid,
      description: `Test authenticator ${aaguid.slice(0, 4)}`,
      keyProtection,
      attestationRootCertificates: [vendorCa.der.toString('base64')],
      attestationTypes: ['basic_full'],
    },
    statusReports: [{ status, effectiveDate: '2026-01-01' }],
  });
  const payload = (no: number) => ({
    legalHeader: 'test',
    no,
    nextUpdate: '2099-01-01',
    entries: [
      entry(CERTIFIED, ['hardware', 'secure_element'], 'FIDO_CERTIFIED_L2'),
      entry(SOFTWARE_MODEL, ['software'], 'FIDO_CERTIFIED_L1'),
      entry(UNCERTIFIED, ['hardware'], 'NOT_FIDO_CERTIFIED'),
    ],
  });
  /** Imports a BLOB with the CLI, trusting the test root (or, with `fidoRoot`, only the FIDO Alliance's). */
  const importBlob = (blob: string, opts: { fidoRoot?: boolean } = {}) =>
    cli(env(), ['webauthn', 'mds', 'import', tempFile('blob.jwt', blob), ...(opts.fidoRoot ? [] : ['--root-certificate', mdsRoot.certFile])]);

  /** Enrols a software authenticator for a new citizen through the factor, as the enrolment pages do. */
  async function enrol(opts: SoftAuthenticatorOptions) {
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const { webauthn } = server.kapija;
    const options = await webauthn.registrationOptions(citizen.account.id, citizen.username);
    const authenticator = new SoftAuthenticator(opts, server.url, new URL(server.url).hostname);
    const credential = await webauthn.register(citizen.account.id, options.challenge, authenticator.register(options), 'key');
    return { citizen, authenticator, credential, options };
  }
  /** The methods and level of a password + security key sign-in with that authenticator. */
  async function signIn(e: Awaited<ReturnType<typeof enrol>>) {
    const { webauthn } = server.kapija;
    const options = await webauthn.authenticationOptions(e.citizen.account.id);
    const ok = await webauthn.verify(options.challenge, e.authenticator.assert(options), e.citizen.account.id);
    const amr = completeAmr(['pwd', ...ok.amr]);
    return { amr, level: levelFor(amr) };
  }
  const hardwareCa = () => {
    const cert = batch.get(CERTIFIED)!;
    return { format: 'packed' as const, key: cert.key, x5c: [cert.der] };
  };

  test('eIDAS 2015/1502 2.2.1 / NIST 800-63B 5.1.8.1: a none-attested device-bound key is swk; password + key reaches substantial, not high', async () => {
    const e = await enrol({ aaguid: CERTIFIED, attestation: { format: 'none' } });
    expect(e.options.attestation).toBe('direct');
    expect(e.credential).toMatchObject({ aaguid: CERTIFIED, attestation: 'none', assurance: 'swk' });
    const { amr, level } = await signIn(e);
    expect(amr).toContain('swk');
    expect(amr).not.toContain('hwk');
    expect(level).toBe('substantial');
  });

  test('eIDAS 2015/1502 2.2.1 / NIST 800-63B 5.1.8.1: a packed self-attested key (any software can make one) is swk, not high', async () => {
    const e = await enrol({ aaguid: SOFTWARE_MODEL, attestation: { format: 'packed-self' } });
    expect(e.credential).toMatchObject({ attestation: 'self', assurance: 'swk' });
    const { amr, level } = await signIn(e);
    expect(amr).not.toContain('hwk');
    expect(level).toBe('substantial');
  });

  test('eIDAS 2015/1502 2.2.1: an AAGUID on the operator\'s allow-list (WEBAUTHN_HWK_AAGUIDS) is hwk, high; not when synced', async () => {
    const e = await enrol({ aaguid: ALLOWED, attestation: { format: 'packed-self' } });
    expect(e.credential).toMatchObject({ aaguid: ALLOWED, assurance: 'hwk' });
    const { amr, level } = await signIn(e);
    expect(amr).toContain('hwk');
    expect(level).toBe('high');
    const synced = await enrol({ aaguid: ALLOWED, attestation: { format: 'packed-self' }, synced: true });
    expect(synced.credential.assurance).toBe('swk');
    expect((await signIn(synced)).level).toBe('substantial');
  });

  test('FIDO MDS 3.0 §3.1.8: an MDS BLOB with a bad signature, or not under the FIDO root, is refused by the import', async () => {
    const good = makeMdsBlob(mdsSigner, payload(1));
    const [h, p] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify(payload(1)).replace('NOT_FIDO_CERTIFIED', 'FIDO_CERTIFIED_L3')).toString('base64url')}.${good.split('.')[2]}`;
    expect(p).not.toBe(forged.split('.')[1]);
    const badSignature = await importBlob(forged);
    expect(badSignature.code).toBe(1);
    expect(badSignature.stderr).toMatch(/signature is not valid/);
    // signed by a key whose certificate is not under the root
    const stranger = makeRootCa('Not the FIDO root');
    const strangerSigned = await importBlob(makeMdsBlob(issue(stranger, '/CN=Someone'), payload(1)));
    expect(strangerSigned.code).toBe(1);
    expect(strangerSigned.stderr).toMatch(/does not lead to the FIDO root/);
    // without --root-certificate only the FIDO Alliance's root is trusted
    const underTestRoot = await importBlob(good, { fidoRoot: true });
    expect(underTestRoot.code).toBe(1);
    expect(underTestRoot.stderr).toMatch(/does not lead to the FIDO root/);
    const notAJwt = await cli(env(), ['webauthn', 'mds', 'import', tempFile('blob.jwt', 'hello'), '--root-certificate', mdsRoot.certFile]);
    expect(notAJwt.code).toBe(1);
    expect(await createWebAuthnMetadataRepository(server.kapija.db).latestNo()).toBeUndefined();
    // nothing imported: a correctly attested certified model is not hwk yet
    const e = await enrol({ aaguid: CERTIFIED, attestation: hardwareCa() });
    expect(e.credential).toMatchObject({ attestation: 'unverified', assurance: 'swk' });
  });

  test('FIDO MDS 3.0 / eIDAS 2015/1502 2.2.1: after importing a BLOB, only a model it certifies with hardware key protection, proven by its attestation chain, is hwk', async () => {
    const imported = await importBlob(makeMdsBlob(mdsSigner, payload(7)));
    expect(imported).toMatchObject({ code: 0, stderr: '' });
    expect(imported.stdout).toMatch(/no\. 7 imported: 3 FIDO2 authenticator models, 1 of them certified/);

    const certified = await enrol({ aaguid: CERTIFIED, attestation: hardwareCa() });
    expect(certified.credential).toMatchObject({ aaguid: CERTIFIED, attestation: 'mds', assurance: 'hwk' });
    const signedIn = await signIn(certified);
    expect(signedIn.amr).toContain('hwk');
    expect(signedIn.level).toBe('high');

    // the same AAGUID claimed by a software key with self attestation
    const claimed = await enrol({ aaguid: CERTIFIED, attestation: { format: 'packed-self' } });
    expect(claimed.credential.assurance).toBe('swk');
    expect((await signIn(claimed)).level).toBe('substantial');
    // a chain under another CA than the one the BLOB names for the model
    const otherCa = makeRootCa('Other vendor');
    const otherCert = issue(otherCa, '/C=RS/O=Other/OU=Authenticator Attestation/CN=Other', { aaguid: CERTIFIED });
    const wrongChain = await enrol({ aaguid: CERTIFIED, attestation: { format: 'packed', key: otherCert.key, x5c: [otherCert.der] } });
    expect(wrongChain.credential).toMatchObject({ attestation: 'unverified', assurance: 'swk' });
    // listed, attested, but keys in software, or not certified
    for (const aaguid of [SOFTWARE_MODEL, UNCERTIFIED]) {
      const cert = batch.get(aaguid)!;
      const e = await enrol({ aaguid, attestation: { format: 'packed', key: cert.key, x5c: [cert.der] } });
      expect(e.credential).toMatchObject({ attestation: 'mds', assurance: 'swk' });
      expect((await signIn(e)).level).toBe('substantial');
    }
    // a certified model as a synced passkey
    const synced = await enrol({ aaguid: CERTIFIED, attestation: hardwareCa(), synced: true });
    expect(synced.credential.assurance).toBe('swk');

    // an older or the same BLOB cannot replace it
    const replay = await importBlob(makeMdsBlob(mdsSigner, payload(7)));
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/not greater/);

    // a newer BLOB reporting a compromise of the model takes hwk away at the next sign-in
    const compromised = payload(8);
    compromised.entries[0]!.statusReports.push({ status: 'ATTESTATION_KEY_COMPROMISE', effectiveDate: '2026-06-01' });
    expect((await importBlob(makeMdsBlob(mdsSigner, compromised))).code).toBe(0);
    const after = await signIn(certified);
    expect(after.amr).not.toContain('hwk');
    expect(after.level).toBe('substantial');
  });

  test('eIDAS 2015/1502 2.2.1: credentials registered before attestation was judged are swk unless allow-listed', async () => {
    const plain = await enrol({ aaguid: SOFTWARE_MODEL, attestation: { format: 'packed-self' } });
    const listed = await enrol({ aaguid: ALLOWED, attestation: { format: 'packed-self' } });
    // as the database was before the migration, the credentials as they were stored then
    const db = server.kapija.db;
    await db('credentials').whereIn('id', [plain.credential.id, listed.credential.id]).update({ assurance: 'hwk', attestation: 'mds' });
    await db.migrate.down({ migrationSource, name: '20261206080001_webauthn_attestation' } as Parameters<typeof db.migrate.down>[0]);
    await migrate(db);
    const rows = (await db('credentials').whereIn('id', [plain.credential.id, listed.credential.id]).select('id', 'aaguid', 'attestation', 'assurance')) as Record<string, string>[];
    expect(rows.find((r) => r.id === plain.credential.id)).toMatchObject({ aaguid: SOFTWARE_MODEL, attestation: 'legacy', assurance: 'swk' });
    expect((await signIn(plain)).level).toBe('substantial');
    expect((await signIn(listed)).level).toBe('high');
  });
});

describe('WebAuthn enrolment during sign-in', () => {
  const server = kapijaForSuite();
  const REDIRECT = 'http://127.0.0.1:9/cb';

  /** Posts JSON as static/webauthn.js does, with the agent's cookies and the page's CSRF token. */
  async function postJson(agent: Agent, url: URL, csrf: string, body: unknown) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf, cookie: agent.jar.header(url) ?? '' },
      body: JSON.stringify(body),
    });
    agent.jar.store(res.headers.getSetCookie());
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  /** A new citizen signs in with a password and enrols a none-attested software key on the way. */
  async function enrolAtFirstSignIn() {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const verifier = randomBytes(32).toString('base64url');
    const auth = new URL('/auth', server.url);
    auth.search = new URLSearchParams({
      client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, nonce: 'n',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    }).toString();
    const agent = new Agent();
    const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
    const login = (await agent.follow(await agent.request(auth), isCallback)) as Page;
    let step = await agent.follow(await submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password }), isCallback);
    const page = step as Page;
    const button = /<button[^>]*data-webauthn="register"[^>]*>/.exec(page.body)?.[0];
    expect(button).toBeDefined();
    const attr = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(button!)![1]!;
    const csrf = attr('data-csrf');
    const options = await postJson(agent, new URL(attr('data-options-url'), server.url), csrf, { purpose: 'register' });
    expect(options.json.attestation).toBe('direct');
    const key = new SoftAuthenticator({ aaguid: CERTIFIED, attestation: { format: 'none' } }, server.url, new URL(server.url).hostname);
    const registered = await postJson(agent, new URL(attr('data-verify-url'), server.url), csrf, {
      response: key.register(options.json as { challenge: string; user: { id: string } }),
    });
    expect(registered.status).toBe(200);
    step = await agent.follow(await agent.request(new URL(registered.json.location as string, server.url)), isCallback);
    for (let i = 0; i < 4 && !(step instanceof URL); i += 1) {
      const p: Page = step;
      const action = /\/continue"/.test(p.body) ? /\/continue$/ : /\/confirm$/;
      step = await agent.follow(await submitForm(agent, p, action, {}), isCallback);
    }
    expect(step).toBeInstanceOf(URL);
    return { rp, agent, auth, verifier, callback: step as URL, isCallback };
  }

  test('eIDAS 2015/1502 2.2.1 / OIDC Core 2: a none-attested key enrolled at first sign-in gives amr swk and acr substantial, not high', async () => {
    const { rp, verifier, callback } = await enrolAtFirstSignIn();
    const token = await fetch(new URL('/token', server.url), {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    const claims = decodeJwt(((await token.json()) as { id_token: string }).id_token);
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'swk']));
    expect(claims.amr).not.toContain('hwk');
    expect(claims.acr).toBe('http://eidas.europa.eu/LoA/substantial');
  });

  test('OpenID Connect Unmet Authentication Requirements 1.0: a service needing high gets unmet_authentication_requirements, not a loop asking for the software key again', async () => {
    const { agent, auth, isCallback } = await enrolAtFirstSignIn();
    const high = new URL(auth);
    high.searchParams.set('acr_values', 'http://eidas.europa.eu/LoA/high');
    const end = await agent.follow(await agent.request(high), isCallback);
    expect(end).toBeInstanceOf(URL);
    expect((end as URL).searchParams.get('error')).toBe('unmet_authentication_requirements');
  });
});
