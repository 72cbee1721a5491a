/**
 * CIBA across two Kapija processes on one PostgreSQL database: a request started at A is approved
 * in the portal at B, and A's poll gets the tokens after A was restarted; in ping mode B notifies the
 * service's https endpoint with only the auth_req_id and the service's bearer token, and the service
 * then fetches the tokens at A. An approval at A racing a denial at B: exactly one answer stands.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { openPortal } from '../support/sign-in.js';
import { nextTotpCode } from '../support/totp.js';
import { createTestAccount, createTestClient, testConfig } from '../support/kapija.js';
import { clientKeysForSuite } from '../support/client-keys.js';
import { createPgDatabase, pgAvailable, type TestDatabase } from '../support/databases.js';
import { freePort, spawnKapija, type KapijaProcess } from '../support/spawn-kapija.js';
import { createKapija, type Kapija } from '../../src/app.js';
import { ledgerChain } from '../../src/account/ledger.js';

const CIBA = 'urn:openid:params:grant-type:ciba';

const handles = (page: Page) => [...page.body.matchAll(/name="request" value="([^"]+)"/g)].map((m) => m[1]!).filter((v, i, a) => a.indexOf(v) === i);

if (!pgAvailable()) {
  process.stdout.write('[skip] ciba-two-instances: PostgreSQL not reachable (two processes need a shared database)\n');
  test.skip('CIBA across two instances (PostgreSQL not reachable)', () => undefined);
} else {
  describe('CIBA on two instances', () => {
    let testDb: TestDatabase;
    let dataDir: string;
    let env: Record<string, string>;
    let portA: number;
    let a: KapijaProcess;
    let b: KapijaProcess;
    let store: Kapija;
    let issuer: string;
    /** The service's ping receiver: https on 127.0.0.1 with a certificate both Kapija processes trust. */
    let receiver: https.Server;
    let receiverUrl: string;
    const pings: { authorization: string | undefined; contentType: string | undefined; body: string }[] = [];
    const clientKey = clientKeysForSuite();

    beforeAll(async () => {
      testDb = await createPgDatabase();
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-ciba-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dataDir, stdio: 'ignore' });
      receiver = https.createServer({ key: fs.readFileSync(path.join(dataDir, 'key.pem')), cert: fs.readFileSync(path.join(dataDir, 'cert.pem')) }, (req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
          pings.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      receiverUrl = `https://127.0.0.1:${(receiver.address() as AddressInfo).port}/ciba-ping`;
      portA = await freePort();
      const portB = await freePort();
      issuer = `http://127.0.0.1:${portA}`;
      // The processes trust the receiver's certificate the way a deployment trusts a service's CA.
      env = { ISSUER: issuer, MASTER_KEY: randomBytes(32).toString('base64'), DATA_DIR: dataDir, NODE_EXTRA_CA_CERTS: path.join(dataDir, 'cert.pem'), ...testDb.env };
      [a, b] = await Promise.all([spawnKapija(env, { port: portA }), spawnKapija(env, { port: portB })]);
      store = await createKapija(testConfig(env));
    }, 60_000);

    afterAll(async () => {
      receiver?.close();
      await Promise.all([a?.stop(), b?.stop()]);
      await store?.close();
      await testDb?.drop();
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    });

    /** A call centre with a pairwise subject (Kapija's default), so it authenticates with its own key. */
    async function callCentre(extra: Record<string, unknown> = {}) {
      const { privateKey, kid, jwksUri } = await clientKey();
      const rp = await createTestClient(
        store,
        { grant_types: [CIBA], response_types: [], redirect_uris: [], jwks_uri: jwksUri, token_endpoint_auth_method: 'private_key_jwt', backchannel_token_delivery_mode: 'poll', scope: 'openid profile', ...extra },
        { public: true },
      );
      const config = await oidc.discovery(new URL(a.url), rp.clientId, undefined, oidc.PrivateKeyJwt({ key: privateKey, kid }), { execute: [oidc.allowInsecureRequests] });
      return { rp, config };
    }

    /** Signs the citizen in to the portal (the sign-in runs through the issuer, A) and opens the requests page at `base`. */
    async function requestsAt(agent: Agent, base: string, citizen: Awaited<ReturnType<typeof createTestAccount>>) {
      await openPortal(agent, issuer, citizen, '/account');
      const page = await agent.request(`${base}/account/requests`);
      expect(page.status).toBe(200);
      return page;
    }

    const post = (agent: Agent, base: string, page: Page, p: string, form: Record<string, string>) =>
      agent.request(`${base}${p}`, { form: { _csrf: hiddenField(page.body, '_csrf') ?? '', ...form } });

    test('poll: started at A, approved at B, polled at A after a restart', async () => {
      const citizen = await createTestAccount(store);
      const { rp, config } = await callCentre();
      const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid profile', login_hint: citizen.username, binding_message: 'A-7' });

      const agent = new Agent('en');
      const page = await requestsAt(agent, b.url, citizen);
      expect(page.body).toContain('A-7');
      const [handle] = handles(page);
      const approved = await post(agent, b.url, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
      expect(approved.status).toBe(303);

      await a.stop();
      a = await spawnKapija(env, { port: portA });
      const tokens = await oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 1 });
      const claims = tokens.claims()!;
      expect(claims.sub).toBe(await store.subjectFor(citizen.account.id, rp.clientId));
      expect(claims.acr).toBe('http://eidas.europa.eu/LoA/substantial');
      expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
      const ledger = await store.audit.list({ chain: ledgerChain(citizen.account.id) });
      expect(ledger.filter((e) => e.clientId === rp.clientId).map((e) => e.action)).toEqual(expect.arrayContaining(['ledger.ciba_requested', 'ledger.ciba_approved', 'ledger.data_released']));
    }, 90_000);

    test('ping: B notifies the service with only the auth_req_id and its bearer token; the service then fetches the tokens', async () => {
      const citizen = await createTestAccount(store);
      const { config } = await callCentre({ backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: receiverUrl });
      const notificationToken = randomBytes(24).toString('base64url');
      // A ping client must send a client_notification_token.
      await expect(oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username })).rejects.toMatchObject({ error: 'invalid_request' });
      const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username, client_notification_token: notificationToken });
      pings.length = 0;

      const agent = new Agent('en');
      const page = await requestsAt(agent, b.url, citizen);
      const [handle] = handles(page);
      expect((await post(agent, b.url, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) })).status).toBe(303);

      expect(pings).toHaveLength(1);
      expect(pings[0]!.authorization).toBe(`Bearer ${notificationToken}`);
      expect(pings[0]!.contentType).toBe('application/json');
      expect(JSON.parse(pings[0]!.body)).toEqual({ auth_req_id: started.auth_req_id });
      const tokens = await oidc.genericGrantRequest(config, CIBA, { auth_req_id: started.auth_req_id });
      expect(tokens.claims()!.acr).toBe('http://eidas.europa.eu/LoA/substantial');
    }, 90_000);

    test('ping: a service whose endpoint is down still gets the approval when it polls', async () => {
      const citizen = await createTestAccount(store);
      const closed = await freePort();
      const { config } = await callCentre({ backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: `https://127.0.0.1:${closed}/ciba-ping` });
      const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username, client_notification_token: randomBytes(24).toString('base64url') });
      const agent = new Agent('en');
      const page = await requestsAt(agent, b.url, citizen);
      const [handle] = handles(page);
      const approved = await post(agent, b.url, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
      expect(approved.status).toBe(303);
      // The process's log reaches the test through a pipe: wait for the line a moment.
      for (let i = 0; i < 40 && !b.output().includes('CIBA ping notification failed'); i += 1) await new Promise((r) => setTimeout(r, 50));
      expect(b.output()).toContain('CIBA ping notification failed');
      expect(b.output()).not.toContain(started.auth_req_id);
      expect((await oidc.genericGrantRequest(config, CIBA, { auth_req_id: started.auth_req_id })).access_token).toBeTruthy();
      const ledger = (await store.audit.list({ chain: ledgerChain(citizen.account.id) })).map((e) => e.action);
      expect(ledger).toContain('ledger.ciba_approved');
    }, 90_000);

    test('an approval at A racing a denial at B: one answer stands, the other is refused', async () => {
      const citizen = await createTestAccount(store);
      const { config } = await callCentre();
      const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username });
      const agent = new Agent('en');
      const page = await requestsAt(agent, a.url, citizen);
      const [handle] = handles(page);
      const code = await nextTotpCode(citizen.totpSecret!);
      const [approve, deny] = await Promise.all([
        post(agent, a.url, page, '/account/requests/approve', { request: handle!, factor: 'totp', code }),
        post(agent, b.url, page, '/account/requests/deny', { request: handle! }),
      ]);
      const statuses = [approve.status, deny.status];
      expect(statuses.filter((s) => s === 303)).toHaveLength(1);
      expect(statuses.filter((s) => s === 404 || s === 409)).toHaveLength(1);
      const ledger = (await store.audit.list({ chain: ledgerChain(citizen.account.id) })).map((e) => e.action);
      expect(ledger.filter((x) => x === 'ledger.ciba_approved' || x === 'ledger.ciba_denied')).toHaveLength(1);
      if (approve.status === 303) expect((await oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 1 })).access_token).toBeTruthy();
      else await expect(oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 1 })).rejects.toMatchObject({ error: 'access_denied' });
    }, 90_000);
  });
}
