/**
 * Screenshots for the documentation: the pages a new operator and a citizen meet first, in Serbian
 * Cyrillic (the default language), each 1280 and 390 px wide and full page, written as PNG files to
 * docs/screenshots/. Starts its own Kapija on a temporary SQLite store, seeds a citizen, an
 * administrator and a service, drives Debian's Chromium, and stops everything at the end.
 *
 *   npm run screenshots              # CHROMIUM_PATH overrides /usr/bin/chromium
 *
 * Every page is also checked: it answers 200, is in Serbian Cyrillic (`<html lang="sr-Cyrl">`), is
 * no wider than the window, and the first element Tab reaches has a visible focus outline. Any
 * failure is printed and the script exits 1.
 */
import './screenshots-globals.js';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserSignIn, launchBrowser, newPage, signInStep, type Browser, type Page } from '../test/support/browser.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../test/support/kapija.js';
import { PKCE_CHALLENGE } from '../test/support/pkce.js';
import { createRoleRepository } from '../src/store/roles.js';

const OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'screenshots');
const WIDTHS = [1280, 390] as const;
const LOCALE = 'sr-Cyrl';

declare const document: { documentElement: { scrollWidth: number }; activeElement: unknown };
declare const window: { innerWidth: number };
declare function getComputedStyle(el: unknown): { outlineStyle: string; outlineWidth: string; boxShadow: string };

const out = (line: string) => process.stdout.write(`${line}\n`);
const problems: string[] = [];

/** Checks the page the browser is on, then writes `<name>-<width>.png` at both widths. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    await page.evaluate('document.fonts.ready');
    const lang = await page.locator('html').getAttribute('lang');
    if (lang !== LOCALE) problems.push(`${name} ${width}px: <html lang="${lang}">, expected ${LOCALE}`);
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
    if (scrollWidth > innerWidth) problems.push(`${name} ${width}px: the page is ${scrollWidth}px wide in a ${innerWidth}px window`);
    const file = path.join(OUT, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out(`${path.relative(process.cwd(), file)}  ${fs.statSync(file).size} bytes`);
  }
  // Focus: the first element Tab reaches (the skip link) shows an outline. Checked after the
  // screenshots, which show the page as it first appears.
  await page.keyboard.press('Tab');
  const focus = await page.evaluate(() => {
    const el = document.activeElement;
    const s = getComputedStyle(el);
    return { outline: `${s.outlineStyle} ${s.outlineWidth}`, shadow: s.boxShadow, tag: String((el as { tagName?: string }).tagName) };
  });
  if (/^none|\b0px$/.test(focus.outline) && focus.shadow === 'none') problems.push(`${name}: the focused ${focus.tag} has no visible outline`);
}

/** Opens `url` and insists on a 200. */
async function open(page: Page, url: string): Promise<void> {
  const res = await page.goto(url);
  if (!res || res.status() !== 200) throw new Error(`${url} answered ${res?.status() ?? 'nothing'}`);
}

async function run(server: RunningKapija, service: string, browser: Browser): Promise<void> {
  const { kapija, url } = server;
  const REDIRECT = `${service}/callback`;
  const citizen = await createTestAccount(kapija, { username: 'ana.jovanovic', givenName: 'Ана', familyName: 'Јовановић', email: 'ana@example.rs' });
  const admin = await createTestAccount(kapija, { username: 'operater', givenName: 'Марко', familyName: 'Марковић', email: 'operater@example.rs' });
  await createRoleRepository(kapija.db).grant(admin.account.id, 'admin', 'screenshots');
  const rp = await createTestClient(kapija, {
    client_id: 'porez',
    client_name: 'Пореска управа',
    'client_name#sr-Latn': 'Poreska uprava',
    'client_name#en': 'Tax Administration',
    redirect_uris: [REDIRECT],
    scope: 'openid profile email offline_access',
  });

  // A citizen's browser: Serbian, as most citizens' are.
  const page = await newPage(browser, { locale: 'sr' });
  try {
    await open(page, `${url}/`);
    await shoot(page, 'start');

    for (const footer of ['privacy', 'accessibility', 'cookies', 'help']) {
      await open(page, `${url}/${footer}`);
      await shoot(page, footer);
    }

    // The first visit: sign in and consent, so that the second one is a repeat.
    const authorize = (extra: Record<string, string> = {}) =>
      `${url}/auth?${new URLSearchParams({ client_id: rp.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid profile email offline_access', state: 'screenshots', ...PKCE_CHALLENGE, ...extra })}`;
    await open(page, authorize({ prompt: 'consent' }));
    const back = await browserSignIn(page, { ...citizen, redirectUri: REDIRECT });
    if (!back.href.startsWith(REDIRECT)) throw new Error(`the first sign-in ended on ${back.href}, not the service`);

    // The repeat: the service asks for consent again for a citizen who already gave it.
    await open(page, authorize({ prompt: 'consent' }));
    const step = await signInStep(page);
    if (step !== 'confirm') throw new Error(`the repeat visit shows ${step ?? 'no known'} step at ${page.url()}, not the consent page`);
    await shoot(page, 'consent-repeat');
  } finally {
    await page.context().close();
  }

  // The administrator at the console, signed in at the console's level (substantial: password and TOTP).
  await kapija.audit.append({
    chain: 'admin',
    actor: admin.account.id,
    action: 'admin.client.updated',
    clientId: rp.clientId,
    details: { redirect_uris: [REDIRECT] },
  });
  const console = await newPage(browser, { locale: 'sr' });
  try {
    await open(console, `${url}/admin`);
    await browserSignIn(console, admin);
    await console.waitForURL(/\/admin(\/|$)/);
    await open(console, `${url}/admin/audit`);
    await shoot(console, 'admin-audit');
  } finally {
    await console.context().close();
  }
}

async function main(): Promise<number> {
  fs.mkdirSync(OUT, { recursive: true });
  let server: RunningKapija | undefined;
  let browser: Browser | undefined;
  // The service's redirect URI: a page on 127.0.0.1 that only says it got the answer.
  const service = http.createServer((_req, res) => res.end('ok'));
  try {
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    [server, browser] = await Promise.all([startKapija({ env: { ADMIN_MIN_ACR: 'substantial' } }), launchBrowser()]);
    await run(server, `http://127.0.0.1:${(service.address() as AddressInfo).port}`, browser);
  } catch (err) {
    problems.push(`failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await browser?.close().catch((err: Error) => problems.push(`closing Chromium: ${err.message}`));
    await server?.stop().catch((err: Error) => problems.push(`stopping Kapija: ${err.message}`));
    service.closeAllConnections();
    await new Promise<void>((resolve) => service.close(() => resolve()));
  }
  for (const p of problems) process.stderr.write(`screenshots: ${p}\n`);
  return problems.length === 0 ? 0 : 1;
}

process.exitCode = await main();
