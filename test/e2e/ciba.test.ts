/**
 * CIBA (OpenID Connect Client-Initiated Backchannel Authentication) in poll mode, on one instance:
 * a call centre names the citizen by username (or, when allowed, a verified JMBG), the citizen
 * approves in the account portal with a fresh TOTP code, and the call centre's poll gets tokens
 * whose acr/amr say how; or the citizen denies, and the poll gets access_denied. Then the
 * attacker's view: answers given twice or crossed, another citizen's request, a wrong code
 * (throttled), an expired request, hints that name nobody or two citizens, bad binding messages.
 */
import * as oidc from 'openid-client';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { randomBytes } from 'node:crypto';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { openPortal } from '../support/sign-in.js';
import { startSmtp, type TestSmtp } from '../support/smtp.js';
import { nextTotpCode } from '../support/totp.js';
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg, type RunningKapija } from '../support/kapija.js';
import { ledgerChain } from '../../src/account/ledger.js';
import { LOCALES } from '../../src/i18n/index.js';
import { VIRTUAL_AUTHENTICATOR_AAGUID, addVirtualAuthenticator, browserSignIn, cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, tabTo, type Browser } from '../support/browser.js';

const CIBA = 'urn:openid:params:grant-type:ciba';

/** A call centre registered for CIBA in poll mode (a confidential client with a public subject, for brevity). */
async function callCentre(server: RunningKapija, extra: Record<string, unknown> = {}) {
  const rp = await createTestClient(server.kapija, { grant_types: [CIBA], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'poll', subject_type: 'public', scope: 'openid profile email', ...extra });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, undefined, oidc.ClientSecretBasic(rp.clientSecret!), { execute: [oidc.allowInsecureRequests] });
  return { rp, config };
}

/** The portal's requests page: the handles of the requests it lists. */
const handles = (page: Page) => [...page.body.matchAll(/name="request" value="([^"]+)"/g)].map((m) => m[1]!).filter((v, i, a) => a.indexOf(v) === i);

/** Posts a portal form with the page's form token (an empty requests page has no form: the security page's token then). */
async function post(agent: Agent, server: RunningKapija, page: Page, path: string, form: Record<string, string>) {
  const csrf = hiddenField(page.body, '_csrf') ?? hiddenField((await agent.request(`${server.url}/account/security`)).body, '_csrf');
  if (!csrf) throw new Error('no form token');
  return agent.request(`${server.url}${path}`, { form: { _csrf: csrf, ...form } });
}

