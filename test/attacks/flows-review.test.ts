/**
 * An attacker's review of CIBA, the device grant and their crossings with the account portal:
 * polls faster than the protocol's interval, an approval from a portal sign-in that is no longer
 * recent, a request polled by another service, an account locked between approval and poll.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import * as oidc from 'openid-client';
import { Agent, checkedValues, hiddenField, type Page } from '../support/browserless.js';
import { openPortal, signIn, submitForm, SignInError, type SignInOptions } from '../support/sign-in.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { nextTotpCode } from '../support/totp.js';
import { createTestAccount, createTestClient, kapijaForSuite, type RunningKapija } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';
import { twoInstancesOnPg } from '../support/two-processes.js';
import { ledgerChain } from '../../src/account/ledger.js';

const CIBA = 'urn:openid:params:grant-type:ciba';
const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';
/** The portal's reauthentication window in this suite (the smallest the configuration allows). */
const REAUTH_SECONDS = 30;

/** A service's back-channel calls, authenticated with its secret. */
function service(server: RunningKapija, rp: { clientId: string; clientSecret?: string | undefined }) {
  const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`;
  return async (endpoint: string, params: Record<string, string>) => {
    const res = await fetch(`${server.url}${endpoint}`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams(params) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, string> };
  };
}

async function callCentre(server: RunningKapija) {
  const rp = await createTestClient(server.kapija, { grant_types: [CIBA], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'poll', subject_type: 'public', scope: 'openid profile' });
  return { rp, post: service(server, rp) };
}

const handles = (page: Page) => [...page.body.matchAll(/name="request" value="([^"]+)"/g)].map((m) => m[1]!).filter((v, i, a) => a.indexOf(v) === i);

async function portalPost(agent: Agent, server: RunningKapija, page: Page, path: string, form: Record<string, string>) {
  const csrf = hiddenField(page.body, '_csrf') ?? hiddenField((await agent.request(`${server.url}/account/security`)).body, '_csrf');
  if (!csrf) throw new Error('no form token');
  return agent.request(`${server.url}${path}`, { form: { _csrf: csrf, ...form } });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A citizen, a call centre's request naming them, and the citizen's portal page listing it. */
async function waitingRequest(server: RunningKapija, scope = 'openid profile') {
  const citizen = await createTestAccount(server.kapija);
  const { rp, post } = await callCentre(server);
  const started = await post('/backchannel', { scope, login_hint: citizen.username });
  const agent = new Agent('en');
  const page = await openPortal(agent, server.url, citizen, '/account/requests');
  return { citizen, rp, post, started, agent, page };
}

/** The same request, approved in the portal with the citizen's authenticator code. */
async function approvedRequest(server: RunningKapija) {
  const w = await waitingRequest(server);
  const approved = await portalPost(w.agent, server, w.page, '/account/requests/approve', { request: handles(w.page)[0]!, factor: 'totp', code: await nextTotpCode(w.citizen.totpSecret!) });
  return { ...w, approved };
}

const REDIRECT = 'http://127.0.0.1:9/cb';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A representative's own sign-in at a service (no mandate yet, so no representation page): its tokens. */
async function ownSignIn(server: RunningKapija, rp: { clientId: string; clientSecret?: string | undefined }, who: SignInOptions) {
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
  const agent = new Agent('en');
  const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
  let step = await agent.follow(await agent.request(url), isCallback);
  for (let i = 0; i < 6 && !(step instanceof URL); i += 1) {
    const page: Page = step;
    let next: Page;
    if (/\/login"/.test(page.body)) next = await submitForm(agent, page, /\/login$/, { username: who.username, password: who.password });
    else if (/\/totp"/.test(page.body)) next = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(who.totpSecret!) });
    else if (/\/confirm"/.test(page.body)) next = await submitForm(agent, page, /\/confirm$/, { claims: checkedValues(page.body, 'claims') });
    else throw new Error(`unexpected page ${page.url.pathname} (${page.status})`);
    step = await agent.follow(next, isCallback);
  }
  if (!(step instanceof URL)) throw new Error('sign-in did not finish');
  return { config, tokens: await oidc.authorizationCodeGrant(config, step, { pkceCodeVerifier: verifier, idTokenExpected: true }) };
}

describe('flows review: CIBA, device grant, portal', () => {
  const server = kapijaForSuite({ env: { REAUTH_SECONDS: String(REAUTH_SECONDS) } });

  test('a CIBA request polled faster than every five seconds gets slow_down, not another authorization_pending', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { post } = await callCentre(server);
    const started = await post('/backchannel', { scope: 'openid', login_hint: citizen.username });
    expect(started.status).toBe(200);
    expect(started.body.interval).toBe(5);
    const poll = () => post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect((await poll()).body.error).toBe('authorization_pending');
    const fast = await poll();
    expect(fast.status).toBe(400);
    expect(fast.body.error).toBe('slow_down');
    // Still too fast: still slowed, and the request stays answerable.
    expect((await poll()).body.error).toBe('slow_down');
    await sleep(5_100);
    expect((await poll()).body.error).toBe('authorization_pending');

    // Another request of the same service keeps its own pace.
    const other = await post('/backchannel', { scope: 'openid', login_hint: citizen.username });
    expect((await post('/token', { grant_type: CIBA, auth_req_id: other.body.auth_req_id! })).body.error).toBe('authorization_pending');

    // Once answered, the next poll gets the answer at once, however soon it comes.
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/requests');
    const mine = handles(page);
    expect(mine).toHaveLength(2);
    expect((await poll()).body.error).toBe('slow_down');
    for (const handle of mine) expect((await portalPost(agent, server, page, '/account/requests/deny', { request: handle })).status).toBe(303);
    expect((await poll()).body.error).toBe('access_denied');
  }, 60_000);

  test('a device code polled faster than every five seconds gets slow_down', async () => {
    const rp = await createTestClient(server.kapija, { grant_types: [DEVICE], response_types: [], redirect_uris: [], subject_type: 'public', scope: 'openid' });
    const post = service(server, rp);
    const started = await post('/device/auth', { scope: 'openid' });
    expect(started.status).toBe(200);
    expect(started.body.interval).toBe(5);
    const poll = () => post('/token', { grant_type: DEVICE, device_code: started.body.device_code! });
    expect((await poll()).body.error).toBe('authorization_pending');
    const fast = await poll();
    expect(fast.status).toBe(400);
    expect(fast.body.error).toBe('slow_down');
  }, 30_000);

  test('an auth_req_id polled by another service is refused and stays its own service\'s', async () => {
    const citizen = await createTestAccount(server.kapija);
    const owner = await callCentre(server);
    const thief = await callCentre(server);
    const started = await owner.post('/backchannel', { scope: 'openid profile', login_hint: citizen.username });
    const stolen = await thief.post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toBe('invalid_grant');
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/requests');
    const approved = await portalPost(agent, server, page, '/account/requests/approve', { request: handles(page)[0]!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
    expect(approved.headers.get('location')).toBe('/account/requests?done=approved');
    expect((await thief.post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! })).body.error).toBe('invalid_grant');
    const tokens = await owner.post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect(tokens.status).toBe(200);
    expect(tokens.body.id_token).toBeTruthy();
  }, 60_000);

  test('an approved request whose account is locked before the poll gives no tokens', async () => {
    const { citizen, post, started, agent, approved } = await approvedRequest(server);
    expect(approved.headers.get('location')).toBe('/account/requests?done=approved');
    await server.kapija.accounts.setStatus(citizen.account.id, 'locked');
    const polled = await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect(polled.status).toBe(400);
    expect(polled.body.error).toBe('invalid_grant');
    expect(polled.body.access_token).toBeUndefined();
    // A locked citizen's portal is closed: a second request cannot be answered from the old session.
    const again = await agent.request(`${server.url}/account/requests`);
    expect(again.status).toBe(303);
    // And no new request names the locked citizen.
    const named = await post('/backchannel', { scope: 'openid', login_hint: citizen.username });
    expect(named.status).toBe(400);
    expect(named.body.error).toBe('unknown_user_id');
  }, 60_000);

  test('an approval from a portal sign-in older than the reauthentication window asks for a new sign-in, and only a fresh one approves', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { post } = await callCentre(server);
    const started = await post('/backchannel', { scope: 'openid profile', login_hint: citizen.username, binding_message: `R-${randomBytes(2).toString('hex')}` });
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/requests');
    const [handle] = handles(page);
    await sleep((REAUTH_SECONDS + 1) * 1000);
    // The list says so before a code is typed: denial only, and a way to sign in again.
    const later = await agent.request(new URL('/account/requests', server.url));
    expect(later.body).toContain('To approve a request, sign in again with both factors');
    expect(later.body).not.toContain('action="/account/requests/approve"');
    expect(later.body).toContain('action="/account/requests/deny"');
    const signInAgain = await agent.request(new URL('/account/requests/sign-in', server.url));
    expect([302, 303]).toContain(signInAgain.status);
    expect(new URL(signInAgain.headers.get('location')!, server.url).pathname).not.toBe('/account/requests');
    // The password and factor of the portal sign-in were proven more than the window ago: a code now
    // does not make them recent, so this approval must not claim them with auth_time of now.
    const stale = await portalPost(agent, server, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
    expect(stale.status).toBe(303);
    expect(stale.headers.get('location')).not.toBe('/account/requests?done=approved');
    expect(new URL(stale.headers.get('location')!, server.url).pathname).not.toBe('/account/requests');
    await sleep(5_100);
    expect((await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! })).body.error).toBe('authorization_pending');

    // Signed in again: the request is still there and a code approves it.
    const again = new Agent('en');
    const fresh = await openPortal(again, server.url, citizen, '/account/requests');
    expect(handles(fresh)).toContain(handle);
    expect(fresh.body).not.toContain('To approve a request, sign in again');
    expect(fresh.body).toContain('action="/account/requests/approve"');
    const approved = await portalPost(again, server, fresh, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
    expect(approved.headers.get('location')).toBe('/account/requests?done=approved');
    const tokens = await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect(tokens.status).toBe(200);
    const claims = JSON.parse(Buffer.from(tokens.body.id_token!.split('.')[1]!, 'base64url').toString('utf8')) as { amr: string[]; auth_time: number };
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
    expect(Math.abs(claims.auth_time - Date.now() / 1000)).toBeLessThan(REAUTH_SECONDS);
  }, 90_000);

  test('the CIBA tokens of a citizen locked after the poll are inactive at introspection, as at userinfo', async () => {
    const { citizen, post, started } = await approvedRequest(server);
    const tokens = await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect(tokens.status).toBe(200);
    expect((await post('/token/introspection', { token: tokens.body.access_token! })).body).toMatchObject({ active: true });
    // A CIBA grant belongs to no browser session: ending the citizen's sessions (as a lock does) does not reach it.
    await server.kapija.accounts.setStatus(citizen.account.id, 'locked');
    const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token!}` } });
    expect(userinfo.status).toBe(401);
    expect((await post('/token/introspection', { token: tokens.body.access_token! })).body).toEqual({ active: false });
  }, 60_000);

  test('a locked representative cannot exchange a token for a principal, and an exchanged token stops when they are locked', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile', kapija_accepts_representation: true, grant_types: ['authorization_code', EXCHANGE] });
    const post = service(server, rp);
    const { tokens } = await ownSignIn(server, rp, representative);
    await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [rp.clientId], purposes: ['general'] });
    const principalSub = await server.kapija.subjectFor(principal.account.id, rp.clientId);
    const exchange = () => post('/token', { grant_type: EXCHANGE, subject_token_type: AT_TYPE, subject_token: tokens.access_token, requested_subject: principalSub });
    const exchanged = await exchange();
    expect(exchanged.status).toBe(200);
    expect((await post('/token/introspection', { token: exchanged.body.access_token! })).body).toMatchObject({ active: true, sub: principalSub });
    const usesBefore = (await server.kapija.audit.list({ chain: ledgerChain(principal.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_used').length;

    await server.kapija.accounts.setStatus(representative.account.id, 'locked');
    // The exchanged token's grant is bound to the mandate, not to a browser session: it must stop on its own.
    expect((await post('/token/introspection', { token: exchanged.body.access_token! })).body).toEqual({ active: false });
    const refused = await exchange();
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    // Nothing was recorded as a use of the principal's mandate.
    const usesAfter = (await server.kapija.audit.list({ chain: ledgerChain(principal.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_used').length;
    expect(usesAfter).toBe(usesBefore);
  }, 60_000);

  test('an administrator\'s lock forgets the remembered browsers: after the unlock the password alone no longer passes', async () => {
    const citizen = await createTestAccount(server.kapija);
    const admin = await createTestAccount(server.kapija, { totp: false });
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const script = await createTestClient(server.kapija, { scope: 'openid kapija:admin' });
    const token = await new server.kapija.provider.AccessToken({
      accountId: admin.account.id,
      client: await server.kapija.provider.Client.find(script.clientId),
      scope: 'openid kapija:admin',
      grantId: 'test-grant',
      extra: { acr: 'http://eidas.europa.eu/LoA/high', auth_time: Math.floor(Date.now() / 1000) },
    } as never).save();
    const adminApi = (path: string) => fetch(`${server.url}/admin/api${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });

    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], kapija_min_acr: 'http://eidas.europa.eu/LoA/substantial' });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const authorize = async () => oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
    const agent = new Agent('en');
    await signIn(agent, await authorize(), REDIRECT, { ...citizen, rememberBrowser: true });
    expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toHaveLength(1);
    const fresh = () => {
      for (const name of ['kapija.session', 'kapija.session.sig', 'kapija.account']) agent.jar.delete(name);
    };
    // Remembered: the password alone reaches the service.
    fresh();
    expect((await signIn(agent, await authorize(), REDIRECT, { username: citizen.username, password: citizen.password })).searchParams.get('code')).toBeTruthy();

    expect((await adminApi(`/citizens/${citizen.account.id}/lock`)).status).toBe(200);
    expect((await adminApi(`/citizens/${citizen.account.id}/unlock`)).status).toBe(200);
    expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toEqual([]);
    fresh();
    const err = await signIn(agent, await authorize(), REDIRECT, { username: citizen.username, password: citizen.password }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SignInError);
    expect((err as SignInError).page.body).toMatch(/\/totp"/);
  }, 60_000);

  test('a mandate withdrawn between the representation page and the consent gives the service nothing for the principal', async () => {
    const principal = await createTestAccount(server.kapija, { givenName: 'Milica' });
    const representative = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile', kapija_accepts_representation: true });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [rp.clientId], purposes: ['general'] });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const agent = new Agent('en');
    const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
    let step = await agent.follow(await agent.request(url), isCallback);
    let withdrawn = false;
    for (let i = 0; i < 6 && !(step instanceof URL); i += 1) {
      const page: Page = step;
      let next: Page;
      if (/\/login"/.test(page.body)) next = await submitForm(agent, page, /\/login$/, { username: representative.username, password: representative.password });
      else if (/\/totp"/.test(page.body)) next = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(representative.totpSecret!) });
      else if (/\/represent"/.test(page.body)) next = await submitForm(agent, page, /\/represent$/, { choice: m.id });
      else if (/\/confirm"/.test(page.body)) {
        expect(page.body).toContain('Milica');
        await server.kapija.mandates.withdraw(m.id, { actor: principal.account.id });
        withdrawn = true;
        next = await submitForm(agent, page, /\/confirm$/, { claims: checkedValues(page.body, 'claims') });
      } else throw new Error(`unexpected page ${page.url.pathname} (${page.status})`);
      step = await agent.follow(next, isCallback);
    }
    expect(withdrawn).toBe(true);
    // The sign-in finishes with a code (the consent was given), but the code yields nothing once the mandate is gone.
    expect(step instanceof URL && step.searchParams.get('code')).toBeTruthy();
    await expect(oidc.authorizationCodeGrant(config, step as URL, { pkceCodeVerifier: verifier, idTokenExpected: true })).rejects.toMatchObject({ error: 'invalid_grant' });
    const released = (await server.kapija.audit.list({ chain: ledgerChain(principal.account.id), action: 'ledger.data_released' })).filter((e) => e.clientId === rp.clientId);
    expect(released).toEqual([]);
  }, 60_000);

  test('an identity revoked between request and approval: the request can only be denied', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { post } = await callCentre(server);
    const started = await post('/backchannel', { scope: 'openid profile', login_hint: citizen.username, acr_values: 'http://eidas.europa.eu/LoA/substantial' });
    expect(started.status).toBe(200);
    expect(await server.kapija.identity.revoke(citizen.account.id, { actor: 'test-registrar' }, 'document reported stolen')).toBe(true);
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/requests');
    const [handle] = handles(page);
    expect(handle).toBeDefined();
    expect(page.body).not.toContain('autocomplete="one-time-code"');
    const refused = await portalPost(agent, server, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
    expect(refused.status).toBe(403);
    expect((await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! })).body.error).toBe('authorization_pending');
    expect((await portalPost(agent, server, page, '/account/requests/deny', { request: handle! })).status).toBe(303);
    expect((await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! })).body.error).toBe('access_denied');
  }, 60_000);

  test('an approval that the request\'s expiry overtakes is a clear 404, not a server error, and records nothing', async () => {
    const { citizen, rp, post, started, agent, page } = await waitingRequest(server, 'openid');
    const provider = server.kapija.provider;
    const original = provider.backchannelResult;
    // The request expires at the moment the approval reaches the engine (after every check before it).
    provider.backchannelResult = async (...args: Parameters<typeof original>) => {
      await server.kapija.db('oidc_payloads').where({ model: 'BackchannelAuthenticationRequest', id: started.body.auth_req_id! }).update({ expires_at: Date.now() - 1 });
      return original.apply(provider, args);
    };
    try {
      const late = await portalPost(agent, server, page, '/account/requests/approve', { request: handles(page)[0]!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
      expect(late.status).toBe(404);
      expect(late.body).toContain('no longer waiting');
    } finally {
      provider.backchannelResult = original;
    }
    const actions = (await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) })).filter((e) => e.clientId === rp.clientId).map((e) => e.action);
    expect(actions).not.toContain('ledger.ciba_approved');
    const polled = await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect(polled.status).toBe(400);
    expect(['expired_token', 'invalid_grant']).toContain(polled.body.error);
  }, 60_000);
});

// Two instances on one PostgreSQL database, one issuer: the pace of polls and a lock hold across them.
(pgAvailable() || process.env.CI ? describe : describe.skip)('flows review on two instances', () => {
  const two = twoInstancesOnPg();
  let a: RunningKapija;
  let b: RunningKapija;
  beforeAll(() => ({ a, b } = two));

  test('a poll at one instance right after one at the other gets slow_down; a lock at one is inactive at the other', async () => {
    const citizen = await createTestAccount(a.kapija);
    const rp = await createTestClient(a.kapija, { grant_types: [CIBA], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'poll', subject_type: 'public', scope: 'openid profile' });
    const [atA, atB] = [service(a, rp), service(b, rp)];
    const started = await atA('/backchannel', { scope: 'openid profile', login_hint: citizen.username });
    expect(started.status).toBe(200);
    const poll = (at: typeof atA) => at('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
    expect((await poll(atA)).body.error).toBe('authorization_pending');
    expect((await poll(atB)).body.error).toBe('slow_down');

    const agent = new Agent('en');
    // Signed in to the portal through A (the issuer); the page and the approval at B.
    await openPortal(agent, a.url, citizen, '/account/requests');
    const page = await agent.request(`${b.url}/account/requests`);
    expect(page.status).toBe(200);
    const approved = await portalPost(agent, b, page, '/account/requests/approve', { request: handles(page)[0]!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
    expect(approved.headers.get('location')).toBe('/account/requests?done=approved');
    const tokens = await poll(atB);
    expect(tokens.status).toBe(200);
    expect((await atA('/token/introspection', { token: tokens.body.access_token! })).body).toMatchObject({ active: true });
    await b.kapija.accounts.setStatus(citizen.account.id, 'locked');
    expect((await atA('/token/introspection', { token: tokens.body.access_token! })).body).toEqual({ active: false });
  }, 60_000);

  test('one finished sign-in resumed at both instances at once gives one answer', async () => {
    const rp = await createTestClient(a.kapija, { redirect_uris: [REDIRECT] });
    const config = await oidc.discovery(new URL(a.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
    for (let round = 0; round < 3; round += 1) {
      const citizen = await createTestAccount(a.kapija);
      const agent = new Agent('en');
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const login = await agent.follow(await agent.request(url), isCallback);
      if (login instanceof URL) throw new Error('reached the service without signing in');
      const totp = await agent.follow(await submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password }), isCallback);
      if (totp instanceof URL) throw new Error('no second-factor step');
      const done = await submitForm(agent, totp, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) });
      expect(done.status).toBe(303);
      const resume = new URL(done.headers.get('location')!, done.url);
      const both = await Promise.all([agent.request(resume), agent.request(resume.href.replace(a.url, b.url))]);
      expect(both.map((r) => r.status).sort()).toEqual([303, 400]);
    }
  }, 60_000);
});

// Outgoing requests guarded as in production (the test default lifts the guard for local receivers).
describe('flows review: CIBA ping under the SSRF guard', () => {
  const server = kapijaForSuite({ env: { ALLOW_PRIVATE_NETWORK_FETCH: 'false' } });

  test('a ping endpoint on a loopback address is never connected to; the approval stands and the service may poll', async () => {
    let connections = 0;
    const listener = net.createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `https://127.0.0.1:${(listener.address() as net.AddressInfo).port}/ciba-ping`;
      const citizen = await createTestAccount(server.kapija);
      const rp = await createTestClient(server.kapija, { grant_types: [CIBA], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'ping', backchannel_client_notification_endpoint: endpoint, subject_type: 'public', scope: 'openid' });
      const post = service(server, rp);
      const started = await post('/backchannel', { scope: 'openid', login_hint: citizen.username, client_notification_token: randomBytes(16).toString('hex') });
      expect(started.status).toBe(200);
      const agent = new Agent('en');
      const page = await openPortal(agent, server.url, citizen, '/account/requests');
      const approved = await portalPost(agent, server, page, '/account/requests/approve', { request: handles(page)[0]!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
      expect(approved.headers.get('location')).toBe('/account/requests?done=approved');
      await sleep(500);
      expect(connections).toBe(0);
      const tokens = await post('/token', { grant_type: CIBA, auth_req_id: started.body.auth_req_id! });
      expect(tokens.status).toBe(200);
    } finally {
      listener.close();
    }
  }, 60_000);
});
