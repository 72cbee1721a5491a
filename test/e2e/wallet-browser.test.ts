/**
 * The wallet sign-in pages in Chromium, keyboard only, axe-clean and under the pages' CSP, in the
 * three languages: the sign-in page's "use a wallet" button, the wallet page (the same-device link,
 * the QR code, "continue"), the page polling until the wallet on the other device answered, and the
 * refusal page with "try again".
 */
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg } from '../support/kapija.js';
import { cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, tabTo, type Browser } from '../support/browser.js';
import { holderKeyPair, startTestPidIssuer, type TestPidIssuer } from '../support/wallet/test-issuer.js';
import { presentPid } from '../support/wallet/present.js';
import { translator, type Locale } from '../../src/i18n/index.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

let pid: TestPidIssuer;
beforeAll(async () => {
  pid = await startTestPidIssuer();
});
afterAll(async () => {
  await pid?.stop();
});
const server = kapijaForSuite(() => ({ env: { WALLET_TRUSTED_ISSUERS: JSON.stringify([{ issuer: pid.issuer, level: 'high', jwks: pid.jwks }]) } }));

describeBrowser('the wallet sign-in pages in Chromium, keyboard only', () => {
  let browser: Browser;
  let clientId: string;
  beforeAll(async () => {
    browser = await launchBrowser();
    clientId = (await createTestClient(server.kapija, { redirect_uris: [REDIRECT] })).clientId;
  });
  afterAll(async () => {
    await browser?.close();
  });

  const authorize = (locale: Locale) => {
    const u = new URL('/auth', server.url);
    u.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', ui_locales: locale }).toString();
    return u.href;
  };
  const walletButton = 'form[action$="/wallet/start"] button';

  /** The sign-in page, then Tab to "use a wallet" and Enter: the wallet page, checked with axe. */
  async function toWalletPage(locale: Locale) {
    const page = await newPage(browser, { locale });
    page.setDefaultTimeout(15_000);
    await page.goto(authorize(locale));
    expect(formatViolations(await runAxe(page))).toBe('');
    await tabTo(page, walletButton, undefined, 40);
    await Promise.all([page.waitForURL(/\/wallet$/), page.keyboard.press('Enter')]);
    const t = translator(locale);
    await expect(page.locator('h1').textContent()).resolves.toBe(t('wallet.title'));
    expect(formatViolations(await runAxe(page))).toBe('');
    // Every control is reached from the keyboard: the same-device link, then "continue".
    await tabTo(page, 'a[href^="openid4vp://"]');
    await tabTo(page, 'a[href*="/wallet/identify?request="]');
    const continueHref = (await page.locator('a[href*="/wallet/identify?request="]').getAttribute('href'))!;
    const sameDevice = (await page.locator('a[href^="openid4vp://"]').getAttribute('href'))!;
    const crossId = new URL(continueHref, server.url).searchParams.get('request')!;
    const crossDevice = `openid4vp://?client_id=${encodeURIComponent(new URL(sameDevice).searchParams.get('client_id')!)}&request_uri=${encodeURIComponent(`${server.url}/wallet/request/${crossId}`)}`;
    return { page, t, crossDevice };
  }

  test.each(['sr-Cyrl', 'sr-Latn', 'en'] as const)('%s: the wallet page polls, and continues by itself once the other device answered', async (locale) => {
    const jmbg = uniqueJmbg();
    await createTestAccount(server.kapija, { jmbg });
    const holder = await holderKeyPair();
    const { credential } = await pid.issue({ pan: jmbg, holder: holder.publicJwk });
    const { page, crossDevice } = await toWalletPage(locale);
    const left = page.waitForURL((u) => !u.pathname.endsWith('/wallet'), { timeout: 20_000 });
    const presented = await presentPid(credential, holder.privateJwk, crossDevice);
    expect(presented.status).toBe(200);
    await left;
    // Signed in: the consent page of the sign-in, not a refusal or an error.
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[^/]+$/);
    await expect(page.locator('form[action$="/confirm"]').count()).resolves.toBe(1);
    expect(cspViolations(page)).toEqual([]);
    await page.context().close();
  });

  test('a revoked PID: the refusal page, axe-clean, and "try again" from the keyboard leads back to a wallet page', async () => {
    const jmbg = uniqueJmbg();
    await createTestAccount(server.kapija, { jmbg });
    const holder = await holderKeyPair();
    const { credential, idx } = await pid.issue({ pan: jmbg, holder: holder.publicJwk });
    pid.revoke(idx);
    const { page, t, crossDevice } = await toWalletPage('sr-Latn');
    const refused = page.waitForURL(/\/wallet\/refused\?reason=revoked/, { timeout: 20_000 });
    await presentPid(credential, holder.privateJwk, crossDevice);
    await refused;
    await expect(page.locator('[role=alert]').textContent()).resolves.toBe(t('wallet.refused.revoked'));
    expect(formatViolations(await runAxe(page))).toBe('');
    await tabTo(page, walletButton);
    await Promise.all([page.waitForURL(/\/wallet$/), page.keyboard.press('Enter')]);
    await expect(page.locator('h1').textContent()).resolves.toBe(t('wallet.title'));
    expect(cspViolations(page)).toEqual([]);
    await page.context().close();
  });
});
