/**
 * The device authorization grant (RFC 8628) across two Kapija processes on one PostgreSQL database:
 * a television starts it at A, the citizen enters the code at B and signs in there with password
 * and TOTP (and consents), A is restarted, and the television's poll at A gets the tokens. Wrong
 * codes are throttled per address at every instance; a code works once. The code page is axe-clean
 * in the three languages (Chromium).
 */
import * as oidc from 'openid-client';
import { Agent, checkedValues, formAction, hiddenField, type Page } from '../support/browserless.js';
import { submitForm } from '../support/sign-in.js';
import { nextTotpCode } from '../support/totp.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { clientKeysForSuite } from '../support/client-keys.js';
import { pgAvailable } from '../support/databases.js';
import { spawnKapija, type KapijaProcess } from '../support/spawn-kapija.js';
import { twoProcessesOnPg } from '../support/two-processes.js';
import { cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, tabTo, type Browser } from '../support/browser.js';
import type { Kapija } from '../../src/app.js';
import { ledgerChain } from '../../src/account/ledger.js';
import { LOCALES } from '../../src/i18n/index.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** Posts the code page's form (its own xsrf) with `fields`. */
async function postDeviceForm(agent: Agent, page: Page, fields: Record<string, string>): Promise<Page> {
  const action = formAction(page.body, /^\/device/);
  if (!action) throw new Error(`no device form on ${page.url.pathname} (status ${page.status})`);
  return agent.request(new URL(action, page.url), { form: { xsrf: hiddenField(page.body, 'xsrf') ?? '', ...fields } });
}

/** Opens `/device` at `base` and enters `userCode`: the answer (the confirmation page, or an error). */
async function enterCode(agent: Agent, base: string, userCode: string): Promise<Page> {
  const entry = await agent.request(`${base}/device?lang=en`);
  expect(entry.status).toBe(200);
  return postDeviceForm(agent, entry, { user_code: userCode });
}

/** From the confirmation page: confirm, sign in with password and TOTP, consent; the last page. */
async function confirmAndSignIn(agent: Agent, confirmation: Page, citizen: { username: string; password: string; totpSecret?: string | undefined }): Promise<Page> {
  let step = await agent.follow(await postDeviceForm(agent, confirmation, { user_code: hiddenField(confirmation.body, 'user_code')!, confirm: 'yes' }), () => false);
  const seen: string[] = [];
  for (let i = 0; i < 6; i += 1) {
    const page = step as Page;
    if (/\/interaction\/[^/]+$/.test(page.url.pathname) && /\/login"/.test(page.body)) {
      seen.push('password');
      step = await submitForm(agent, page, /\/login$/, { username: citizen.username, password: citizen.password });
    } else if (/\/totp"/.test(page.body)) {
      seen.push('totp');
      step = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) });
    } else if (/\/confirm"/.test(page.body)) {
      seen.push('consent');
      step = await submitForm(agent, page, /\/confirm$/, { claims: checkedValues(page.body, 'claims') });
    } else {
      expect(seen).toEqual(['password', 'totp', 'consent']);
      return page;
    }
    step = await agent.follow(step, () => false);
  }
  throw new Error('the device sign-in did not finish');
}

