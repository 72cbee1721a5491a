/**
 * Attack cases against the administration and the audit trail: the admin API held to the console's
 * level of assurance and freshness, audited changes that commit with their audit entry or not at
 * all, releases of personal data that never leave without their ledger entry, administrators' reads
 * and CLI changes in the trail, Kapija's own clients out of reach, and CSV exports without formulas.
 */
import request from 'supertest';
import * as oidc from 'openid-client';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';
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
  let server: RunningKapija;
  beforeAll(async () => {
    server = await startKapija();
  });
  afterAll(async () => {
    await server?.stop();
  });
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
