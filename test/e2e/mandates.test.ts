/**
 * Mandates in Chromium: a principal gives a mandate on /account/mandates (keyboard only, axe-clean,
 * in all three languages on its page), the representative signs in to a service that accepts
 * representation and chooses the principal on the representation page (keyboard only, axe-clean),
 * the service's openid-client sees the principal's `sub` and the representative's `act.sub`; the
 * principal withdraws the mandate and the service's token stops working at once; both ledgers show
 * the grant, the use and the withdrawal.
 */
import * as oidc from 'openid-client';
import type { Locale } from '../../src/config.js';
import type { Messages } from '../../src/i18n/index.js';
import { en } from '../../src/i18n/messages/en.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';
import { ledgerChain } from '../../src/account/ledger.js';
import { VIRTUAL_AUTHENTICATOR_AAGUID, addVirtualAuthenticator, browserSignIn, cspViolations, describeBrowser, formatViolations, newPage, runAxe, tabTo, type Page } from '../support/browser.js';
import { browserSuiteWithService } from '../support/browser-suite.js';
import { createTestAccount, createTestClient, kapijaForSuite, type RunningKapija } from '../support/kapija.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';

const CATALOGUES: Record<Locale, Messages> = { 'sr-Cyrl': srCyrl, 'sr-Latn': srLatn, en };
const BROWSER_LOCALE: Record<Locale, string> = { en: 'en-GB', 'sr-Latn': 'sr-Latn-RS', 'sr-Cyrl': 'sr-RS' };

const suite = browserSuiteWithService();

async function axeClean(page: Page) {
  expect(formatViolations(await runAxe(page))).toBe('');
  expect(cspViolations(page)).toEqual([]);
}

const mandateActions = async (accountId: string) =>
  (await suite.server.kapija.audit.list({ chain: ledgerChain(accountId), action: 'ledger.' }))
    .map((e) => e.action)
    .filter((a) => a.startsWith('ledger.mandate_'))
    .reverse();

