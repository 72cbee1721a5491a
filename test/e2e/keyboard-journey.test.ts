/**
 * Equal access: a citizen registers, confirms the e-mail, enrols an authenticator app and signs in
 * to a service with the keyboard alone — in a browser with JavaScript switched off, since every
 * page but the WebAuthn ceremony must work without it. The account portal works the same way.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { describeBrowser, launchBrowser, newPage, tabTo, type Browser, type Page } from '../support/browser.js';
import { createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { startSmtp, linkIn, type TestSmtp } from '../support/smtp.js';
import { nextTotpCode } from '../support/totp.js';

let server: RunningKapija;
let smtp: TestSmtp;
let browser: Browser;
let receiver: http.Server;
let redirect: string;

describeBrowser('keyboard only, JavaScript off', () => {
  beforeAll(async () => {
    smtp = await startSmtp();
    server = await startKapija({ env: { SMTP_URL: smtp.url, MAIL_FROM: 'Kapija <no-reply@kapija.test>' } });
    receiver = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    redirect = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cb`;
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => receiver?.close(r));
    await server?.stop();
    await smtp?.close();
  });

  /** Tabs to `selector`, checks the focus is visible there, then types or presses `key`. */
  async function press(page: Page, selector: string, key: 'Enter' | 'Space' = 'Enter') {
    await tabTo(page, selector);
    const outline = (await page.evaluate(
      '(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + " " + s.outlineWidth; })()',
    )) as string;
    expect(outline).not.toMatch(/^none|0px$/);
    await Promise.all([page.waitForNavigation(), page.keyboard.press(key)]);
    await page.waitForLoadState('load');
  }
  async function type(page: Page, selector: string, text: string) {
    await tabTo(page, selector);
    await page.keyboard.type(text);
  }

  test('registration, e-mail confirmation, TOTP enrolment and sign-in to a service', async () => {
    const rp = await createTestClient(server.kapija, { client_name: 'Servis', redirect_uris: [redirect] });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirect,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const page = await newPage(browser, { locale: 'sr-Latn', context: { javaScriptEnabled: false } });
    await page.goto(url.href);

    const username = `kb.${Date.now().toString(36)}`;
    const password = 'tastatura bez miša 2026';
    await press(page, 'a[href^="/register"]');
    await type(page, '#username', username);
    await type(page, '#email', `${username}@example.rs`);
    await type(page, '#given_name', 'Tara');
    await type(page, '#family_name', 'Tarić');
    await type(page, '#password', password);
    await type(page, '#password_confirm', password);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);

    const mail = await smtp.waitFor(`${username}@example.rs`);
    expect(mail.language).toBe('sr-Latn');
    await page.goto(linkIn(mail, `${server.url}/verify-email?token=`).href);
    await press(page, 'form[action="/verify-email"] button[type=submit]');
    await press(page, 'main a[href^="/interaction/"]');

    await type(page, '#username', username);
    await type(page, '#password', password);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await page.waitForLoadState('load');
    // enrolment: the QR code and the key are there without script; WebAuthn says it needs JavaScript
    expect(await page.locator('img.qr').count()).toBe(1);
    expect(await page.locator('[data-webauthn-nojs]').isVisible()).toBe(true);
    const secret = (await page.locator('[data-totp-secret]').innerText()).replace(/\s/g, '');
    await type(page, 'form[action$="/totp/enrol"] input[name=code]', await nextTotpCode(secret));
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await page.waitForLoadState('load');
    await press(page, 'form[action$="/continue"] button');
    await press(page, 'form[action$="/confirm"] button[type=submit]', 'Space');
    await page.waitForURL((u) => u.href.startsWith(redirect));
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier, idTokenExpected: true });
    expect(tokens.claims()!.amr).toEqual(['pwd', 'otp', 'mfa']);

    // the portal without script: sessions, and signing out everywhere with the keyboard
    await page.goto(`${server.url}/account/sessions`);
    expect(await page.locator('[data-session-uid]').count()).toBe(1);
    await press(page, 'button[data-session-uid]');
    expect(new URL(page.url()).pathname).toBe('/account/signed-out');
    await page.context().close();
  }, 90_000);
});
