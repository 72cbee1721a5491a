/**
 * What every page owes its reader, in Chromium and in the three languages: from the footer of the
 * sign-in page, the privacy notice, the accessibility statement, the cookie page and help are each
 * reached with the keyboard alone (Tab to the link, Enter), in the page's language, axe-clean and
 * without a CSP violation.
 */
import type { Locale } from '../../src/config.js';
import type { Messages } from '../../src/i18n/index.js';
import { en } from '../../src/i18n/messages/en.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';
import { cspViolations, describeBrowser, focusMatches, formatViolations, launchBrowser, newPage, runAxe, tabTo, type Browser } from '../support/browser.js';
import { startKapija, type RunningKapija } from '../support/kapija.js';

const CATALOGUES: Record<Locale, Messages> = { 'sr-Cyrl': srCyrl, 'sr-Latn': srLatn, en };
const PAGES = [
  { href: '/privacy', link: 'layout.privacy' },
  { href: '/accessibility', link: 'layout.accessibility' },
  { href: '/cookies', link: 'layout.cookies' },
  { href: '/help', link: 'layout.help' },
] as const;

declare const document: { activeElement: unknown };
declare function getComputedStyle(el: unknown): { outlineStyle: string; outlineWidth: string };

describeBrowser('footer pages', () => {
  let server: RunningKapija;
  let browser: Browser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([startKapija(), launchBrowser()]);
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test.each(['sr-Cyrl', 'sr-Latn', 'en'] as const)('%s: every footer link by keyboard, in the language, axe-clean', async (locale) => {
    const m = CATALOGUES[locale];
    const page = await newPage(browser, { locale: 'en' });
    const problems: string[] = [];
    try {
      // The language is chosen once; the footer pages keep it.
      await page.goto(`${server.url}/interaction/nope?lang=${locale}`);
      for (const { href, link } of PAGES) {
        const anchor = `footer a[href="${href}"]`;
        expect(await page.locator(anchor).innerText()).toBe(m[link]);
        await page.locator('a.skip').focus();
        await tabTo(page, anchor);
        const outline = await page.evaluate(() => {
          const s = getComputedStyle(document.activeElement);
          return `${s.outlineStyle} ${s.outlineWidth}`;
        });
        if (/^none|\b0px$/.test(outline)) problems.push(`${href}: focused footer link has outline ${outline}`);
        await Promise.all([page.waitForURL((u) => u.pathname === href), page.keyboard.press('Enter')]);
        expect(await page.locator('html').getAttribute('lang')).toBe(locale);
        const h1 = (await page.locator('main h1').innerText()).trim();
        expect(await page.title()).toBe(`${h1} · ${m['app.name']}`);
        if (href === '/cookies') expect(h1).toBe(m['cookies.title']);
        else expect(h1).toBe(m[link]);
        const violations = await runAxe(page);
        if (violations.length > 0) problems.push(`${href}: axe violations:\n${formatViolations(violations)}`);
        // On the new page, the first Tab still reaches the skip link.
        await page.keyboard.press('Tab');
        expect(await focusMatches(page, 'a.skip')).toBe(true);
      }
      // The links inside the pages work too: help leads to the privacy notice.
      await page.goto(`${server.url}/help`);
      await page.locator('main a[href="/privacy"]').click();
      await page.waitForURL(/\/privacy$/);
      expect(await page.locator('main h1').innerText()).toBe(m['layout.privacy']);
      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
    expect(problems).toEqual([]);
  }, 60_000);
});
