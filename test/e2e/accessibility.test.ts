/**
 * Every page a citizen meets, in Chromium, in all three languages: the language switcher sets
 * html[lang] and the text, axe-core (WCAG 2.1 A/AA) finds nothing, and the pages work under their
 * own Content-Security-Policy. Then a sign-in with the keyboard alone, focus always visible.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Locale } from '../../src/config.js';
import type { Messages } from '../../src/i18n/index.js';
import { en } from '../../src/i18n/messages/en.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';
import {
  browserSignIn,
  cspViolations,
  describeBrowser,
  focusMatches,
  formatViolations,
  launchBrowser,
  newPage,
  runAxe,
  type Browser,
  type Page,
} from '../support/browser.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { PKCE_CHALLENGE } from '../support/pkce.js';

/** The relying party's redirect URI: answers 200 "ok" so the browser has somewhere to land. */
interface Receiver {
  url: string;
  close(): Promise<void>;
}
async function startReceiver(): Promise<Receiver> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let server: RunningKapija;
let receiver: Receiver;
let browser: Browser | undefined;
let endpoints: { authorization_endpoint: string; end_session_endpoint: string };

beforeAll(async () => {
  if (process.env.KAPIJA_TEST_BROWSER !== '1') return;
  [server, receiver, browser] = await Promise.all([startKapija(), startReceiver(), launchBrowser()]);
  endpoints = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as typeof endpoints;
});
afterAll(async () => {
  await browser?.close();
  await receiver?.close();
  await server?.stop();
});

async function newRelyingParty() {
  const redirectUri = `${receiver.url}/cb`;
  const rp = await createTestClient(server.kapija, { redirect_uris: [redirectUri] });
  return { ...rp, redirectUri };
}

function authorizeUrl(clientId: string, redirectUri: string, extra: Record<string, string> = {}): string {
  const url = new URL(endpoints.authorization_endpoint);
  const params = { client_id: clientId, response_type: 'code', scope: 'openid profile email', redirect_uri: redirectUri, state: randomBytes(8).toString('hex'), ...PKCE_CHALLENGE, ...extra };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
}

// Just enough of the DOM for the functions that run in the page (the project has no DOM lib).
interface DomElement {
  tagName: string;
  id: string;
  className: string;
  getAttribute(name: string): string | null;
}
declare const document: { activeElement: DomElement | null };
declare function getComputedStyle(el: DomElement): { outlineStyle: string; outlineWidth: string; outlineColor: string };

interface FocusState {
  tag: string;
  id: string;
  className: string;
  text: string;
  outlineStyle: string;
  outlineWidth: string;
}
async function focused(page: Page): Promise<FocusState | null> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el.tagName === 'BODY') return null;
    const style = getComputedStyle(el);
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      className: el.className,
      text: (el.getAttribute('aria-label') ?? (el as unknown as { textContent: string }).textContent ?? '').trim().slice(0, 60),
      outlineStyle: style.outlineStyle,
      outlineWidth: style.outlineWidth,
    };
  });
}

const CATALOGUES: Record<Locale, Messages> = { 'sr-Cyrl': srCyrl, 'sr-Latn': srLatn, en };

/**
 * Each language is chosen with the switcher from a browser set to another language, so both the
 * link and the remembered choice (cookie) are exercised.
 */
const LOCALE_CASES: { locale: Locale; browserLocale: string; startsIn: Locale }[] = [
  { locale: 'sr-Cyrl', browserLocale: 'en-GB', startsIn: 'en' },
  { locale: 'sr-Latn', browserLocale: 'sr-RS', startsIn: 'sr-Cyrl' },
  { locale: 'en', browserLocale: 'sr-Latn-RS', startsIn: 'sr-Latn' },
];