describe('CIBA in poll mode', () => {
  let smtp: TestSmtp;
  beforeAll(async () => {
    smtp = await startSmtp();
  });
  afterAll(async () => {
    await smtp?.close();
  });
  const server = kapijaForSuite(() => ({ env: { SMTP_URL: smtp.url } }));

  test('discovery announces poll and ping, and no user codes', async () => {
    const disco = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(disco.backchannel_authentication_endpoint).toBe(`${server.url}/backchannel`);
    expect(disco.backchannel_token_delivery_modes_supported).toEqual(['poll', 'ping']);
    expect(disco.backchannel_user_code_parameter_supported).toBe(false);
    expect(disco.grant_types_supported).toContain(CIBA);
  });

  test('approved with a fresh TOTP code: the poll gets tokens with honest acr and amr; a second answer is refused', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { rp, config } = await callCentre(server);
    const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid profile', login_hint: citizen.username, binding_message: '<b>K-42</b>' });
    expect(started.expires_in).toBeGreaterThan(500);
    await expect(oidc.genericGrantRequest(config, CIBA, { auth_req_id: started.auth_req_id })).rejects.toMatchObject({ error: 'authorization_pending' });

    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/requests');
    expect(page.body).toContain('Requests from services');
    expect(page.body).toContain(`Service`);
    // The binding message is shown as text, never as markup; the auth_req_id never reaches the page.
    expect(page.body).toContain('&lt;b&gt;K-42&lt;/b&gt;');
    expect(page.body).not.toContain('<b>K-42</b>');
    expect(page.body).not.toContain(started.auth_req_id);
    expect(page.body).toContain('Your username');
    const [handle] = handles(page);
    expect(handle).toBeDefined();
    expect(page.body).toContain('autocomplete="one-time-code"');

    const approved = await post(agent, server, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
    expect(approved.status).toBe(303);
    expect(approved.headers.get('location')).toBe('/account/requests?done=approved');

    const tokens = await oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 1 });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(citizen.account.id);
    expect(claims.acr).toBe('http://eidas.europa.eu/LoA/substantial');
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect(Math.abs(Number(claims.auth_time) - Date.now() / 1000)).toBeLessThan(60);
    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(info.preferred_username).toBe(citizen.username);
    expect(info.email).toBeUndefined();

    // The ID token names the citizen for the next request (a service with public subjects).
    expect((await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', id_token_hint: tokens.id_token! })).auth_req_id).toBeTruthy();

    // Answered: approving again or denying now is refused, and the list is empty.
    const after = await agent.request(`${server.url}/account/requests`);
    expect(handles(after)).not.toContain(handle);
    expect((await post(agent, server, after, '/account/requests/approve', { request: handle!, factor: 'totp', code: '000000' })).status).toBe(404);
    expect((await post(agent, server, after, '/account/requests/deny', { request: handle! })).status).toBe(404);
    // The request is used up: polling again is refused.
    await expect(oidc.genericGrantRequest(config, CIBA, { auth_req_id: started.auth_req_id })).rejects.toMatchObject({ error: 'invalid_grant' });

    const ledger = await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) });
    const mine = ledger.filter((e) => e.clientId === rp.clientId).map((e) => e.action);
    expect(mine).toEqual(expect.arrayContaining(['ledger.ciba_requested', 'ledger.ciba_approved', 'ledger.data_released']));
    const approval = ledger.find((e) => e.action === 'ledger.ciba_approved')!;
    expect(approval.details).toMatchObject({ acr: 'http://eidas.europa.eu/LoA/substantial', scopes: ['openid', 'profile'] });
    // No binding message nor other free text in the ledger.
    expect(JSON.stringify(ledger)).not.toContain('K-42');
    const activity = await agent.request(`${server.url}/account/activity?lang=en`);
    expect(activity.body).toContain('A service asked to confirm it is you');
    expect(activity.body).toContain('Request from a service approved');

    // The citizen was told by mail (in their language): the service's name and the portal's page, nothing else.
    const notice = await smtp.waitFor(citizen.account.email!, (m) => m.subject === 'Услуга тражи да потврдите да сте то ви');
    expect(notice.text).toContain(`${server.url}/account/requests`);
    expect(notice.text).toMatch(/Service \d+/);
    expect(notice.text).not.toContain('K-42');
    expect(notice.text).not.toContain('/not-me');
    expect(notice.text).not.toContain(started.auth_req_id);
  }, 90_000);

  test('denied: the poll gets access_denied; approving afterwards is refused', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { rp, config } = await callCentre(server);
    const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username });
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/requests');
    const [handle] = handles(page);
    // Waiting requests are part of the citizen's data export.
    const exported = JSON.parse((await agent.request(`${server.url}/account/data/export.json`)).body) as { service_requests: { service: string }[] };
    expect(exported.service_requests).toEqual([expect.objectContaining({ service: rp.clientId, scopes: ['openid'] })]);
    const denied = await post(agent, server, page, '/account/requests/deny', { request: handle! });
    expect(denied.status).toBe(303);
    await expect(oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 1 })).rejects.toMatchObject({ error: 'access_denied' });
    const again = await post(agent, server, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(citizen.totpSecret!) });
    expect(again.status).toBe(404);
    expect(again.body).toContain('no longer waiting');
    const actions = (await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) })).filter((e) => e.clientId === rp.clientId).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['ledger.ciba_requested', 'ledger.ciba_denied']));
    expect(actions).not.toContain('ledger.ciba_approved');
  }, 60_000);

  test("another citizen cannot answer the request; wrong codes are throttled like the sign-in's", async () => {
    const owner = await createTestAccount(server.kapija);
    const other = await createTestAccount(server.kapija);
    const { config } = await callCentre(server);
    await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: owner.username });
    const ownerPage = await openPortal(new Agent('en'), server.url, owner, '/account/requests');
    const [handle] = handles(ownerPage);

    const intruder = new Agent('en');
    const otherPage = await openPortal(intruder, server.url, other, '/account/requests');
    expect(handles(otherPage)).toEqual([]);
    expect((await post(intruder, server, otherPage, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(other.totpSecret!) })).status).toBe(404);
    expect((await post(intruder, server, otherPage, '/account/requests/deny', { request: handle! })).status).toBe(404);
    // Without the form token: refused before anything else.
    expect((await intruder.request(`${server.url}/account/requests/deny`, { form: { request: handle! } })).status).toBe(403);

    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, owner, '/account/requests');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const wrong = await post(agent, server, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: '000000' });
      statuses.push(wrong.status);
      if (wrong.status === 401) expect(wrong.body).toContain('aria-invalid="true"');
    }
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses.slice(4)).toContain(429);
    // Held: even the right code waits, and the request stays pending.
    const held = await post(agent, server, page, '/account/requests/approve', { request: handle!, factor: 'totp', code: await nextTotpCode(owner.totpSecret!) });
    expect(held.status).toBe(429);
    expect(Number(held.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(handles(await agent.request(`${server.url}/account/requests`))).toEqual([handle]);
  }, 90_000);

  test('an expired request is gone from the portal, cannot be answered, and the poll says expired', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { config } = await callCentre(server);
    const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username, requested_expiry: '2' });
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/requests');
    const [handle] = handles(page);
    expect(handle).toBeDefined();
    await new Promise((r) => setTimeout(r, 2500));
    expect(handles(await agent.request(`${server.url}/account/requests`))).toEqual([]);
    expect((await post(agent, server, page, '/account/requests/deny', { request: handle! })).status).toBe(404);
    await expect(oidc.genericGrantRequest(config, CIBA, { auth_req_id: started.auth_req_id })).rejects.toMatchObject({ error: expect.stringMatching(/expired_token|invalid_grant/) });
  }, 60_000);

  test('hints: unknown, JMBG only where allowed and verified, ambiguous names nobody; bad parameters are refused', async () => {
    const jmbg = uniqueJmbg();
    const citizen = await createTestAccount(server.kapija, { jmbg });
    const unverified = await createTestAccount(server.kapija, { identity: 'none' });
    const plain = await callCentre(server);
    const allowed = await callCentre(server, { kapija_ciba_jmbg_hint: true });
    const start = (c: { config: oidc.Configuration }, params: Record<string, string>) => oidc.initiateBackchannelAuthentication(c.config, { scope: 'openid', ...params });

    await expect(start(plain, { login_hint: 'nobody-here' })).rejects.toMatchObject({ error: 'unknown_user_id' });
    await expect(start(plain, { login_hint: jmbg })).rejects.toMatchObject({ error: 'unknown_user_id' });
    await expect(start(plain, { login_hint: 'x'.repeat(300) })).rejects.toMatchObject({ error: 'unknown_user_id' });
    const byJmbg = await start(allowed, { login_hint: jmbg });
    expect(byJmbg.auth_req_id).toBeTruthy();
    // The JMBG is not kept with the request.
    const stored = await server.kapija.payloads.find('BackchannelAuthenticationRequest', byJmbg.auth_req_id);
    expect(stored?.accountId).toBe(citizen.account.id);
    expect(JSON.stringify(stored)).not.toContain(jmbg);
    const ledger = await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) });
    expect(ledger.some((e) => e.action === 'ledger.ciba_requested' && e.clientId === allowed.rp.clientId)).toBe(true);
    // A JMBG no identity in force carries names nobody (an unverified account cannot be found by one).
    await expect(start(allowed, { login_hint: uniqueJmbg() })).rejects.toMatchObject({ error: 'unknown_user_id' });
    expect((await start(allowed, { login_hint: unverified.username })).auth_req_id).toBeTruthy();
    // A username that is another citizen's JMBG: two citizens answer to the hint, so it names neither.
    const twinJmbg = uniqueJmbg();
    await createTestAccount(server.kapija, { jmbg: twinJmbg });
    await createTestAccount(server.kapija, { username: twinJmbg, identity: 'none' });
    await expect(start(allowed, { login_hint: twinJmbg })).rejects.toMatchObject({ error: 'unknown_user_id' });
    // The service that may not use JMBGs names the account whose username it is.
    expect((await start(plain, { login_hint: twinJmbg })).auth_req_id).toBeTruthy();

    // Binding messages: markup is text (shown escaped), controls and bidirectional overrides are not, nor long ones.
    expect((await start(plain, { login_hint: citizen.username, binding_message: 'Позив 7 <i>' })).auth_req_id).toBeTruthy();
    for (const bad of ['a\u202Eb', 'line\nbreak', 'x'.repeat(65), ' padded']) {
      await expect(start(plain, { login_hint: citizen.username, binding_message: bad })).rejects.toMatchObject({ error: 'invalid_binding_message' });
    }
    await expect(start(plain, { login_hint: citizen.username, user_code: '1234' })).rejects.toMatchObject({ error: 'invalid_request' });
    await expect(start(plain, { login_hint: citizen.username, login_hint_token: 'x' })).rejects.toMatchObject({ error: 'invalid_request' });
    await expect(start(plain, { login_hint_token: 'x' })).rejects.toMatchObject({ error: 'invalid_request' });
  }, 60_000);

  test('a service that names nobody again and again is held back; other services are not', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { rp } = await callCentre(server);
    const other = await callCentre(server);
    const ask = (hint: string) =>
      fetch(`${server.url}/backchannel`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}` },
        body: new URLSearchParams({ scope: 'openid', login_hint: hint }),
      });
    // 20 unknown hints in 15 minutes are answered; the 21st is answered and starts the wait.
    for (let i = 0; i < 21; i += 1) {
      const res = await ask(`guess-${i}`);
      expect([i, res.status, ((await res.json()) as { error: string }).error]).toEqual([i, 400, 'unknown_user_id']);
    }
    const held = await ask('guess-21');
    expect(held.status).toBe(429);
    expect(Number(held.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await held.json()).toMatchObject({ error: 'slow_down' });
    // While held, even a real citizen's name gets no answer about them.
    expect((await ask(citizen.username)).status).toBe(429);
    expect((await oidc.initiateBackchannelAuthentication(other.config, { scope: 'openid', login_hint: citizen.username })).auth_req_id).toBeTruthy();
  });

  test('a service registered to sign its requests: unsigned ones are refused, signed ones go through', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomBytes(4).toString('hex');
    const { rp, config } = await callCentre(server, { backchannel_authentication_request_signing_alg: 'ES256', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] } });
    await expect(oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username })).rejects.toMatchObject({ error: 'invalid_request' });
    const now = Math.floor(Date.now() / 1000);
    const signed = (claims: Record<string, unknown>) =>
      new SignJWT({ scope: 'openid', login_hint: citizen.username, binding_message: 'S-1', ...claims })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(rp.clientId)
        .setAudience(server.url)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 300)
        .setJti(randomBytes(8).toString('hex'))
        .sign(privateKey);
    const started = await oidc.initiateBackchannelAuthentication(config, { request: await signed({}) });
    expect(started.auth_req_id).toBeTruthy();
    const stored = JSON.stringify(await server.kapija.payloads.find('BackchannelAuthenticationRequest', started.auth_req_id));
    expect(stored).toContain('S-1');
    expect(stored).not.toContain(citizen.username);
    // Signed with another key: refused.
    const { privateKey: otherKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ scope: 'openid', login_hint: citizen.username }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(rp.clientId).setAudience(server.url).setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300).setJti('x1').sign(otherKey);
    await expect(oidc.initiateBackchannelAuthentication(config, { request: forged })).rejects.toMatchObject({ error: 'invalid_request' });
  });

  test("a deleted account's waiting requests are refused at once", async () => {
    const citizen = await createTestAccount(server.kapija);
    const { config } = await callCentre(server);
    const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username });
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, citizen, '/account/data');
    const deleted = await agent.request(`${server.url}/account/delete`, { form: { _csrf: hiddenField(page.body, '_csrf')!, confirm: citizen.username } });
    expect(deleted.status).toBe(303);
    await expect(oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 1 })).rejects.toMatchObject({ error: 'access_denied' });
    await expect(oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username })).rejects.toMatchObject({ error: 'unknown_user_id' });
  }, 60_000);

  test('a service that keeps asking cannot flood the citizen with notices; every request is still in the ledger', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { rp, config } = await callCentre(server);
    for (let i = 0; i < 7; i += 1) await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username });
    await smtp.waitFor(citizen.account.email!);
    await new Promise((r) => setTimeout(r, 1500));
    expect(smtp.to(citizen.account.email!)).toHaveLength(4);
    const ledger = await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) });
    expect(ledger.filter((e) => e.action === 'ledger.ciba_requested' && e.clientId === rp.clientId)).toHaveLength(7);
  }, 30_000);

  test('odd forms on the requests page: an error page, never a 500', async () => {
    const { agent, handle, csrf } = await requestOnPortal(server);
    const forms: Record<string, string | string[]>[] = [
      { request: [handle!, handle!], factor: 'totp', code: '123456' },
      { request: handle!, factor: ['totp', 'webauthn'], code: '123456' },
      { request: handle!, factor: 'recovery', code: '123456' },
      { request: handle!, factor: 'webauthn', code: '123456' },
      { request: handle!, factor: 'totp', code: ['1', '2'] },
      { request: handle!, factor: 'totp', code: 'x'.repeat(5000) },
      { request: 'x'.repeat(5000), factor: 'totp', code: '123456' },
      { request: '<script>alert(1)</script>' },
      {},
    ];
    for (const form of forms) {
      for (const action of ['approve', 'deny']) {
        const res = await agent.request(`${server.url}/account/requests/${action}`, { form: { _csrf: csrf, ...form } });
        expect([action, form, res.status < 500]).toEqual([action, form, true]);
        expect(res.body).not.toContain('<script>alert');
      }
    }
    for (const path of ['/account/requests/%00/webauthn/options', `/account/requests/${'x'.repeat(3000)}/webauthn`, `/account/requests/${handle}/webauthn`]) {
      const res = await fetchJson(agent, `${server.url}${path}`, csrf, { response: 'nonsense' });
      expect([path.slice(0, 60), res.status < 500]).toEqual([path.slice(0, 60), true]);
    }
  }, 60_000);

  test('a service without the grant type is refused; so is an unauthenticated request', async () => {
    const citizen = await createTestAccount(server.kapija);
    const web = await createTestClient(server.kapija, {});
    const res = await fetch(`${server.url}/backchannel`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${web.clientId}:${web.clientSecret!}`).toString('base64')}` },
      body: new URLSearchParams({ scope: 'openid', login_hint: citizen.username }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: `${CIBA} is not allowed for this client` });
    const anonymous = await fetch(`${server.url}/backchannel`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ scope: 'openid', login_hint: citizen.username }) });
    expect([400, 401]).toContain(anonymous.status);
    // Nothing was recorded for the citizen.
    const ledger = await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) });
    expect(ledger.filter((e) => e.action === 'ledger.ciba_requested')).toEqual([]);
  });
});

describeBrowser('the requests page in a browser', () => {
  const server = kapijaForSuite();
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test.each(LOCALES)('in %s: axe-clean, denied and approved with the keyboard only', async (locale) => {
    const citizen = await createTestAccount(server.kapija);
    const { config } = await callCentre(server);
    const first = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid profile', login_hint: citizen.username, binding_message: '<i>D-1</i>' });
    const second = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username, binding_message: 'A-2' });
    const page = await newPage(browser, { locale });
    try {
      await page.goto(`${server.url}/account/requests?lang=${locale}`);
      await browserSignIn(page, { username: citizen.username, password: citizen.password, totpSecret: citizen.totpSecret, keyboard: true });
      await page.waitForSelector('[data-deny]');
      expect(new URL(page.url()).pathname).toBe('/account/requests');
      expect(await page.getAttribute('html', 'lang')).toBe(locale);
      // The markup in a binding message is text on the page, not an element.
      expect(await page.locator('[data-binding-message]').first().textContent()).toBe('<i>D-1</i>');
      expect(await page.locator('main i').count()).toBe(0);
      expect(await page.getAttribute('#code-0', 'autocomplete')).toBe('one-time-code');
      let violations = await runAxe(page);
      if (violations.length) throw new Error(formatViolations(violations));
      // On a narrow phone the page does not scroll sideways (WCAG 1.4.10 reflow).
      await page.setViewportSize({ width: 320, height: 800 });
      const widths = await page.evaluate(() => ({ scroll: (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth, inner: (globalThis as unknown as { innerWidth: number }).innerWidth }));
      expect(widths.scroll).toBeLessThanOrEqual(widths.inner);

      // Deny the first (the one that expires first) from the keyboard: Tab to its button, Enter.
      await tabTo(page, '[data-deny]', undefined, 60);
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      await page.waitForSelector('[role=status]');
      await expect(oidc.pollBackchannelAuthenticationGrant(config, { ...first, interval: 1 })).rejects.toMatchObject({ error: 'access_denied' });

      // Approve the other with a wrong code, then the right one: the error is tied to the field.
      await tabTo(page, '#code-0', undefined, 60);
      await page.keyboard.type('000000');
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      expect(await page.getAttribute('#code-0', 'aria-invalid')).toBe('true');
      expect(await page.getAttribute('#code-0', 'aria-describedby')).toContain('request-error-0');
      violations = await runAxe(page);
      if (violations.length) throw new Error(formatViolations(violations));
      await tabTo(page, '#code-0', undefined, 60);
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.type(await nextTotpCode(citizen.totpSecret!));
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      await page.waitForSelector('[role=status]');
      expect(await page.locator('[data-deny]').count()).toBe(0);
      violations = await runAxe(page);
      if (violations.length) throw new Error(formatViolations(violations));
      expect((await oidc.pollBackchannelAuthenticationGrant(config, { ...second, interval: 1 })).access_token).toBeTruthy();
      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
  }, 120_000);
});

describeBrowser('approving with a security key', () => {
  // WebAuthn needs a host name, not an IP address; the virtual authenticator's model counts as hardware.
  const server = kapijaForSuite({ host: 'localhost', env: { WEBAUTHN_HWK_AAGUIDS: VIRTUAL_AUTHENTICATOR_AAGUID } });
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('a request at high can only be approved with the key: the ID token says hwk and high', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { config } = await callCentre(server);
    const page = await newPage(browser);
    try {
      const key = await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });
      await page.goto(`${server.url}/account/security`);
      await browserSignIn(page, { username: citizen.username, password: citizen.password, totpSecret: citizen.totpSecret });
      await page.waitForSelector('button[data-webauthn="register"]:visible');
      await Promise.all([page.waitForNavigation(), page.click('button[data-webauthn="register"]')]);
      expect(await key.credentials()).toHaveLength(1);

      const started = await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username, acr_values: 'http://eidas.europa.eu/LoA/high' });
      await page.goto(`${server.url}/account/requests`);
      // Password and an app code reach substantial only: the app code is not offered for this request.
      expect(await page.locator('input[name=code]').count()).toBe(0);
      await page.waitForSelector('button[data-webauthn="login"]:visible');
      const violations = await runAxe(page);
      if (violations.length) throw new Error(formatViolations(violations));
      await Promise.all([page.waitForURL((u) => u.searchParams.get('done') === 'approved'), page.click('button[data-webauthn="login"]')]);
      const tokens = await oidc.pollBackchannelAuthenticationGrant(config, { ...started, interval: 1 });
      expect(tokens.claims()!.acr).toBe('http://eidas.europa.eu/LoA/high');
      expect(tokens.claims()!.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));
      expect(cspViolations(page)).toEqual([]);

      // A ceremony's answer without the challenge Kapija issued for this request is refused; the request stays.
      await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username });
      await page.goto(`${server.url}/account/requests`);
      const verifyUrl = await page.getAttribute('button[data-webauthn="login"]', 'data-verify-url');
      const csrf = await page.getAttribute('button[data-webauthn="login"]', 'data-csrf');
      const status = await page.evaluate(async ([url, token]) => {
        const res = await fetch(url!, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': token! }, body: JSON.stringify({ response: { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON: 'AAAA', authenticatorData: 'AAAA', signature: 'AAAA' } } }) });
        return res.status;
      }, [verifyUrl, csrf] as const);
      expect(status).toBe(401);
      await page.reload();
      expect(await page.locator('[data-deny]').count()).toBe(1);
    } finally {
      await page.context().close();
    }
  }, 90_000);

  test('the key ceremony for a citizen without a key, or for a request that is not theirs, is refused', async () => {
    const { agent, page, handle, csrf } = await requestOnPortal(server);
    const json = (path: string, body: unknown) => fetchJson(agent, `${server.url}${path}`, csrf, body);
    // This citizen has no key: the ceremony is not offered, and its routes refuse.
    expect(page.body).not.toContain('data-webauthn="login"');
    expect((await json(`/account/requests/${handle}/webauthn/options`, {})).status).toBe(403);
    expect((await json(`/account/requests/${handle}/webauthn`, { response: { id: 'x', rawId: 'x', type: 'public-key', response: {} } })).status).toBe(403);
    const unknown = await json('/account/requests/not-a-request/webauthn/options', {});
    expect(unknown.status).toBe(404);
    expect(handles(await agent.request(`${server.url}/account/requests`))).toEqual([handle]);
  }, 60_000);
});

/** A JSON POST with the agent's cookies and a form token in the header, as static/webauthn.js sends it. */
/** A new citizen with one waiting request, on their requests page: its handle and the page's form token. */
async function requestOnPortal(server: RunningKapija) {
  const citizen = await createTestAccount(server.kapija);
  const { config } = await callCentre(server);
  await oidc.initiateBackchannelAuthentication(config, { scope: 'openid', login_hint: citizen.username });
  const agent = new Agent('en');
  const page = await openPortal(agent, server.url, citizen, '/account/requests');
  const [handle] = handles(page);
  return { citizen, agent, page, handle, csrf: hiddenField(page.body, '_csrf')! };
}

async function fetchJson(agent: Agent, url: string, csrf: string, body: unknown): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf, cookie: agent.jar.header(new URL(url)) ?? '' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.text() };
}
