/**
 * What a citizen meets in the first hour, in each of the three languages: the consent page a
 * service asks for again (prompt=consent, as for offline_access on every sign-in) lists what the
 * service receives with what was already allowed marked, and its ledger entry is not empty; a
 * sign-in started in a language keeps it through "Create an account" and every redirect; a service
 * registered only with a Cyrillic name appears transliterated on Latin and English pages; the
 * ledger's releases name only the claims that had a value. The consent page stays axe-clean.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Locale } from '../../src/config.js';
import { translator } from '../../src/i18n/index.js';
import { ledgerChain } from '../../src/account/ledger.js';
import { Agent, checkedValues, hiddenField, type Page } from '../support/browserless.js';
import { signIn, submitForm } from '../support/sign-in.js';
import { nextTotpCode } from '../support/totp.js';
import { startSmtp, type TestSmtp } from '../support/smtp.js';
import { describeBrowser, formatViolations, launchBrowser, newPage, runAxe, browserSignIn, type Browser } from '../support/browser.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';

const LOCALES: Locale[] = ['sr-Cyrl', 'sr-Latn', 'en'];
const REDIRECT = 'http://127.0.0.1:9/cb';
const CYRILLIC_NAME = 'Пореска управа';
const nameIn = (l: Locale) => (l === 'sr-Cyrl' ? CYRILLIC_NAME : 'Poreska uprava');
/** A browser language other than the one the sign-in was asked in. */
const otherBrowserLanguage = (l: Locale) => (l === 'en' ? 'sr-Latn' : 'en');
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
const htmlLang = (html: string) => /<html lang="([^"]+)"/.exec(html)?.[1];
const unescape = (s: string) => s.replace(/&amp;/g, '&');
/** The href of the link whose text is `text`. */
const linkTo = (html: string, text: string) => {
  for (const m of html.matchAll(/<a href="([^"]+)"[^>]*>([^<]*)<\/a>/g)) if (m[2]!.trim() === text) return unescape(m[1]!);
  return undefined;
};

let smtp: TestSmtp;
beforeAll(async () => {
  smtp = await startSmtp();
});
const server = kapijaForSuite(() => ({ env: { SMTP_URL: smtp.url, MAIL_FROM: 'Kapija <no-reply@kapija.test>' } }));
afterAll(async () => {
  await smtp?.close();
});

/** A service registered only with a Cyrillic name. */
const cyrillicService = (redirect = REDIRECT) =>
  createTestClient(server.kapija, { client_name: CYRILLIC_NAME, redirect_uris: [redirect], scope: 'openid profile email offline_access' });

async function authorizationUrl(rp: { clientId: string; clientSecret?: string | undefined }, params: Record<string, string>) {
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
  });
  return { config, verifier, url };
}

async function pageAt(agent: Agent, step: Page | Promise<Page>): Promise<Page> {
  const followed = await agent.follow(await step, isCallback);
  if (followed instanceof URL) throw new Error(`unexpected redirect to ${followed.href}`);
  return followed;
}

