/**
 * The first page at `/`: what Kapija is and the ways in (account portal; console, discovery and
 * the admin API description for operators), in all three languages, axe-clean in Chromium.
 */
import type { Locale } from '../../src/config.js';
import type { Messages } from '../../src/i18n/index.js';
import { en } from '../../src/i18n/messages/en.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';
import { cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, type Browser } from '../support/browser.js';
import { kapijaForSuite } from '../support/kapija.js';

const CATALOGUES: Record<Locale, Messages> = { en, 'sr-Latn': srLatn, 'sr-Cyrl': srCyrl };

const server = kapijaForSuite();

test('GET / answers 200 with the start page and its links, not 404; HEAD too; POST is not served', async () => {
  const res = await fetch(`${server.url}/?lang=en`);
  expect(res.status).toBe(200);
  const html = await res.text();
  expect(html).toContain(en['start.title']);
  for (const href of ['/account', '/admin', '/.well-known/openid-configuration', '/admin/api/openapi.json']) expect(html).toContain(`href="${href}"`);
  expect((await fetch(`${server.url}/`, { method: 'HEAD' })).status).toBe(200);
  expect((await fetch(`${server.url}/`, { method: 'POST' })).status).toBeGreaterThanOrEqual(400);
});

describeBrowser('the start page in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test.each(['sr-Cyrl', 'sr-Latn', 'en'] as const)('%s: html[lang], text in the language, links that lead somewhere, no axe violations', async (locale) => {
    const m = CATALOGUES[locale];
    const page = await newPage(browser, { locale: 'en' });
    try {
      const res = await page.goto(`${server.url}/?lang=${locale}`);
      expect(res?.status()).toBe(200);
      expect(await page.locator('html').getAttribute('lang')).toBe(locale);
      const text = await page.locator('main').innerText();
      for (const key of ['start.title', 'start.intro', 'start.account', 'start.console', 'start.discovery', 'start.api'] as const) expect(text).toContain(m[key]);
      expect(formatViolations(await runAxe(page))).toBe('');
      // The portal link leads to the portal (its sign-in), not to an error.
      await page.locator('main a[href="/account"]').click();
      await page.waitForLoadState('load');
      expect(await page.locator('h1').count()).toBeGreaterThan(0);
      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});
