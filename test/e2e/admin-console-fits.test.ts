/**
 * The administration console fits a screen: in Chromium at 1280 and 390 px, no console page is
 * wider than the window, even with long audit details; account ids are shortened with a copy
 * button (static/copy.js), and dates are written in the page's language.
 */
import { browserSignIn, cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, type Browser, type Page } from '../support/browser.js';
import { createTestAccount, startKapija, type RunningKapija } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { formatDateTime } from '../../src/http/render.js';
import type { Locale } from '../../src/config.js';

declare const document: { documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };
declare const navigator: { clipboard: { readText(): Promise<string> } };

describeBrowser('the console fits a screen', () => {
  let server: RunningKapija;
  let browser: Browser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([startKapija({ env: { ADMIN_MIN_ACR: 'substantial' } }), launchBrowser()]);
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const overflow = (page: Page) => page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));

  test('1280 and 390 px wide, three languages: no horizontal overflow, ids shortened with a copy button, dates localized', async () => {
    const admin = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const citizen = await createTestAccount(server.kapija);
    const longUri = `https://e-uprava.example.gov.rs/${'prijava/'.repeat(20)}callback?state=${'x'.repeat(120)}`;
    for (let i = 0; i < 3; i += 1) {
      await server.kapija.audit.append({
        chain: 'admin',
        actor: admin.account.id,
        action: 'admin.client.updated',
        subjectAccountId: citizen.account.id,
        clientId: `poreska-uprava-elektronske-prijave-${i}`,
        ip: '2001:db8:85a3:0000:0000:8a2e:0370:7334',
        details: { redirect_uris: [longUri, longUri], token: 'A'.repeat(200), note: 'Промена адресе за повратни позив пореске управе' },
      });
    }

    const page = await newPage(browser, { locale: 'en', context: { permissions: ['clipboard-read', 'clipboard-write'] } });
    try {
      await page.goto(`${server.url}/admin`);
      await browserSignIn(page, admin);
      await page.waitForURL(/\/admin\/clients$/);

      const problems: string[] = [];
      const paths = ['/admin/audit', '/admin/sessions', '/admin/clients', `/admin/citizens?q=${encodeURIComponent(citizen.username)}`, `/admin/citizens/${citizen.account.id}`];
      for (const locale of ['en', 'sr-Latn', 'sr-Cyrl'] as Locale[]) {
        for (const width of [1280, 390]) {
          await page.setViewportSize({ width, height: 900 });
          for (const path of paths) {
            await page.goto(`${server.url}${path}${path.includes('?') ? '&' : '?'}lang=${locale}`);
            const { scrollWidth, innerWidth } = await overflow(page);
            if (scrollWidth > innerWidth) problems.push(`${locale} ${width}px ${path}: document ${scrollWidth}px wide in a ${innerWidth}px window`);
          }
          // The audit page once more, looked at closely.
          await page.goto(`${server.url}/admin/audit?lang=${locale}`);
          const rows = page.locator('table tbody tr');
          expect(await rows.count()).toBeGreaterThanOrEqual(3);
          // What is seen: the table's text without what only screen readers get.
          const shown = await page.locator('table tbody').evaluate((tbody) => {
            const copy = (tbody as unknown as { cloneNode(deep: boolean): { querySelectorAll(s: string): { remove(): void }[]; textContent: string } }).cloneNode(true);
            for (const hidden of copy.querySelectorAll('.visually-hidden')) hidden.remove();
            return copy.textContent;
          });
          // Ids: the first 8 characters, not the whole UUID; the whole one in the title and the copy button.
          expect(shown).not.toContain(citizen.account.id);
          expect(shown).not.toContain(admin.account.id);
          expect(shown).toContain(`${citizen.account.id.slice(0, 8)}…`);
          expect(await page.locator(`code[title="${citizen.account.id}"]`).count()).toBeGreaterThanOrEqual(3);
          const copy = page.locator(`button[data-copy="${citizen.account.id}"]`).first();
          expect(await copy.isVisible()).toBe(true);
          // Dates: the page's language, not ISO 8601.
          const times = page.locator('table tbody time');
          const datetime = (await times.first().getAttribute('datetime'))!;
          expect(datetime).toMatch(/^\d{4}-\d{2}-\d{2}T/);
          const text = await times.first().innerText();
          expect(text).toBe(formatDateTime(datetime, locale));
          expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T/);
          expect(shown).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
          if (width === 390) {
            const violations = await runAxe(page);
            if (violations.length > 0) problems.push(`${locale} audit: axe violations:\n${formatViolations(violations)}`);
          }
        }
      }
      // The dates differ by language: "Dec" in English, Cyrillic letters in Serbian Cyrillic.
      expect(formatDateTime('2026-12-06T10:00:00Z', 'en')).toMatch(/Dec/);
      expect(formatDateTime('2026-12-06T10:00:00Z', 'sr-Cyrl')).toMatch(/[а-я]/);
      expect(formatDateTime('2026-12-06T10:00:00Z', 'sr-Latn')).toMatch(/dec/);

      // The copy button copies the whole id, and says so.
      await page.locator(`button[data-copy="${citizen.account.id}"]`).first().click();
      await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }).document.getElementById('copy-status')?.textContent !== '');
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(citizen.account.id);
      expect(await page.locator('#copy-status').textContent()).toBe('Копирано.');
      expect(cspViolations(page)).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  }, 120_000);
});
