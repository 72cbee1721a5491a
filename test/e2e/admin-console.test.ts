/**
 * The administration console in Chromium: an administrator (TOTP, ADMIN_MIN_ACR=substantial) signs
 * in through Kapija, registers a service, a citizen signs in to it, and the administrator ends that
 * session: the service's refresh token stops working and its back-channel endpoint receives a valid
 * logout token. axe checks every console page.
 */
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { browserSignIn, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, type Browser, type Page } from '../support/browser.js';
import { createTestAccount, startKapija, type RunningKapija } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { en } from '../../src/i18n/messages/en.js';
import { startLogoutReceiver, type LogoutReceiver } from '../support/logout-receiver.js';

describeBrowser('administration console', () => {
  let server: RunningKapija;
  let browser: Browser;
  let receiver: LogoutReceiver;
  let backchannelUri: string;

  beforeAll(async () => {
    server = await startKapija({ env: { ADMIN_MIN_ACR: 'substantial' } });
    browser = await launchBrowser();
    receiver = await startLogoutReceiver();
    backchannelUri = receiver.url;
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
    await server?.stop();
  });

  const axeClean = async (page: Page) => {
    const violations = await runAxe(page);
    expect(formatViolations(violations)).toBe('');
  };

  test('register a service, a citizen signs in, the administrator ends the session', async () => {
    const admin = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const page = await newPage(browser, { locale: 'en' });

    await page.goto(`${server.url}/admin`);
    await browserSignIn(page, admin);
    await page.waitForURL(/\/admin\/clients$/);
    await axeClean(page);

    await page.getByRole('link', { name: 'Register a service' }).click();
    await page.waitForURL(/\/admin\/clients\/new$/);
    await axeClean(page);
    const redirect = 'http://127.0.0.1:9/cb';
    await page.fill('#client_id', 'porez-console');
    await page.fill('#client_name', 'Poreska uprava');
    await page.fill('#name-cyrl', 'Пореска управа');
    await page.fill('#redirect_uris', redirect);
    await page.fill('#backchannel_logout_uri', backchannelUri);
    await page.fill('#purposes_en', 'email: To send you the tax notice');
    await page.getByRole('button', { name: 'Register the service' }).click();
    await page.waitForSelector('#client_secret');
    await axeClean(page);
    const secret = await page.inputValue('#client_secret');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // a citizen signs in to the new service
    const citizen = await createTestAccount(server.kapija);
    const config = await oidc.discovery(new URL(server.url), 'porez-console', secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirect, scope: 'openid offline_access', prompt: 'consent', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const tokens = await oidc.authorizationCodeGrant(config, await signIn(new Agent(), url, redirect, citizen), { pkceCodeVerifier: verifier });

    // the administrator finds and ends it
    await page.goto(`${server.url}/admin/sessions`);
    await page.fill('#client', 'porez-console');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/client=porez-console/);
    await axeClean(page);
    const boxes = page.locator('input[name=sessions]');
    expect(await boxes.count()).toBe(1);
    await boxes.first().check();
    await page.getByRole('button', { name: 'End the selected sessions' }).click();
    await page.waitForSelector('[data-delivery]');
    await axeClean(page);
    expect(await page.locator('[data-delivery]').getAttribute('data-delivery')).toBe('delivered');

    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(receiver.tokens).toHaveLength(1);
    const { payload } = await jwtVerify(receiver.tokens[0]!, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: 'porez-console', typ: 'logout+jwt' });
    expect(payload.sid).toBe(tokens.claims()!.sid);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });

    // the other pages, in each language
    for (const lang of ['en', 'sr-Latn', 'sr-Cyrl']) {
      await page.goto(`${server.url}/admin/citizens?q=${encodeURIComponent(citizen.username)}&lang=${lang}`);
      expect(await page.getAttribute('html', 'lang')).toBe(lang);
      await axeClean(page);
    }
    await page.locator(`a[href="/admin/citizens/${citizen.account.id}"]`).click();
    await page.waitForURL(/\/admin\/citizens\/[0-9a-f-]{36}$/);
    await axeClean(page);
    // the citizen's factors by the names the registry gives them, not their credential types
    await page.goto(`${server.url}/admin/citizens/${citizen.account.id}?lang=en`);
    expect(await page.locator('main').innerText()).toContain(en['account.security.type.totp']);
    await page.goto(`${server.url}/admin/clients/porez-console`);
    await axeClean(page);
    await page.goto(`${server.url}/admin/audit?verify=1`);
    await axeClean(page);
    expect(await page.locator('[data-verify]').getAttribute('data-verify')).toBe('ok');
    await page.context().close();
  }, 60_000);
});
