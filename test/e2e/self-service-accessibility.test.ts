/**
 * The registration, recovery, verification and "this wasn't me" pages in Chromium, in all three
 * languages: html[lang] follows the choice, axe-core (WCAG 2.1 A/AA) finds nothing, including with
 * field errors shown, and the pages raise no Content-Security-Policy violation. The links come from
 * mails received by a real SMTP server.
 */
import { randomBytes } from 'node:crypto';
import type { Locale } from '../../src/config.js';
import { cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, type Browser, type Page } from '../support/browser.js';
import { startSmtp, linkIn, type TestSmtp } from '../support/smtp.js';
import { createTestAccount, startKapija, type RunningKapija } from '../support/kapija.js';

const LOCALES: Locale[] = ['sr-Cyrl', 'sr-Latn', 'en'];
let smtp: TestSmtp;
let server: RunningKapija;
let browser: Browser | undefined;
const links: Record<'verify' | 'reset' | 'notMe', string> = { verify: '', reset: '', notMe: '' };

beforeAll(async () => {
  if (process.env.KAPIJA_TEST_BROWSER !== '1') return;
  smtp = await startSmtp();
  [server, browser] = await Promise.all([startKapija({ env: { SMTP_URL: smtp.url } }), launchBrowser()]);
  const k = server.kapija;
  // Links as citizens receive them (opening them does not use them up).
  const email = `a11y.${randomBytes(3).toString('hex')}@example.rs`;
  await k.registrationAndRecovery.register({ username: `a11y${randomBytes(3).toString('hex')}`, email, givenName: 'A', familyName: 'B', password: 'dugacka fraza za test' }, { locale: 'en' });
  links.verify = linkIn(await smtp.waitFor(email), `${server.url}/verify-email?token=`).href;
  const citizen = await createTestAccount(k, { email: `a11y.reset.${randomBytes(3).toString('hex')}@example.rs` });
  await k.registrationAndRecovery.requestPasswordReset(citizen.username, { locale: 'en' });
  links.reset = linkIn(await smtp.waitFor(citizen.account.email!), `${server.url}/recover/reset?token=`).href;
  await k.events.emit('account.password_changed', { accountId: citizen.account.id, via: 'portal', ip: '127.0.0.1' });
  links.notMe = linkIn(await smtp.waitFor(citizen.account.email!, (m) => m.text.includes('/not-me?')), `${server.url}/not-me?token=`).href;
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await smtp?.close();
});

const withLang = (href: string, locale: Locale) => {
  const u = new URL(href, server.url);
  u.searchParams.set('lang', locale);
  return u.href;
};

async function expectClean(page: Page, locale: Locale, what: string) {
  expect(await page.getAttribute('html', 'lang')).toBe(locale);
  const violations = await runAxe(page);
  if (violations.length) throw new Error(`${what} (${locale}):\n${formatViolations(violations)}`);
  expect(cspViolations(page)).toEqual([]);
}

describeBrowser('self-service pages', () => {
  test.each(LOCALES)('in %s: axe-clean, with errors tied to their fields, operable by keyboard', async (locale) => {
    const page = await newPage(browser!, { locale });
    try {
      for (const [what, href] of [
        ['register', '/register'],
        ['recover', '/recover'],
        ['verify', links.verify],
        ['reset', links.reset],
        ['not-me', links.notMe],
      ] as const) {
        const res = await page.goto(withLang(href, locale));
        expect(res?.status()).toBe(200);
        await expectClean(page, locale, what);
      }

      // Registration with errors: a summary linking to each field, each field described by its error.
      await page.goto(withLang('/register', locale));
      await page.fill('#username', 'ab');
      await page.fill('#email', 'not-an-address');
      await page.fill('#password', 'password1');
      await page.fill('#password_confirm', 'password1');
      await Promise.all([page.waitForNavigation(), page.press('#password_confirm', 'Enter')]);
      await page.waitForSelector('#form-errors');
      await expectClean(page, locale, 'register with errors');
      expect(await page.getAttribute('#password', 'aria-describedby')).toBe('password-hint password-error');
      expect(await page.getAttribute('#email', 'aria-invalid')).toBe('true');
      expect(await page.locator('#form-errors a[href="#given_name"]').count()).toBe(1);
      // What was typed is kept (not the passwords).
      expect(await page.inputValue('#email')).toBe('not-an-address');
      expect(await page.inputValue('#password')).toBe('');

      // Recovery: the form works with the keyboard alone and answers on a clean page.
      await page.goto(withLang('/recover', locale));
      await page.focus('#identifier');
      await page.keyboard.type(`nobody.${locale}`);
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      expect(await page.locator('form[action="/recover"]').count()).toBe(0);
      expect(await page.locator('h1').count()).toBe(1);
      await expectClean(page, locale, 'recover sent');
    } finally {
      await page.context().close();
    }
  });

  test('pages need no JavaScript', async () => {
    const page = await newPage(browser!, { locale: 'en', context: { javaScriptEnabled: false } });
    try {
      await page.goto(`${server.url}/recover?lang=en`);
      await page.fill('#identifier', 'someone');
      await page.click('button[type=submit]');
      await page.waitForLoadState();
      expect(await page.textContent('main')).toContain('If an account matches what you entered');
    } finally {
      await page.context().close();
    }
  });
});
