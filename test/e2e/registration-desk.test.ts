/**
 * Proofing at a counter, end to end: a registrar signs in to the registration desk with a security
 * key and works it with the keyboard alone (a new account for a citizen without e-mail or phone,
 * the document check, the printed activation code); the citizen activates it at /activate (choosing
 * a password); the citizen, given an OATH token at the counter, then signs in to a service that
 * needs substantial and asks for verified_claims, and gets both. The identity page an unverified
 * citizen sees is checked too. Every page: axe clean, no CSP violation.
 */
import { randomBytes } from 'node:crypto';
import { generateSecret } from 'otplib/functional';
import { decodeJwt } from 'jose';
import { VIRTUAL_AUTHENTICATOR_AAGUID, addVirtualAuthenticator, cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, tabTo, type Browser, type Page } from '../support/browser.js';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { PKCE_CHALLENGE, TEST_PKCE } from '../support/pkce.js';
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg } from '../support/kapija.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { en } from '../../src/i18n/messages/en.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';

describeBrowser('the registration desk and activation', () => {
  const server = kapijaForSuite({ host: 'localhost', env: { WEBAUTHN_HWK_AAGUIDS: VIRTUAL_AUTHENTICATOR_AAGUID } });
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
  });

  async function clean(page: Page) {
    const violations = await runAxe(page);
    expect(formatViolations(violations)).toBe('');
    expect(cspViolations(page)).toEqual([]);
  }
  async function press(page: Page, selector: string) {
    await tabTo(page, selector, undefined, 60);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await page.waitForLoadState('load');
  }
  async function type(page: Page, selector: string, text: string) {
    await tabTo(page, selector, undefined, 60);
    await page.keyboard.type(text);
  }

  test('registrar at the desk, citizen at /activate, then a sign-in at substantial with verified_claims', async () => {
    const registrar = await createTestAccount(server.kapija, { totp: false, username: `desk.${Date.now().toString(36)}` });
    await createRegistrarRoles(server.kapija.repos).grant(registrar.account.id, 'test');
    const page = await newPage(browser, { locale: 'en' });
    await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });
    await page.goto(`${server.url}/admin/desk?lang=en`);
    await type(page, '#username', registrar.username);
    await type(page, '#password', registrar.password);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await page.waitForSelector('button[data-webauthn="register"]:visible');
    await tabTo(page, 'button[data-webauthn="register"]');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await press(page, 'form[action$="/continue"] button');
    await page.waitForURL((u) => u.pathname === '/admin/desk');
    expect(await page.locator('h1').innerText()).toBe(en['desk.title']);
    await clean(page);

    // A citizen without e-mail or phone: a new account with the document check.
    const username = `counter.${randomBytes(3).toString('hex')}`;
    const jmbg = uniqueJmbg();
    await press(page, 'main a[href="/admin/desk/check"]');
    await clean(page);
    await type(page, '#username', username);
    await type(page, '#issuing_country', '');
    await type(page, '#document_number', '009876543');
    await page.locator('#expiry').fill('2033-03-01');
    await type(page, '#given_name_cyrl', 'Милица');
    await type(page, '#family_name_cyrl', 'Стојановић');
    await type(page, '#given_name_latn', 'Milica');
    await type(page, '#family_name_latn', 'Stojanović');
    await page.locator('#birthdate').fill('1999-12-31');
    await type(page, '#jmbg', jmbg);
    await type(page, '#office', 'Pošta Beograd 6');
    await press(page, 'form[action="/admin/desk/check"] button[type=submit]');
    expect(await page.locator('h1').innerText()).toBe(en['desk.code.heading']);
    await clean(page);
    const code = await page.locator('#activation_code').inputValue();
    expect(code).toMatch(/^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
    const account = (await server.kapija.accounts.findByUsername(username))!;
    expect(await server.kapija.identity.levelOf(account.id)).toBe('none');

    // The desk finds the account and shows its identity (still none until activated).
    await page.goto(`${server.url}/admin/desk?lang=en`);
    await type(page, '#q', username);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(await page.locator('main').innerText()).toContain(username);
    await clean(page);
    await page.context().close();

    // The citizen activates, in Cyrillic, from the keyboard.
    const citizen = await newPage(browser, { locale: 'sr-Cyrl' });
    await citizen.goto(`${server.url}/activate?lang=sr-Cyrl`);
    await clean(citizen);
    await type(citizen, '#username', username);
    await type(citizen, '#code', code);
    await type(citizen, '#password', 'a counter passphrase of mine');
    await Promise.all([citizen.waitForNavigation(), citizen.keyboard.press('Enter')]);
    expect(await citizen.locator('main').innerText()).toContain(srCyrl['activate.done']);
    await clean(citizen);
    await citizen.context().close();
    expect(await server.kapija.identity.levelOf(account.id)).toBe('high');

    // An OATH token handed at the counter (kapija user totp-import), then a service that needs substantial.
    const totpSecret = generateSecret({ length: 20 });
    await server.kapija.totp.importSeed(account.id, totpSecret, 'Token');
    const redirect = 'http://127.0.0.1:9/cb';
    const rp = await createTestClient(server.kapija, { redirect_uris: [redirect], scope: 'openid profile jmbg', kapija_min_acr: 'http://eidas.europa.eu/LoA/substantial' });
    const auth = new URL('/auth', server.url);
    const claims = JSON.stringify({ id_token: { verified_claims: { verification: { trust_framework: null, evidence: null }, claims: { given_name: null, family_name: null, jmbg: null } } } });
    auth.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid profile jmbg', redirect_uri: redirect, claims, ...PKCE_CHALLENGE }).toString();
    const cb = await signIn(new Agent('en'), auth, redirect, { username, password: 'a counter passphrase of mine', totpSecret, claims: ['sub', 'verified_claims', 'jmbg', 'given_name', 'family_name', 'name', 'preferred_username', 'updated_at'] });
    const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`;
    const res = await fetch(new URL('/token', server.url), { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: redirect, code_verifier: TEST_PKCE.verifier }) });
    const idToken = decodeJwt(((await res.json()) as { id_token: string }).id_token);
    expect(idToken.acr).toBe('http://eidas.europa.eu/LoA/substantial');
    expect(idToken.verified_claims).toMatchObject({
      verification: { trust_framework: 'rs_eid', evidence: [{ type: 'document', document_details: { type: 'idcard' } }] },
      claims: { given_name: 'Милица', family_name: 'Стојановић', jmbg },
    });
  });

  test('the identity page an unverified citizen sees is keyboard-usable and axe clean', async () => {
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const rp = await createTestClient(server.kapija, { redirect_uris: ['http://127.0.0.1:9/cb'], scope: 'openid profile' });
    const page = await newPage(browser, { locale: 'en' });
    const auth = new URL('/auth', server.url);
    auth.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: 'http://127.0.0.1:9/cb', acr_values: 'http://eidas.europa.eu/LoA/substantial', ui_locales: 'en', ...PKCE_CHALLENGE }).toString();
    await page.goto(auth.href);
    await type(page, '#username', citizen.username);
    await type(page, '#password', citizen.password);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    const { nextTotpCode } = await import('../support/totp.js');
    await page.locator('#code').fill(await nextTotpCode(citizen.totpSecret!));
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await page.waitForLoadState('load');
    expect(await page.locator('h1').innerText()).toBe(en['identity.heading']);
    await clean(page);
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith('http://127.0.0.1:9/cb')),
      (async () => {
        await tabTo(page, 'form[action$="/identity"] button');
        await page.keyboard.press('Enter');
      })(),
    ]);
    expect(new URL(request.url()).searchParams.get('error')).toBe('unmet_authentication_requirements');
    await page.context().close();
  });
});
