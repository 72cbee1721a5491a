/**
 * "Remember this browser for 30 days": the browser then stands for the second factor, honestly
 * (amr without otp, acr substantial), only where no more than substantial is needed; never at high,
 * never for the account portal, never for another account, never once forgotten or after a
 * password reset.
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { Agent, hiddenField } from '../support/browserless.js';
import { openPortal, signIn, submitForm, SignInError, type SignInOptions } from '../support/sign-in.js';
import { startSmtp, linkIn, type TestSmtp } from '../support/smtp.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { browserSignIn, cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, tabTo, type Browser, type Page } from '../support/browser.js';
import { ACR, REMEMBERED_BROWSER } from '../../src/assurance/levels.js';
import { LOCALES } from '../../src/i18n/index.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
let smtp: TestSmtp;
beforeAll(async () => {
  smtp = await startSmtp();
});
afterAll(async () => {
  await smtp?.close();
});
const server = kapijaForSuite(() => ({ env: { SMTP_URL: smtp.url } }));

async function service(minAcr?: keyof typeof ACR) {
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], ...(minAcr ? { kapija_min_acr: ACR[minAcr] } : {}) });
  return oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
}

/** Signs in to a service: its ID token's claims, or the error it was sent back. */
async function signInTo(config: oidc.Configuration, agent: Agent, citizen: SignInOptions, extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra });
  const cb = await signIn(agent, url, REDIRECT, citizen);
  if (cb.searchParams.get('error')) return { error: cb.searchParams.get('error')! };
  const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, idTokenExpected: true });
  return { claims: tokens.claims()! };
}

/** A new Kapija session in the same browser (its other cookies kept), as after closing it. */
function newSession(agent: Agent) {
  agent.jar.delete('kapija.session');
  agent.jar.delete('kapija.session.sig');
  agent.jar.delete('kapija.account');
}

/** Signs in with the password alone and expects the second-factor page. */
async function asksSecondFactor(config: oidc.Configuration, agent: Agent, citizen: { username: string; password: string }, extra: Record<string, string> = {}) {
  const err = await signInTo(config, agent, { username: citizen.username, password: citizen.password }, extra).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SignInError);
  expect((err as SignInError).page.body).toMatch(/\/totp"/);
}

test('a remembered browser skips TOTP at substantial, with an honest amr; it never does at high, for a fresh sign-in or for the portal', async () => {
  const citizen = await createTestAccount(server.kapija);
  const substantial = await service('substantial');
  const agent = new Agent('en');
  const first = await signInTo(substantial, agent, { ...citizen, rememberBrowser: true });
  expect(first.claims!.amr).toContain('otp');
  expect(agent.jar.get('kapija.trusted')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  const stored = await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id);
  expect(stored).toHaveLength(1);
  // Only a keyed hash is stored, never the cookie.
  const rows = await server.kapija.db('trusted_browsers').where({ account_id: citizen.account.id });
  expect(JSON.stringify(rows)).not.toContain(agent.jar.get('kapija.trusted')!);

  newSession(agent);
  const remembered = await signInTo(substantial, agent, { username: citizen.username, password: citizen.password });
  expect(remembered.claims!.amr).toEqual(['pwd', REMEMBERED_BROWSER, 'mfa']);
  expect(remembered.claims!.acr).toBe(ACR.substantial);

  // A service that needs high: the remembered browser is below it, the factor is asked (this
  // citizen's TOTP cannot reach high either, so the service is told its requirement is unmet).
  newSession(agent);
  expect(await signInTo(await service('high'), agent, { username: citizen.username, password: citizen.password })).toEqual({ error: 'unmet_authentication_requirements' });
  newSession(agent);
  expect(await signInTo(substantial, agent, { username: citizen.username, password: citizen.password }, { acr_values: ACR.high })).toEqual({ error: 'unmet_authentication_requirements' });
  // A service asking for a fresh sign-in gets both factors.
  newSession(agent);
  await asksSecondFactor(substantial, agent, citizen, { prompt: 'login' });
  newSession(agent);
  await asksSecondFactor(substantial, agent, citizen, { max_age: '0' });
  // The account portal (and its changes) always asks for the second factor.
  newSession(agent);
  const portal = await openPortal(agent, server.url, { username: citizen.username, password: citizen.password }).then(() => undefined, (e: unknown) => e);
  expect(portal).toBeInstanceOf(SignInError);
  expect((portal as SignInError).page.body).toMatch(/\/totp"/);
}, 90_000);

test("another account's remembered cookie does nothing", async () => {
  const owner = await createTestAccount(server.kapija);
  const other = await createTestAccount(server.kapija);
  const substantial = await service('substantial');
  const agent = new Agent('en');
  await signInTo(substantial, agent, { ...owner, rememberBrowser: true });
  const stolen = agent.jar.get('kapija.trusted')!;
  const elsewhere = new Agent('en');
  elsewhere.jar.store([`kapija.trusted=${stolen}; Path=/`]);
  await asksSecondFactor(substantial, elsewhere, other);
  // The owner's cookie still works for the owner in that browser.
  newSession(elsewhere);
  expect((await signInTo(substantial, elsewhere, { username: owner.username, password: owner.password })).claims!.amr).toContain(REMEMBERED_BROWSER);
}, 60_000);

test('a browser forgotten in the portal asks for the second factor again', async () => {
  const citizen = await createTestAccount(server.kapija);
  const substantial = await service('substantial');
  const agent = new Agent('en');
  await signInTo(substantial, agent, { ...citizen, rememberBrowser: true });
  const sessions = await openPortal(agent, server.url, citizen, '/account/sessions');
  expect(sessions.body).toContain('Remembered browsers');
  const id = (await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id))[0]!.id;
  expect(hiddenField(sessions.body, 'id')).toBe(id);
  // Another account's browser cannot be forgotten from here.
  const foreign = await submitForm(agent, sessions, /\/account\/sessions\/browsers\/forget$/, { id: randomBytes(8).toString('hex') });
  expect(foreign.status).toBe(404);
  const forgotten = await submitForm(agent, sessions, /\/account\/sessions\/browsers\/forget$/, { id });
  expect(forgotten.status).toBe(303);
  expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toEqual([]);
  newSession(agent);
  await asksSecondFactor(substantial, agent, citizen);
}, 90_000);

