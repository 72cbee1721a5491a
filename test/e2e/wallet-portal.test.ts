/**
 * Kapija's PID on the account portal, in Chromium and in each language: /account/wallet shows the
 * credential offer (QR code and link) and the issued credentials; a credential is revoked from the
 * keyboard; the wallet's consent page (reached through the portal's offer by a test wallet built
 * from the OWF libraries) is answered from the keyboard. Every page axe-clean, no CSP violation.
 */
import type { Locale } from '../../src/config.js';
import type { Messages } from '../../src/i18n/index.js';
import { en } from '../../src/i18n/messages/en.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';
import { ACR } from '../../src/assurance/levels.js';
import { PRE_AUTHORIZED_CODE_GRANT } from '../../src/oidc/client-metadata.js';
import { VIRTUAL_AUTHENTICATOR_AAGUID, addVirtualAuthenticator, browserSignIn, cspViolations, describeBrowser, formatViolations, newPage, runAxe, tabTo, type Page } from '../support/browser.js';
import { browserSuiteWithService } from '../support/browser-suite.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { newHolderKey, obtainPid, TestWallet } from '../support/wallet/obtain.js';
import { offerUri, verifiedCitizen } from '../support/wallet/fixtures.js';

const CATALOGUES: Record<Locale, Messages> = { 'sr-Cyrl': srCyrl, 'sr-Latn': srLatn, en };
const BROWSER_LOCALE: Record<Locale, string> = { en: 'en-GB', 'sr-Latn': 'sr-Latn-RS', 'sr-Cyrl': 'sr-RS' };

const suite = browserSuiteWithService();

async function axeClean(page: Page) {
  expect(formatViolations(await runAxe(page))).toBe('');
  expect(cspViolations(page)).toEqual([]);
}

describeBrowser('the PID on the account portal', () => {
  test.each(['sr-Cyrl', 'sr-Latn', 'en'] as Locale[])('(%s) the citizen sees the offer, adds the PID through the consent page and revokes a credential, from the keyboard', async (locale) => {
    const m = CATALOGUES[locale];
    const { kapija, url } = suite.server;
    const { clientId } = await createTestClient(
      kapija,
      { client_name: 'Novčanik', redirect_uris: [suite.redirectUri], grant_types: ['authorization_code', PRE_AUTHORIZED_CODE_GRANT], scope: 'openid', kapija_wallet: true, kapija_min_acr: ACR.substantial },
      { public: true },
    );
    const citizen = await verifiedCitizen(kapija);
    // A credential from the desk, to be revoked on the page.
    const made = await kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
    const desk = new TestWallet(clientId, await newHolderKey());
    await desk.open(offerUri(made.offer));
    await desk.credential(await desk.tokenByPreAuthorizedCode(made.txCode), await desk.proof(await desk.nonce()));
    const [deskCredential] = await kapija.pid.list(citizen.account.id);

    const p = await newPage(suite.browser, { locale: BROWSER_LOCALE[locale] });
    try {
      await p.goto(`${url}/account/wallet?lang=${locale}`);
      await browserSignIn(p, { ...citizen });
      await p.waitForURL(/\/account\/wallet/);
      expect(await p.locator('h1').innerText()).toBe(m['wallet.issue.title']);
      expect(await p.locator('img.qr').getAttribute('alt')).toBe(m['wallet.issue.qr_alt']);
      const offer = (await p.locator('a[data-credential-offer]').getAttribute('href'))!;
      expect(offer.startsWith('openid-credential-offer://?credential_offer=')).toBe(true);
      expect(await p.locator(`[data-credential-state="${deskCredential!.id}"]`).innerText()).toBe(m['wallet.issue.state.valid']);
      await axeClean(p);

      // The wallet opens the offer; the citizen answers Kapija's consent page in this browser, from the keyboard.
      let consentSeen = false;
      await obtainPid({
        offer,
        clientId,
        authorize: {
          redirectUri: suite.redirectUri,
          signIn: async (authorization) => {
            await p.goto(`${authorization.href}&ui_locales=${locale}`);
            return browserSignIn(p, {
              ...citizen,
              redirectUri: suite.redirectUri,
              keyboard: true,
              onPage: async (page, step) => {
                if (step !== 'confirm') return;
                consentSeen = true;
                expect(await page.locator('h1').innerText()).toBe(m['wallet.issue.consent.heading'].replace('{client}', 'Novčanik'));
                expect(await page.locator('#consent-form li').allInnerTexts()).toEqual([
                  m['wallet.issue.attr.family_name'],
                  m['wallet.issue.attr.given_name'],
                  m['wallet.issue.attr.birthdate'],
                  m['wallet.issue.attr.nationalities'],
                  m['wallet.issue.attr.personal_administrative_number'],
                ]);
                await axeClean(page);
              },
            });
          },
        },
      });
      expect(consentSeen).toBe(true);

      // Both credentials are listed; the desk's is revoked from the keyboard.
      await p.goto(`${url}/account/wallet?lang=${locale}`);
      expect(await p.locator('[data-credential-state]').count()).toBe(2);
      await tabTo(p, `button[data-revoke="${deskCredential!.id}"]`, undefined, 80);
      await Promise.all([p.waitForURL(/done=revoked/), p.keyboard.press('Enter')]);
      expect(await p.locator('[role=status]').innerText()).toBe(m['wallet.issue.revoked']);
      expect(await p.locator(`[data-credential-state="${deskCredential!.id}"]`).innerText()).toContain(m['wallet.issue.state.revoked'].split(' (')[0]!);
      expect(await p.locator(`button[data-revoke="${deskCredential!.id}"]`).count()).toBe(0);
      await axeClean(p);
    } finally {
      await p.context().close();
    }
    const records = await kapija.pid.list(citizen.account.id);
    expect(records.map((r) => [r.channel, r.revokedAt === null])).toEqual([
      ['portal', true],
      ['desk', false],
    ]);
  });
});

