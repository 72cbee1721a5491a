/**
 * The citizen's whole journey in Chromium, with axe on every page: register, verify the e-mail by
 * the mailed link, enrol a second factor, sign in to two services, see both in connected services
 * and in the ledger with the claims each got, sign another session out, and delete the account.
 * Run in Serbian Cyrillic (the default); the portal pages are also checked in the other languages.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { describeBrowser, formatViolations, launchBrowser, newPage, runAxe, type Browser, type Page } from '../support/browser.js';
import { createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { startSmtp, linkIn, type TestSmtp } from '../support/smtp.js';
import { nextTotpCode } from '../support/totp.js';

let server: RunningKapija;
let smtp: TestSmtp;
let browser: Browser;
let receiver: http.Server;
let base: string;

describeBrowser('a citizen from registration to deletion', () => {
  beforeAll(async () => {
    smtp = await startSmtp();
    server = await startKapija({ env: { SMTP_URL: smtp.url, MAIL_FROM: 'Kapija <no-reply@kapija.test>' } });
    receiver = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => receiver?.close(r));
    await server?.stop();
    await smtp?.close();
  });

  const checked: string[] = [];
  async function axe(page: Page, lang = 'sr-Cyrl') {
    expect(await page.getAttribute('html', 'lang')).toBe(lang);
    const violations = await runAxe(page);
    expect(formatViolations(violations)).toBe('');
    checked.push(new URL(page.url()).pathname.replace(/\/interaction\/[^/]+/, '/interaction/:uid'));
  }

  async function service(name: string, path: string, scope: string) {
    const redirect = `${base}${path}`;
    const rp = await createTestClient(server.kapija, { client_name: name, redirect_uris: [redirect], scope: 'openid profile email' });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirect,
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    return {
      rp,
      url,
      redirect,
      async finish(page: Page) {
        await page.waitForURL((u) => u.href.startsWith(redirect), { timeout: 15_000 });
        const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier });
        return { config, tokens };
      },
    };
  }

  async function go(page: Page, action: () => Promise<unknown>) {
    await Promise.all([page.waitForNavigation(), action()]);
    await page.waitForLoadState('load');
  }

  test('registers, enrols, uses two services, sees them in the portal and the ledger, signs out a session, deletes the account', async () => {
    const username = `jovana.${Date.now().toString(36)}`;
    const email = `${username}@example.rs`;
    const password = 'јесен на калемегдану 1867';
    const tax = await service('Пореска управа', '/tax/cb', 'openid profile email');
    const land = await service('Катастар', '/land/cb', 'openid email');
    const page = await newPage(browser, { locale: 'sr' });

    // 1. The first service sends the citizen to Kapija; no account yet: register.
    await page.goto(tax.url.href);
    await axe(page);
    await go(page, () => page.click('a[href^="/register"]'));
    await axe(page);
    await page.fill('#username', username);
    await page.fill('#email', email);
    await page.fill('#given_name', 'Јована');
    await page.fill('#family_name', 'Јовановић');
    await page.fill('#password', password);
    await page.fill('#password_confirm', password);
    await go(page, () => page.click('form[action="/register"] button[type=submit]'));
    await axe(page);

    // 2. The mailed link, in the citizen's language.
    const mail = await smtp.waitFor(email);
    expect(mail.language).toBe('sr-Cyrl');
    await page.goto(linkIn(mail, `${server.url}/verify-email?token=`).href);
    await axe(page);
    await go(page, () => page.click('form[action="/verify-email"] button[type=submit]'));
    await axe(page);
    await go(page, () => page.click('main a[href^="/interaction/"]'));

    // 3. Password, then enrolment of an authenticator app, recovery codes, consent.
    await page.fill('#username', username);
    await page.fill('#password', password);
    await go(page, () => page.click('form[action$="/login"] button[type=submit]'));
    await axe(page);
    const secret = (await page.locator('[data-totp-secret]').innerText()).replace(/\s/g, '');
    await page.fill('#code', await nextTotpCode(secret));
    await go(page, () => page.click('form[action$="/totp/enrol"] button[type=submit]'));
    await axe(page);
    expect(await page.locator('[data-recovery-codes] li').count()).toBe(10);
    await go(page, () => page.click('form[action$="/continue"] button'));
    await axe(page);
    await page.click('form[action$="/confirm"] button[type=submit]');
    const first = await tax.finish(page);
    await oidc.fetchUserInfo(first.config, first.tokens.access_token, first.tokens.claims()!.sub);

    // 4. A second service: single sign-on, its own consent.
    await page.goto(land.url.href);
    await page.waitForSelector('form[action$="/confirm"]');
    await axe(page);
    await page.click('form[action$="/confirm"] button[type=submit]');
    await land.finish(page);

    // 5. The portal: both services and what each received, in the ledger too.
    await page.goto(`${server.url}/account/services`);
    await axe(page);
    const services = await page.locator('main').innerText();
    expect(services).toContain('Пореска управа');
    expect(services).toContain('Катастар');
    await page.goto(`${server.url}/account/activity`);
    await axe(page);
    const ledger = await page.locator('table.ledger').innerText();
    expect(ledger).toMatch(/Пореска управа[\s\S]*Ваша адреса електронске поште/);
    expect(ledger).toContain('Катастар');
    expect(await page.getAttribute('[data-ledger-verified]', 'data-ledger-verified')).toBe('yes');

    // 6. A second browser signs in too; the portal signs that session out.
    const phone = await newPage(browser, { locale: 'sr' });
    await phone.goto(tax.url.href);
    await phone.fill('#username', username);
    await phone.fill('#password', password);
    await go(phone, () => phone.click('form[action$="/login"] button[type=submit]'));
    await phone.fill('form[action$="/totp"] input[name=code]', await nextTotpCode(secret));
    await phone.click('form[action$="/totp"] button[type=submit]');
    await tax.finish(phone);
    await page.goto(`${server.url}/account/sessions`);
    await axe(page);
    expect(await page.locator('[data-session-uid]').count()).toBe(2);
    const other = page.locator('li.card', { hasNot: page.locator('h2', { hasText: 'Овај прегледач' }) }).locator('button[data-session-uid]');
    await go(page, () => other.click());
    expect(await page.locator('[data-session-uid]').count()).toBe(1);
    await phone.goto(tax.url.href);
    expect(await phone.locator('#password').count()).toBe(1); // signed out: asked to sign in again
    await phone.context().close();

    // 7. The other languages of the portal pass axe as well.
    for (const lang of ['sr-Latn', 'en']) {
      for (const path of ['/account', '/account/sessions', '/account/services', '/account/security', '/account/activity', '/account/data']) {
        await page.goto(`${server.url}${path}?lang=${lang}`);
        await axe(page, lang);
      }
    }
    await page.goto(`${server.url}/account/data?lang=sr-Cyrl`);
    await axe(page);

    // 8. Deletion.
    const id = (await server.kapija.accounts.findByUsername(username))!.id;
    await page.fill('#confirm', username);
    await go(page, () => page.click('form[action="/account/delete"] button[type=submit]'));
    await axe(page);
    expect(await server.kapija.accounts.findByUsername(username)).toBeUndefined();
    expect(await server.kapija.accounts.findById(id)).toMatchObject({ status: 'deleted', email: null, givenName: null });
    expect(checked.length).toBeGreaterThan(25);
    await page.context().close();
  }, 120_000);
});