describe.each(LOCALES)('in %s', (locale) => {
  const t = translator(locale);

  test('a repeated consent (prompt=consent) lists what the service receives, marks what was already allowed, and its ledger entry is not empty', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await cyrillicService();
    const agent = new Agent(otherBrowserLanguage(locale));
    const params = { scope: 'openid profile email offline_access', prompt: 'consent', ui_locales: locale };
    const first = await authorizationUrl(rp, params);
    await signIn(agent, first.url, REDIRECT, citizen);

    // Signed in already: the service asks for consent again.
    const again = await authorizationUrl(rp, params);
    const page = await pageAt(agent, agent.request(again.url));
    expect(page.body).toContain('/confirm"');
    expect(htmlLang(page.body)).toBe(locale);
    expect(page.body).toContain(t('consent.heading', { client: nameIn(locale) }));
    expect(page.body).toContain(t('consent.intro', { client: nameIn(locale) }));
    for (const claim of ['email', 'given_name', 'family_name'] as const) {
      expect(page.body).toContain(`${t(`consent.claim.${claim}`)} <span class="hint">(${t('consent.already')})</span>`);
    }
    expect(page.body).toContain(`${t('consent.claim.sub')}</span> <span class="hint">(${t('consent.required')}; ${t('consent.already')})`);
    expect(page.body).toContain(`${t('consent.scope.offline_access')} <span class="hint">(${t('consent.already')})</span>`);
    expect(checkedValues(page.body, 'claims')).toEqual(expect.arrayContaining(['email', 'given_name', 'family_name', 'preferred_username']));
    if (locale !== 'sr-Cyrl') expect(page.body).not.toContain(CYRILLIC_NAME);

    const done = await agent.follow(await submitForm(agent, page, /\/confirm$/, {}), isCallback);
    expect(done).toBeInstanceOf(URL);
    const tokens = await oidc.authorizationCodeGrant(again.config, done as URL, { pkceCodeVerifier: again.verifier, expectedState: oidc.skipStateCheck });
    expect(tokens.refresh_token).toBeTruthy();

    const ledger = await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) });
    const consents = ledger.filter((e) => e.action === 'ledger.consent_given');
    expect(consents).toHaveLength(2);
    for (const entry of consents) {
      expect(entry.details.scopes).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'offline_access']));
      expect(entry.details.claims).toEqual(expect.arrayContaining(['sub', 'email', 'given_name', 'family_name']));
    }
  });

  test('a sign-in started in this language keeps it through "Create an account" and every redirect; the Cyrillic service name is transliterated on Latin pages', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await cyrillicService();
    const agent = new Agent(otherBrowserLanguage(locale));
    const { url } = await authorizationUrl(rp, { scope: 'openid profile', ui_locales: locale });
    const login = await pageAt(agent, agent.request(url));
    expect(htmlLang(login.body)).toBe(locale);
    expect(login.body).toContain(t('login.heading', { client: nameIn(locale) }));
    if (locale !== 'sr-Cyrl') expect(login.body).not.toContain(CYRILLIC_NAME);

    // "Create an account", and back to the sign-in from the registration page.
    const registerHref = linkTo(login.body, t('login.register'));
    expect(registerHref).toBeDefined();
    const register = await pageAt(agent, agent.request(new URL(registerHref!, server.url)));
    expect(register.status).toBe(200);
    expect(htmlLang(register.body)).toBe(locale);
    expect(register.body).toContain(t('register.heading'));
    const username = `new${randomBytes(4).toString('hex')}`;
    const password = `Kapija-${randomBytes(9).toString('base64url')}`;
    const sent = await pageAt(agent, submitForm(agent, register, /^\/register$/, {
      return: hiddenField(register.body, 'return') ?? '',
      username,
      email: `${username}@example.rs`,
      given_name: 'Мила',
      family_name: 'Јовић',
      password,
      password_confirm: password,
    }));
    expect(sent.status).toBe(200);
    expect(htmlLang(sent.body)).toBe(locale);
    expect(sent.body).toContain(t('register.sent.heading'));
    const back = linkTo(sent.body, t('selfservice.back_to_signin'));
    expect(back).toBeDefined();
    const loginAgain = await pageAt(agent, agent.request(new URL(back!, server.url)));
    expect(htmlLang(loginAgain.body)).toBe(locale);
    expect(loginAgain.body).toContain(t('login.heading', { client: nameIn(locale) }));

    // The password step redirects to the second factor, which redirects to consent: same language.
    const totp = await pageAt(agent, submitForm(agent, loginAgain, /\/login$/, { username: citizen.username, password: citizen.password }));
    expect(totp.body).toContain('/totp"');
    expect(htmlLang(totp.body)).toBe(locale);
    const consent = await pageAt(agent, submitForm(agent, totp, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) }));
    expect(consent.body).toContain('/confirm"');
    expect(htmlLang(consent.body)).toBe(locale);
    expect(consent.body).toContain(t('consent.heading', { client: nameIn(locale) }));
  });

  test('a language chosen on the sign-in page is kept through the redirects, over the one the service asked for', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await cyrillicService();
    const agent = new Agent('en');
    const asked = LOCALES.find((l) => l !== locale)!;
    const { url } = await authorizationUrl(rp, { scope: 'openid profile', ui_locales: asked });
    const first = await pageAt(agent, agent.request(url));
    expect(htmlLang(first.body)).toBe(asked);
    const switchHref = [...first.body.matchAll(/<a href="([^"]+)" lang="([^"]+)"/g)].find((m) => m[2] === locale)?.[1];
    const login = await pageAt(agent, agent.request(new URL(unescape(switchHref!), server.url)));
    expect(htmlLang(login.body)).toBe(locale);
    // As a browser does, the forms send their hidden fields, the page's language among them.
    expect(hiddenField(login.body, 'lang')).toBe(locale);
    const totp = await pageAt(agent, submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password, lang: locale }));
    expect(htmlLang(totp.body)).toBe(locale);
    const wrong = await submitForm(agent, totp, /\/totp$/, { code: '000000', lang: hiddenField(totp.body, 'lang')! });
    expect(wrong.status).toBe(401);
    expect(htmlLang(wrong.body)).toBe(locale);
    const consent = await pageAt(agent, submitForm(agent, wrong, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!), lang: hiddenField(wrong.body, 'lang')! }));
    expect(consent.body).toContain('/confirm"');
    expect(htmlLang(consent.body)).toBe(locale);
  });
});