describeBrowser('the PID at the registration desk', () => {
  const desk = kapijaForSuite({ host: 'localhost', env: { WEBAUTHN_HWK_AAGUIDS: VIRTUAL_AUTHENTICATOR_AAGUID } });

  test('a registrar makes an offer from the keyboard (axe-clean in three languages); the wallet redeems it with the tx_code on the page', async () => {
    const registrar = await createTestAccount(desk.kapija, { totp: false, username: `desk.${Date.now().toString(36)}` });
    await createRegistrarRoles(desk.kapija.repos).grant(registrar.account.id, 'test');
    const citizen = await verifiedCitizen(desk.kapija);
    const { clientId } = await createTestClient(
      desk.kapija,
      { client_name: 'Novčanik', redirect_uris: ['http://127.0.0.1:9/cb'], grant_types: ['authorization_code', PRE_AUTHORIZED_CODE_GRANT], scope: 'openid', kapija_wallet: true },
      { public: true },
    );
    const page = await newPage(suite.browser, { locale: 'en' });
    try {
      await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });
      const path = `/admin/desk/pid/${citizen.account.id}`;
      await page.goto(`${desk.url}${path}?lang=en`);
      await page.locator('#username').fill(registrar.username);
      await page.locator('#password').fill(registrar.password);
      await Promise.all([page.waitForNavigation(), page.locator('#password').press('Enter')]);
      await page.waitForSelector('button[data-webauthn="register"]:visible');
      await Promise.all([page.waitForNavigation(), page.locator('button[data-webauthn="register"]').click()]);
      await tabTo(page, 'form[action$="/continue"] button', undefined, 60);
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      await page.waitForURL((u) => u.pathname === path);
      for (const locale of ['sr-Cyrl', 'sr-Latn', 'en'] as Locale[]) {
        await page.goto(`${desk.url}${path}?lang=${locale}`);
        expect(await page.locator('h1').innerText()).toBe(CATALOGUES[locale]['wallet.issue.desk.heading'].replace('{user}', citizen.username));
        await axeClean(page);
      }
      await tabTo(page, '#wallet', undefined, 60);
      await tabTo(page, `form[action="${path}"] button[type=submit]`);
      await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
      await page.waitForLoadState('load');
      const txCode = (await page.locator('[data-tx-code]').innerText()).trim();
      expect(txCode).toMatch(/^\d{6}$/);
      const offer = (await page.locator('a[data-credential-offer]').getAttribute('href'))!;
      await axeClean(page);
      const { credential } = await obtainPid({ offer, clientId, txCode });
      expect(credential.split('~').length).toBeGreaterThan(5);
    } finally {
      await page.context().close();
    }
    const [record] = await desk.kapija.pid.list(citizen.account.id);
    expect(record).toMatchObject({ channel: 'desk', clientId, revokedAt: null });
    const offered = await desk.kapija.audit.list({ chain: 'admin', action: 'wallet.pid_offered' });
    expect(offered[0]).toMatchObject({ actor: registrar.account.id, subjectAccountId: citizen.account.id });
  });
});