describeBrowser('mandates', () => {
  test.each(['sr-Cyrl', 'sr-Latn', 'en'] as Locale[])('(%s) a principal gives a mandate with the keyboard; the representative acts for them at an opted-in service; withdrawing ends it', async (locale) => {
    const m = CATALOGUES[locale];
    const principal = await createTestAccount(suite.server.kapija, { givenName: 'Vera', familyName: 'Stojanović' });
    const representative = await createTestAccount(suite.server.kapija);
    const rp = await createTestClient(suite.server.kapija, { redirect_uris: [suite.redirectUri], scope: 'openid profile', kapija_accepts_representation: true, client_name: 'Zdravstvo' });
    const other = await createTestClient(suite.server.kapija, { redirect_uris: [suite.redirectUri], scope: 'openid profile' });

    // The principal gives the mandate on /account/mandates, from the keyboard.
    const p = await newPage(suite.browser, { locale: BROWSER_LOCALE[locale] });
    try {
      await p.goto(`${suite.server.url}/account/mandates?lang=${locale}`);
      await browserSignIn(p, { ...principal });
      await p.waitForURL(/\/account\/mandates/);
      expect(await p.locator('h1').innerText()).toBe(m['account.mandates.title']);
      await axeClean(p);
      await tabTo(p, '#representative', undefined, 60);
      await p.keyboard.type(representative.username);
      await tabTo(p, '#service');
      await p.locator('#service').selectOption(rp.clientId);
      await tabTo(p, '#purpose-health');
      await p.keyboard.press('Space');
      await tabTo(p, 'form[action="/account/mandates"] button[type=submit]');
      await Promise.all([p.waitForURL(/done=granted/), p.keyboard.press('Enter')]);
      expect(await p.locator('[role=status]').innerText()).toBe(m['account.mandates.granted']);
      await axeClean(p);
    } finally {
      await p.context().close();
    }
    const [mandate] = await suite.server.kapija.mandates.listForPrincipal(principal.account.id);
    expect(mandate).toMatchObject({ representativeId: representative.account.id, services: [rp.clientId], purposes: ['health'] });

    // The representative signs in to the opted-in service and chooses the principal, from the keyboard.
    const config = await oidc.discovery(new URL(suite.server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const auth = oidc.buildAuthorizationUrl(config, { redirect_uri: suite.redirectUri, scope: 'openid profile', ui_locales: locale, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const r = await newPage(suite.browser, { locale: BROWSER_LOCALE[locale] });
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      await r.goto(auth.href);
      await browserSignIn(r, { ...representative, redirectUri: suite.redirectUri });
      expect(await r.locator('h1').innerText()).toBe(m['represent.heading']);
      expect(await r.locator('body').innerText()).toContain(m['represent.for'].replace('{name}', 'Vera Stojanović'));
      await axeClean(r);
      await tabTo(r, 'input[name=choice][value=self]');
      await r.keyboard.press('ArrowDown');
      expect(await r.locator(`input[name=choice][value="${mandate!.id}"]`).isChecked()).toBe(true);
      await tabTo(r, 'form[action$="/represent"] button[type=submit]');
      await Promise.all([r.waitForEvent('framenavigated'), r.keyboard.press('Enter')]);
      await r.waitForLoadState('load');
      // The consent page names the principal plainly and lists the principal's data.
      await r.waitForSelector('#consent-mandate');
      expect(await r.locator('h1').innerText()).toBe(m['consent.mandate.heading'].replace('{client}', 'Zdravstvo').replace('{principal}', 'Vera Stojanović'));
      expect(await r.locator('#consent-mandate').innerText()).toContain(m['account.mandates.purpose.health']);
      expect(await r.locator('legend').innerText()).toBe(m['consent.mandate.intro'].replace('{client}', 'Zdravstvo').replace('{principal}', 'Vera Stojanović'));
      expect(await r.locator('body').innerText()).toContain(m['consent.mandate.claim.given_name']);
      await axeClean(r);
      // Allowed from the keyboard.
      const end = await browserSignIn(r, { ...representative, redirectUri: suite.redirectUri, keyboard: true });
      tokens = await oidc.authorizationCodeGrant(config, end, { pkceCodeVerifier: verifier, idTokenExpected: true });
    } finally {
      await r.context().close();
    }
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(await suite.server.kapija.subjectFor(principal.account.id, rp.clientId));
    expect(claims['act']).toEqual({ sub: await suite.server.kapija.subjectFor(representative.account.id, rp.clientId) });
    expect(claims['mandate_id']).toBe(mandate!.id);
    expect((await oidc.fetchUserInfo(config, tokens.access_token, claims.sub))['given_name']).toBe('Vera');

    // A service that did not opt in never shows the choice.
    const o = await newPage(suite.browser, { locale: BROWSER_LOCALE[locale] });
    try {
      const direct = new URL('/auth', suite.server.url);
      direct.search = new URLSearchParams({ client_id: other.clientId, response_type: 'code', scope: 'openid', redirect_uri: suite.redirectUri, ui_locales: locale, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).toString();
      await o.goto(direct.href);
      const end = await browserSignIn(o, { ...representative, redirectUri: suite.redirectUri });
      expect(end.href.startsWith(suite.redirectUri)).toBe(true);
    } finally {
      await o.context().close();
    }

    // Withdrawing ends it at once: the service's access token no longer reads userinfo.
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, sub: claims.sub, act: claims['act'], mandate_id: mandate!.id });
    await suite.server.kapija.mandates.withdraw(mandate!.id, { actor: principal.account.id });
    await expect(oidc.fetchUserInfo(config, tokens.access_token, claims.sub)).rejects.toThrow();
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: false });
    for (const who of [principal, representative]) {
      expect(await mandateActions(who.account.id)).toEqual(['ledger.mandate_granted', 'ledger.mandate_used', 'ledger.mandate_withdrawn']);
    }
  });
});