describeBrowser('accessibility of every page, in every language', () => {
  test('the CSP check itself sees an inline script the policy blocks', async () => {
    const page = await newPage(browser!, { locale: 'en' });
    try {
      await page.goto(`${server.url}/interaction/xyz`);
      expect(cspViolations(page)).toEqual([]);
      await page.evaluate('const s = document.createElement("script"); s.textContent = "window.ran = true"; document.body.appendChild(s)');
      for (let i = 0; i < 40 && cspViolations(page).length === 0; i += 1) await page.waitForTimeout(50);
      expect(cspViolations(page)).toEqual([expect.stringMatching(/^script-src-elem blocked inline on http:\/\/127\.0\.0\.1:\d+\/interaction\/xyz$/)]);
      expect(await page.evaluate('window.ran === true')).toBe(false);
    } finally {
      await page.context().close();
    }
  });

  test('the axe check itself finds violations when a page has them', async () => {
    const page = await newPage(browser!, { locale: 'en' });
    try {
      await page.goto(`${server.url}/interaction/xyz`);
      expect(await runAxe(page)).toEqual([]);
      // Break the page the way a careless view change would: no language, an unlabelled field.
      await page.evaluate('document.documentElement.removeAttribute("lang"); document.querySelector("main").insertAdjacentHTML("beforeend", "<input type=text>")');
      const ids = (await runAxe(page)).map((v) => v.id).sort();
      expect(ids).toEqual(expect.arrayContaining(['html-has-lang', 'label']));
      const text = formatViolations(await runAxe(page));
      expect(text).toMatch(/^html-has-lang \(serious\): /m);
      expect(text).toContain('- ["html"] <html>');
    } finally {
      await page.context().close();
    }
  });

  test.each(LOCALE_CASES)('$locale: html[lang], text in the language, no axe violations, no CSP violations', async ({ locale, browserLocale, startsIn }) => {
    const m = CATALOGUES[locale];
    const page = await newPage(browser!, { locale: browserLocale });
    const problems: string[] = [];

    /** Checks the page the browser is on; `texts` are catalogue messages that must be visible. */
    const check = async (name: string, texts: string[]) => {
      const lang = await page.locator('html').getAttribute('lang');
      if (lang !== locale) problems.push(`${name}: html[lang] is ${lang}, expected ${locale}`);
      const visible = await page.locator('body').innerText();
      for (const text of texts) if (!visible.includes(text)) problems.push(`${name}: text "${text}" not visible`);
      const title = await page.title();
      if (!title.includes(m['app.name'])) problems.push(`${name}: title "${title}" lacks the app name`);
      const violations = await runAxe(page);
      if (violations.length > 0) problems.push(`${name} (${page.url()}): axe violations:\n${formatViolations(violations)}`);
    };

    try {
      const citizen = await createTestAccount(server.kapija);
      const rp = await newRelyingParty();

      // Login page, first in the browser's language, then switched.
      await page.goto(authorizeUrl(rp.clientId, rp.redirectUri));
      expect(await page.locator('html').getAttribute('lang')).toBe(startsIn);
      await page.locator(`nav a[hreflang="${locale}"]`).click();
      await page.waitForURL(/[?&]lang=/);
      expect(await page.locator(`nav a[hreflang="${locale}"]`).getAttribute('aria-current')).toBe('true');
      await check('login', [m['login.intro'], m['login.username'], m['login.password'], m['login.submit'], m['layout.footer']]);
      // Password managers: the fields say what they hold.
      expect(await page.locator('#username').getAttribute('autocomplete')).toBe('username');
      expect(await page.locator('#password').getAttribute('autocomplete')).toBe('current-password');
      expect(await page.locator('#password').getAttribute('type')).toBe('password');

      // Login page with an error.
      await page.locator('#username').fill(citizen.username);
      await page.locator('#password').fill(`${citizen.password}-wrong`);
      await Promise.all([page.waitForEvent('framenavigated'), page.locator('form[action$="/login"] button[type=submit]').click()]);
      await page.waitForLoadState('load');
      await check('login with an error', [m['error.login.invalid_credentials'], m['login.submit']]);
      expect(await page.locator('#password').getAttribute('aria-invalid')).toBe('true');
      expect(await page.locator('#password').getAttribute('aria-describedby')).toBe('form-error');

      // Second factor and consent, checked as the sign-in reaches them.
      const seen: string[] = [];
      const end = await browserSignIn(page, {
        ...citizen,
        redirectUri: rp.redirectUri,
        onPage: async (_page, step) => {
          seen.push(step);
          if (step === 'totp') await check('second factor', [m['mfa.heading'], m['mfa.totp.label'], m['mfa.totp.submit']]);
          if (step === 'confirm') await check('consent', [m['consent.intro'].replace('{client}', (await rpName(rp.clientId))!), m['consent.allow'], m['consent.deny']]);
        },
      });
      expect(seen).toEqual(['login', 'totp', 'confirm']);
      expect(`${end.origin}${end.pathname}`).toBe(rp.redirectUri);
      expect(end.searchParams.get('code')).toBeTruthy();

      // Error pages: an interaction that does not exist, and an unknown client.
      await page.goto(`${server.url}/interaction/xyz`);
      await check('error: unknown interaction', [m['error.heading'], m['error.interaction.expired']]);
      const badClient = await page.goto(authorizeUrl('no-such-client', rp.redirectUri));
      expect(badClient?.status()).toBe(400);
      await check('error: unknown client', [m['error.heading'], m['error.back']]);

      // The cookie page, linked from every footer.
      await page.locator('footer a[href="/cookies"]').click();
      await page.waitForURL(/\/cookies$/);
      await check('cookies', [m['cookies.title'], m['cookies.device.purpose']]);

      // Logout confirmation and done.
      await page.goto(endpoints.end_session_endpoint);
      await check('logout', [m['logout.heading'], m['logout.intro'], m['logout.yes'], m['logout.no']]);
      await Promise.all([page.waitForEvent('framenavigated'), page.locator('button[name=logout][value=yes]').click()]);
      await page.waitForLoadState('load');
      await check('logout done', [m['logout.done.heading']]);

      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
    if (problems.length > 0) console.log(`[${locale}] accessibility problems:\n${problems.join('\n')}`);
    expect(problems).toEqual([]);
  });
});

async function rpName(clientId: string): Promise<string | undefined> {
  const client = await server.kapija.provider.Client.find(clientId);
  return client?.clientName;
}

describeBrowser('keyboard only', () => {
  test('a citizen signs in and consents with Tab, Shift+Tab, typing, Enter and Space; focus is always visible; the skip link comes first', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await newRelyingParty();
    const page = await newPage(browser!, { locale: 'sr-RS' });
    const focusLog: string[] = [];
    const invisible: string[] = [];
    const assertFocusVisible = async (p: Page) => {
      const f = await focused(p);
      if (!f) {
        invisible.push(`${p.url()}: Tab left nothing focused`);
        return;
      }
      const label = `${f.tag}${f.id ? `#${f.id}` : ''}${f.className ? `.${f.className.split(' ').join('.')}` : ''} "${f.text}"`;
      focusLog.push(label);
      if (f.outlineStyle === 'none' || f.outlineWidth === '0px') invisible.push(`${new URL(p.url()).pathname}: ${label} has outline ${f.outlineStyle} ${f.outlineWidth}`);
    };
    /** On a fresh page: the first Tab reaches the skip link, and Enter on it moves focus to main. */
    const skipLinkFirst = async (name: string) => {
      await page.keyboard.press('Tab');
      await assertFocusVisible(page);
      expect({ page: name, skipFocused: await focusMatches(page, 'a.skip[href="#main"]') }).toEqual({ page: name, skipFocused: true });
      await page.keyboard.press('Enter');
      expect({ page: name, mainFocused: await focusMatches(page, 'main#main') }).toEqual({ page: name, mainFocused: true });
    };

    try {
      await page.goto(authorizeUrl(rp.clientId, rp.redirectUri));
      await skipLinkFirst('login');
      // From main, the next stop is the first field of the form.
      await page.keyboard.press('Tab');
      await assertFocusVisible(page);
      expect(await focusMatches(page, '#username')).toBe(true);
      // Shift+Tab goes back out of main: to the last language link, with visible focus.
      await page.keyboard.press('Shift+Tab');
      await assertFocusVisible(page);
      expect(await focusMatches(page, 'nav a[hreflang]')).toBe(true);

      const steps: string[] = [];
      const end = await browserSignIn(page, {
        ...citizen,
        redirectUri: rp.redirectUri,
        keyboard: true,
        onFocus: assertFocusVisible,
        onPage: async (_p, step) => {
          steps.push(step);
          if (step !== 'login') await skipLinkFirst(step);
        },
      });
      expect(steps).toEqual(['login', 'totp', 'confirm']);
      expect(`${end.origin}${end.pathname}`).toBe(rp.redirectUri);
      expect(end.searchParams.get('code')).toMatch(/^[\w-]{20,}$/);
      // Focus did reach the controls it used, each with a visible outline.
      expect(focusLog.some((l) => l.startsWith('input#password'))).toBe(true);
      expect(focusLog.some((l) => l.startsWith('input#code'))).toBe(true);
      expect(focusLog.some((l) => l.startsWith('button.primary'))).toBe(true);
      expect(invisible).toEqual([]);
      expect(cspViolations(page)).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});