test('a claim refused before stays refused, unshown, when the service asks for consent again', async () => {
  const citizen = await createTestAccount(server.kapija);
  const rp = await cyrillicService();
  const agent = new Agent('en');
  const params = { scope: 'openid profile email offline_access', prompt: 'consent' };
  const first = await authorizationUrl(rp, params);
  await signIn(agent, first.url, REDIRECT, { ...citizen, claims: ['preferred_username', 'name', 'given_name', 'family_name', 'locale', 'updated_at', 'email', 'email_verified'] });
  const again = await authorizationUrl(rp, params);
  const page = await pageAt(agent, agent.request(again.url));
  expect(page.body).toContain('/confirm"');
  expect(page.body).toContain('value="email"');
  expect(page.body).not.toContain('value="birthdate"');
  const cb = await agent.follow(await submitForm(agent, page, /\/confirm$/, {}), isCallback);
  const tokens = await oidc.authorizationCodeGrant(again.config, cb as URL, { pkceCodeVerifier: again.verifier, expectedState: oidc.skipStateCheck });
  const info = await oidc.fetchUserInfo(again.config, tokens.access_token, tokens.claims()!.sub);
  expect(info.email).toBeTruthy();
  expect(info.birthdate).toBeUndefined();
  const ledger = await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) });
  const latest = ledger.find((e) => e.action === 'ledger.consent_given');
  expect(latest?.details.claims).not.toContain('birthdate');
  expect(latest?.details.claims).toContain('email');
});

test('the ledger records as released only the claims that had a value', async () => {
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  const username = `nobirth${randomBytes(3).toString('hex')}`;
  const account = await server.kapija.accounts.create(
    { username, email: `${username}@example.rs`, emailVerified: true, givenName: 'Ана', familyName: 'Илић', birthdate: null, locale: null, jmbg: null },
    await server.kapija.passwords.hash(password),
  );
  const { generateSecret } = await import('otplib/functional');
  const totpSecret = generateSecret({ length: 20 });
  await server.kapija.totp.importSeed(account.id, totpSecret, 'Test app');
  const rp = await cyrillicService();
  const { config, verifier, url } = await authorizationUrl(rp, { scope: 'openid profile email' });
  const cb = await signIn(new Agent('en'), url, REDIRECT, { username, password, totpSecret });
  const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier });
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  expect(info.birthdate).toBeUndefined();
  expect(info.locale).toBeUndefined();

  const ledger = await server.kapija.audit.list({ chain: ledgerChain(account.id) });
  const released = ledger.filter((e) => e.action === 'ledger.data_released');
  const userinfo = released.find((e) => e.details.channel === 'userinfo');
  expect(userinfo?.details.claims).toEqual(['email', 'email_verified', 'family_name', 'given_name', 'name', 'preferred_username', 'sub', 'updated_at']);
  for (const entry of released) {
    expect(entry.details.claims).not.toContain('birthdate');
    expect(entry.details.claims).not.toContain('locale');
  }
});

/** The relying party's redirect URI for the browser: answers 200 so the browser lands somewhere. */
async function startReceiver() {
  const receiver = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
    close: async () => {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    },
  };
}

describeBrowser('in Chromium', () => {
  let browser: Browser;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    [browser, receiver] = await Promise.all([launchBrowser(), startReceiver()]);
  });
  afterAll(async () => {
    await browser?.close();
    await receiver?.close();
  });

  test.each(LOCALES)('the repeated consent page, with its "already allowed" marks, is axe-clean in %s', async (locale) => {
    const citizen = await createTestAccount(server.kapija);
    const redirectUri = `${receiver.url}/cb`;
    const rp = await createTestClient(server.kapija, { client_name: CYRILLIC_NAME, redirect_uris: [redirectUri], scope: 'openid profile email offline_access' });
    const page = await newPage(browser, { locale: otherBrowserLanguage(locale) });
    try {
      const authorize = () => {
        const u = new URL(`${server.url}/auth`);
        u.search = new URLSearchParams({
          client_id: rp.clientId, response_type: 'code', redirect_uri: redirectUri, scope: 'openid profile email offline_access', prompt: 'consent', ui_locales: locale,
          state: randomBytes(4).toString('hex'), code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
        }).toString();
        return u.href;
      };
      await page.goto(authorize());
      await browserSignIn(page, { ...citizen, redirectUri });
      await page.goto(authorize());
      expect(await page.locator('form[action$="/confirm"]').count()).toBe(1);
      expect(await page.getAttribute('html', 'lang')).toBe(locale);
      expect(await page.locator('.claim .hint', { hasText: translator(locale)('consent.already') }).count()).toBeGreaterThan(2);
      const violations = await runAxe(page);
      expect(formatViolations(violations)).toBe('');
    } finally {
      await page.context().close();
    }
  });
});