describeBrowser('legal representation at the registration desk', () => {
  const desk = kapijaForSuite({ host: 'localhost', env: { WEBAUTHN_HWK_AAGUIDS: VIRTUAL_AUTHENTICATOR_AAGUID } });

  test('a registrar records a parent\'s representation from a decision (keyboard, axe-clean) and ends it; never one naming themselves', async () => {
    const registrar = await createTestAccount(desk.kapija, { totp: false, username: `desk.${Date.now().toString(36)}` });
    await createRegistrarRoles(desk.kapija.repos).grant(registrar.account.id, 'test');
    const child = await createTestAccount(desk.kapija, { identity: 'none' });
    const parent = await createTestAccount(desk.kapija);
    const page = await newPage(suite.browser, { locale: 'en' });
    const press = async (selector: string) => {
      await tabTo(page, selector, undefined, 60);
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      await page.waitForLoadState('load');
    };
    try {
      await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });
      await page.goto(`${desk.url}/admin/desk/mandates/${child.account.id}?lang=en`);
      await page.locator('#username').fill(registrar.username);
      await page.locator('#password').fill(registrar.password);
      await Promise.all([page.waitForNavigation(), page.locator('#password').press('Enter')]);
      await page.waitForSelector('button[data-webauthn="register"]:visible');
      await Promise.all([page.waitForNavigation(), page.locator('button[data-webauthn="register"]').click()]);
      await press('form[action$="/continue"] button');
      await page.waitForURL((u) => u.pathname === `/admin/desk/mandates/${child.account.id}`);
      expect(await page.locator('h1').innerText()).toBe(en['desk.mandates.heading'].replace('{user}', child.username));
      await axeClean(page);
      await tabTo(page, '#representative', undefined, 60);
      await page.keyboard.type(parent.username);
      await page.locator('#basis').selectOption('parent');
      await tabTo(page, '#decision_ref');
      await page.keyboard.type('Rešenje 601-12/2026');
      await tabTo(page, '#purpose-education');
      await page.keyboard.press('Space');
      await press(`form[action="/admin/desk/mandates/${child.account.id}"] button[type=submit]`);
      const [m] = await desk.kapija.mandates.listForPrincipal(child.account.id);
      expect(m).toMatchObject({ representativeId: parent.account.id, basis: 'parent', decisionRef: 'Rešenje 601-12/2026', purposes: ['education'], createdBy: registrar.account.id });
      await axeClean(page);

      // Not for themselves: the same form naming the registrar is refused with the reason.
      await tabTo(page, '#representative', undefined, 60);
      await page.keyboard.type(registrar.username);
      await tabTo(page, '#decision_ref');
      await page.keyboard.type('X-1');
      await tabTo(page, '#purpose-general');
      await page.keyboard.press('Space');
      await press(`form[action="/admin/desk/mandates/${child.account.id}"] button[type=submit]`);
      expect(await page.locator('[role=alert]').innerText()).toBe(en['error.mandate.own_account']);
      expect(await desk.kapija.mandates.listForPrincipal(child.account.id)).toHaveLength(1);

      await page.goto(`${desk.url}/admin/desk/mandates/${child.account.id}?lang=en`);
      await press(`button[data-withdraw="${m!.id}"]`);
      expect((await desk.kapija.mandates.find(m!.id))?.withdrawnAt).toBeInstanceOf(Date);
      expect(await mandateActionsOn(desk, child.account.id)).toEqual(['ledger.mandate_granted', 'ledger.mandate_withdrawn']);
    } finally {
      await page.context().close();
    }
  });
});

async function mandateActionsOn(running: RunningKapija, accountId: string) {
  return (await running.kapija.audit.list({ chain: ledgerChain(accountId), action: 'ledger.' }))
    .map((e) => e.action)
    .filter((a) => a.startsWith('ledger.mandate_'))
    .reverse();
}