test('a password reset forgets every remembered browser', async () => {
  const citizen = await createTestAccount(server.kapija, { email: `zapamceni.${randomBytes(3).toString('hex')}@example.rs` });
  const substantial = await service('substantial');
  const agent = new Agent('en');
  await signInTo(substantial, agent, { ...citizen, rememberBrowser: true });
  expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toHaveLength(1);
  await server.kapija.registrationAndRecovery.requestPasswordReset(citizen.username, { locale: 'en' });
  const link = linkIn(await smtp.waitFor(citizen.account.email!, (m) => m.text.includes('/recover/reset?token=')), `${server.url}/recover/reset?token=`);
  const password = `nova lozinka ${randomBytes(4).toString('hex')}`;
  expect(await server.kapija.registrationAndRecovery.resetPassword(link.searchParams.get('token')!, password, '127.0.0.1')).toBeDefined();
  expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toEqual([]);
  newSession(agent);
  await asksSecondFactor(substantial, agent, { username: citizen.username, password });
}, 60_000);

describeBrowser('the remember checkbox and the remembered browsers in the portal', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  const clean = async (page: Page, what: string) => {
    const violations = await runAxe(page);
    if (violations.length) throw new Error(`${what}:\n${formatViolations(violations)}`);
    expect(cspViolations(page)).toEqual([]);
  };

  test.each(LOCALES)('in %s: ticked with the keyboard, listed and forgotten, axe-clean', async (locale) => {
    const citizen = await createTestAccount(server.kapija);
    const page = await newPage(browser, { locale });
    try {
      await page.goto(`${server.url}/account/sessions?lang=${locale}`);
      await browserSignIn(page, {
        ...citizen,
        keyboard: true,
        onPage: async (p, step) => {
          if (step !== 'totp') return;
          await clean(p, `second factor (${locale})`);
          await tabTo(p, '#remember-totp');
          await p.keyboard.press('Space');
          expect(await p.isChecked('#remember-totp')).toBe(true);
        },
      });
      expect(new URL(page.url()).pathname).toBe('/account/sessions');
      expect(await page.locator('[data-trusted-id]').count()).toBe(1);
      await clean(page, `sessions with a remembered browser (${locale})`);
      await tabTo(page, '[data-trusted-id]');
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      expect(await page.locator('[data-trusted-id]').count()).toBe(0);
      expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toEqual([]);
    } finally {
      await page.context().close();
    }
  });
});

test('"this wasn\'t me" and a change of second factors forget every remembered browser', async () => {
  const citizen = await createTestAccount(server.kapija, { email: `nisam.${randomBytes(3).toString('hex')}@example.rs` });
  const substantial = await service('substantial');
  const remembered = new Agent('en');
  await signInTo(substantial, remembered, { ...citizen, rememberBrowser: true });
  // A sign-in from another browser is reported, with a "this wasn't me" link.
  await signInTo(substantial, new Agent('en'), citizen);
  const notMe = linkIn(await smtp.waitFor(citizen.account.email!, (m) => m.text.includes('/not-me?token=')), `${server.url}/not-me?token=`);
  expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toHaveLength(1);
  expect(await server.kapija.registrationAndRecovery.secure(notMe.searchParams.get('token')!, '127.0.0.1')).toBeDefined();
  expect(await server.kapija.repos.trustedBrowsers.listForAccount(citizen.account.id)).toEqual([]);

  // New recovery codes are a change of second factors.
  const other = await createTestAccount(server.kapija);
  const agent = new Agent('en');
  await signInTo(substantial, agent, { ...other, rememberBrowser: true });
  expect(await server.kapija.repos.trustedBrowsers.listForAccount(other.account.id)).toHaveLength(1);
  const security = await openPortal(agent, server.url, other, '/account/security');
  const issued = await submitForm(agent, security, /\/account\/security\/recovery-codes$/, {});
  expect(issued.status).toBe(200);
  expect(await server.kapija.repos.trustedBrowsers.listForAccount(other.account.id)).toEqual([]);
}, 90_000);