if (!pgAvailable()) {
  process.stdout.write('[skip] device-flow: PostgreSQL not reachable (two processes need a shared database)\n');
  test.skip('device authorization grant across two instances (PostgreSQL not reachable)', () => undefined);
} else {
  describe('device authorization grant on two instances', () => {
    const two = twoProcessesOnPg('kapija-device');
    let env: Record<string, string>;
    let portA: number;
    let a: KapijaProcess;
    let b: KapijaProcess;
    let store: Kapija;
    let issuer: string;
    beforeAll(() => {
      ({ a, b, store, issuer, env } = two);
      portA = two.ports.a;
    });

    const clientKey = clientKeysForSuite();

    /**
     * A television app that opted in to the device grant, talking to A. With pairwise subjects (the
     * default) the engine requires such a client to authenticate with its own key (private_key_jwt)
     * published at a jwks_uri.
     */
    async function television() {
      const { privateKey, kid, jwksUri } = await clientKey();
      const rp = await createTestClient(store, { grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], jwks_uri: jwksUri, token_endpoint_auth_method: 'private_key_jwt', scope: 'openid profile offline_access' }, { public: true });
      const config = await oidc.discovery(new URL(a.url), rp.clientId, undefined, oidc.PrivateKeyJwt({ key: privateKey, kid }), { execute: [oidc.allowInsecureRequests] });
      return { rp, config };
    }

    test('discovery announces the grant; a client that did not opt in is refused', async () => {
      const disco = (await (await fetch(`${b.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      expect(disco.device_authorization_endpoint).toBe(`${issuer}/device/auth`);
      expect(disco.grant_types_supported).toContain(DEVICE_GRANT);
      const web = await createTestClient(store, {});
      const res = await fetch(`${a.url}/device/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${web.clientId}:${web.clientSecret!}`).toString('base64')}` },
        body: new URLSearchParams({ scope: 'openid' }),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: 'invalid_request', error_description: `${DEVICE_GRANT} is not allowed for this client` });
    });

    test('started at A, signed in at B with password and TOTP, polled at A after a restart; the code works once', async () => {
      const citizen = await createTestAccount(store);
      const { rp, config } = await television();
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile offline_access' });
      expect(started.user_code).toMatch(/^\d{3}-\d{3}-\d{3}$/);
      expect(started.verification_uri).toBe(`${issuer}/device`);

      // Before the citizen confirms, the poll is told to wait.
      await expect(oidc.genericGrantRequest(config, DEVICE_GRANT, { device_code: started.device_code })).rejects.toMatchObject({ error: 'authorization_pending' });

      // The citizen types the code without dashes, on B.
      const agent = new Agent('en');
      const confirmation = await enterCode(agent, b.url, started.user_code.replace(/-/g, ''));
      expect(confirmation.status).toBe(200);
      expect(confirmation.body).toContain(started.user_code);
      expect(confirmation.body).toContain('Service');
      const done = await confirmAndSignIn(agent, confirmation, citizen);
      expect(done.status).toBe(200);
      expect(done.body).toContain('The device is signed in');

      // A restarts: the code and the sign-in's result are in the database, not in A's memory.
      await a.stop();
      a = two.a = await spawnKapija(env, { port: portA });

      const tokens = await oidc.pollDeviceAuthorizationGrant(config, { ...started, interval: 1 });
      const claims = tokens.claims()!;
      expect(claims.sub).toBe(await store.subjectFor(citizen.account.id, rp.clientId));
      expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']));
      expect(claims.acr).toBe('http://eidas.europa.eu/LoA/substantial');
      expect(tokens.refresh_token).toBeTruthy();
      const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
      expect(info.preferred_username).toBe(citizen.username);

      // The release is in the citizen's ledger, as for any sign-in.
      const ledger = await store.audit.list({ chain: ledgerChain(citizen.account.id) });
      const released = ledger.filter((e) => e.action === 'ledger.data_released' && e.clientId === rp.clientId);
      expect(released.map((e) => e.details.channel)).toEqual(expect.arrayContaining(['id_token', 'userinfo']));

      // The device code is used up: its user code entered again (at either instance), or polled
      // again (a replay: the engine then revokes the grant and its tokens).
      for (const base of [a.url, b.url]) {
        const again = await enterCode(new Agent('en'), base, started.user_code);
        expect(again.body).toContain('That code has already been used');
        expect(formAction(again.body, /^\/device/)).toBeDefined();
        expect(again.body).not.toContain('name="confirm"');
      }
      await expect(oidc.pollDeviceAuthorizationGrant(config, { ...started, interval: 1 })).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.fetchUserInfo(config, tokens.access_token, claims.sub)).rejects.toBeDefined();
    }, 60_000);

    test('cancelled on the confirmation page: the device is refused', async () => {
      const { config } = await television();
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const agent = new Agent('en');
      const confirmation = await enterCode(agent, b.url, started.user_code);
      const cancelled = await postDeviceForm(agent, confirmation, { user_code: started.user_code, abort: 'yes' });
      expect(cancelled.body).toContain('The sign-in was cancelled');
      await expect(oidc.pollDeviceAuthorizationGrant(config, { ...started, interval: 1 })).rejects.toMatchObject({ error: 'access_denied' });
    }, 30_000);

    // Last: it locks this test's address out of the code page at both instances.
    test('wrong codes are throttled per address across instances; then even a right code waits', async () => {
      const { config } = await television();
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const agent = new Agent('en');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1) {
        const wrong = await enterCode(agent, i % 2 ? a.url : b.url, `000-000-00${i}`);
        statuses.push(wrong.status);
        if (wrong.status === 200) expect(wrong.body).toContain('That code is not correct');
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      const held = await enterCode(agent, b.url, started.user_code);
      expect(held.status).toBe(429);
      expect(Number(held.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(held.body).toContain('Too many attempts');
      expect(held.body).not.toContain(started.user_code);
    }, 30_000);
  });
}

