/**
 * The console's default: administrators need the highest level of assurance (a security key).
 * An administrator who enrols one signs in and works the console with the keyboard alone; one who
 * has only an authenticator app is kept out.
 */
import { VIRTUAL_AUTHENTICATOR_AAGUID, addVirtualAuthenticator, describeBrowser, launchBrowser, newPage, tabTo, type Browser, type Page } from '../support/browser.js';
import { createTestAccount, kapijaForSuite } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';

describeBrowser('administration at eIDAS high', () => {
  // Chromium's virtual authenticator stands in for a security key model the operator accepts as hardware.
  const server = kapijaForSuite({ host: 'localhost', env: { WEBAUTHN_HWK_AAGUIDS: VIRTUAL_AUTHENTICATOR_AAGUID } });
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
  });

  async function keyboard(page: Page, selector: string) {
    await tabTo(page, selector);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await page.waitForLoadState('load');
  }

  test('an administrator with a security key gets in and uses the console from the keyboard', async () => {
    const admin = await createTestAccount(server.kapija, { totp: false, username: `chief.${Date.now().toString(36)}` });
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const citizen = await createTestAccount(server.kapija, { givenName: 'Zorana', familyName: 'Zorić' });
    const page = await newPage(browser, { locale: 'en' });
    await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });
    await page.goto(`${server.url}/admin`);
    await tabTo(page, '#username');
    await page.keyboard.type(admin.username);
    await tabTo(page, '#password');
    await page.keyboard.type(admin.password);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    // no factor yet: enrol the security key (the ceremony button, pressed from the keyboard)
    await page.waitForSelector('button[data-webauthn="register"]:visible');
    await tabTo(page, 'button[data-webauthn="register"]');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    await keyboard(page, 'form[action$="/continue"] button');
    await page.waitForURL((u) => u.pathname.startsWith('/admin/'));
    expect(await page.locator('h1').innerText()).toBeTruthy();

    await keyboard(page, 'a[href="/admin/citizens"]');
    await tabTo(page, '#q');
    await page.keyboard.type('Zorić');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(await page.locator('main').innerText()).toContain(citizen.username);
    await page.context().close();
  });

  test('an administrator with only an authenticator app does not reach the console', async () => {
    const admin = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const page = await newPage(browser, { locale: 'en' });
    await page.goto(`${server.url}/admin`);
    await page.fill('#username', admin.username);
    await page.fill('#password', admin.password);
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/login"] button[type=submit]')]);
    await page.waitForLoadState('load');
    // TOTP cannot reach high: no second-factor form is offered, the sign-in ends refused
    expect(await page.locator('form[action$="/totp"]').count()).toBe(0);
    expect(new URL(page.url()).pathname.startsWith('/admin/clients')).toBe(false);
    expect(new URL(page.url()).searchParams.get('error')).toBe('unmet_authentication_requirements');
    expect(await page.locator('main').innerText()).toContain('needs a sign-in at a higher level of assurance');
    expect(await page.locator('main a[href="/account/security"]').count()).toBe(1);
    await page.goto(`${server.url}/admin/clients`);
    // still not signed in to the console: back at Kapija's sign-in
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\//);
    await page.context().close();
  });
});
