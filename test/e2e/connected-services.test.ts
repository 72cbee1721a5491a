/**
 * /account/services in Chromium, in all three languages: a refused claim is shown as refused, the
 * page has no axe (WCAG 2.1 A/AA) or CSP violations, and the citizen allows the claim again with
 * the keyboard alone (Tab, Space, Enter).
 */
import { randomBytes } from 'node:crypto';
import type { Locale } from '../../src/config.js';
import type { Messages } from '../../src/i18n/index.js';
import { en } from '../../src/i18n/messages/en.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';
import { browserSignIn, cspViolations, describeBrowser, formatViolations, newPage, runAxe, tabTo } from '../support/browser.js';
import { browserSuiteWithService } from '../support/browser-suite.js';
import { createTestAccount, createTestClient, uniqueJmbg } from '../support/kapija.js';
import { PKCE_CHALLENGE } from '../support/pkce.js';

const CATALOGUES: Record<Locale, Messages> = { 'sr-Cyrl': srCyrl, 'sr-Latn': srLatn, en };

const suite = browserSuiteWithService();

describeBrowser('connected services: refused claims', () => {
  test.each(['sr-Cyrl', 'sr-Latn', 'en'] as Locale[])('WCAG 2.1 AA / GDPR Art. 7(3) (%s): a refused claim is shown and allowed again with the keyboard; no axe or CSP violations', async (locale) => {
    const m = CATALOGUES[locale];
    const citizen = await createTestAccount(suite.server.kapija, { jmbg: uniqueJmbg() });
    const rp = await createTestClient(suite.server.kapija, { redirect_uris: [suite.redirectUri], scope: 'openid profile jmbg' });
    const page = await newPage(suite.browser, { locale: locale === 'en' ? 'en-GB' : locale === 'sr-Latn' ? 'sr-Latn-RS' : 'sr-RS' });
    try {
      const auth = new URL('/auth', suite.server.url);
      auth.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid profile jmbg', redirect_uri: suite.redirectUri, state: randomBytes(8).toString('hex'), ui_locales: locale, ...PKCE_CHALLENGE }).toString();
      await page.goto(auth.href);
      // The consent page's JMBG box starts unticked: allowing the rest refuses it.
      const end = await browserSignIn(page, { ...citizen, redirectUri: suite.redirectUri });
      expect(end.searchParams.get('code')).toBeTruthy();

      await page.goto(`${suite.server.url}/account/services?lang=${locale}`);
      await page.waitForURL(/\/account\/services/);
      const jmbg = page.locator('input[type=checkbox][value="jmbg"]');
      expect(await jmbg.isChecked()).toBe(false);
      const text = await page.locator('body').innerText();
      for (const t of [m['account.services.choose'], m['account.services.refused'], m['account.services.save'], m['consent.claim.jmbg']]) expect(text).toContain(t);
      expect(formatViolations(await runAxe(page))).toBe('');

      await tabTo(page, 'input[type=checkbox][value="jmbg"]', undefined, 60);
      await page.keyboard.press('Space');
      await tabTo(page, `button[data-save-claims="${rp.clientId}"]`);
      await Promise.all([page.waitForURL(/done=claims/), page.keyboard.press('Enter')]);
      expect(await page.locator('input[type=checkbox][value="jmbg"]').isChecked()).toBe(true);
      expect(await page.locator('[role=status]').innerText()).toBe(m['account.services.saved']);
      expect(formatViolations(await runAxe(page))).toBe('');
      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});