describe('the device code page with bad input', () => {
  let server: RunningKapija;
  beforeAll(async () => {
    server = await startKapija();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('a missing or foreign form token, repeated fields, huge or odd codes: a page with an error, never a 500', async () => {
    const agent = new Agent('en');
    const entry = await agent.request(`${server.url}/device?lang=en`);
    const xsrf = hiddenField(entry.body, 'xsrf')!;
    const cases: Array<Record<string, string | string[]>> = [
      { user_code: '123-456-789' },
      { xsrf: 'forged', user_code: '123-456-789' },
      { xsrf, user_code: ['111-111-111', '222-222-222'] },
      { xsrf, user_code: 'x'.repeat(5000) },
      { xsrf, user_code: '<script>alert(1)</script>' },
      { xsrf, user_code: 'јед-нод-ва' },
      { xsrf },
    ];
    for (const form of cases) {
      const page = await agent.request(`${server.url}/device?lang=en`, { form });
      expect([form, page.status < 500]).toEqual([form, true]);
      expect(page.body).not.toContain('<script>alert');
      expect(page.body).toContain('role="alert"');
    }
  });
});

describeBrowser('the device code page', () => {
  let server: RunningKapija;
  let browser: Browser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([startKapija(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('verification_uri_complete: the code in the link is sent on by itself, under the page CSP', async () => {
    const page = await newPage(browser, { locale: 'en' });
    try {
      await page.goto(`${server.url}/device?user_code=987-654-321`);
      await page.waitForSelector('#form-error');
      expect(new URL(page.url()).pathname).toBe('/device');
      expect(await page.textContent('#form-error')).toContain('That code is not correct');
      expect(await page.inputValue('#user_code')).toBe('987-654-321');
      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
  });

  test.each(LOCALES)('in %s: axe-clean, operable by keyboard, an error tied to the field', async (locale) => {
    const page = await newPage(browser, { locale });
    try {
      await page.goto(`${server.url}/device?lang=${locale}`);
      expect(await page.getAttribute('html', 'lang')).toBe(locale);
      expect(await page.getAttribute('#user_code', 'autocomplete')).toBe('off');
      expect(await page.getAttribute('#user_code', 'inputmode')).toBe('numeric');
      let violations = await runAxe(page);
      if (violations.length) throw new Error(formatViolations(violations));
      // Keyboard only: Tab reaches the field, Enter sends it.
      await tabTo(page, '#user_code');
      await page.keyboard.type('111-222-333');
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      await page.waitForSelector('#form-error');
      expect(await page.getAttribute('#user_code', 'aria-invalid')).toBe('true');
      expect(await page.getAttribute('#user_code', 'aria-describedby')).toContain('form-error');
      violations = await runAxe(page);
      if (violations.length) throw new Error(formatViolations(violations));
      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});
