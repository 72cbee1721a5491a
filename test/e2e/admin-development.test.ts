/**
 * The console a developer can reach: in development (NODE_ENV=development, ADMIN_MIN_ACR unset) an
 * administrator with an authenticator app gets in, and every console page says, in the page's
 * language, that it accepts less than production would. Outside development the default stays a
 * security key, and the refusal says where to add one: the account's security page.
 */
import { browserSignIn, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, type Browser } from '../support/browser.js';
import { createTestAccount, startKapija, type RunningKapija } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';

describeBrowser('the administration console in development', () => {
  let dev: RunningKapija;
  let strict: RunningKapija;
  let browser: Browser;
  beforeAll(async () => {
    // ADMIN_MIN_ACR is left unset in both: each gets its environment's default.
    [dev, strict, browser] = await Promise.all([startKapija({ env: { NODE_ENV: 'development' } }), startKapija(), launchBrowser()]);
  }, 30_000);
  afterAll(async () => {
    await browser?.close();
    await dev?.stop();
    await strict?.stop();
  });

  test('an administrator with an authenticator app gets in, and every console page says the level is lowered', async () => {
    const admin = await createTestAccount(dev.kapija);
    await createRoleRepository(dev.kapija.db).grant(admin.account.id, 'admin', 'test');
    const page = await newPage(browser, { locale: 'en' });
    await page.goto(`${dev.url}/admin`);
    await browserSignIn(page, admin);
    await page.waitForURL(/\/admin\/clients$/);

    for (const path of ['/admin/clients', '/admin/clients/new', '/admin/citizens', '/admin/sessions', '/admin/audit']) {
      await page.goto(`${dev.url}${path}`);
      const banner = page.locator('main [role=status].dev-banner');
      expect(await banner.count()).toBe(1);
      // at the top of the console, before its navigation
      expect(await page.locator('main > :first-child').getAttribute('class')).toBe('dev-banner');
      const text = await banner.innerText();
      expect(text).toContain('lower level of assurance (Substantial) than production would');
      expect(text).toContain('ADMIN_MIN_ACR=high');
    }
    expect(formatViolations(await runAxe(page))).toBe('');

    // the same warning in Serbian, Cyrillic and Latin
    await page.goto(`${dev.url}/admin/clients?lang=sr-Cyrl`);
    expect(await page.locator('main [role=status].dev-banner').innerText()).toContain('нижем нивоу поузданости (Значајан)');
    await page.goto(`${dev.url}/admin/clients?lang=sr-Latn`);
    expect(await page.locator('main [role=status].dev-banner').innerText()).toContain('nižem nivou pouzdanosti (Značajan)');
    await page.context().close();
  });

  test('with the level set to high in development, no banner', async () => {
    const high = await startKapija({ env: { NODE_ENV: 'development', ADMIN_MIN_ACR: 'high' } });
    try {
      const admin = await createTestAccount(high.kapija);
      await createRoleRepository(high.kapija.db).grant(admin.account.id, 'admin', 'test');
      const page = await newPage(browser, { locale: 'en' });
      await page.goto(`${high.url}/admin`);
      await browserSignIn(page, admin);
      // refused: an authenticator app does not reach high, and no console page is shown
      expect(new URL(page.url()).pathname).toBe('/admin/callback');
      expect(await page.locator('.dev-banner').count()).toBe(0);
      await page.context().close();
    } finally {
      await high.stop();
    }
  });

  test('outside development the console still needs a security key, and the refusal links to the account’s security page', async () => {
    const admin = await createTestAccount(strict.kapija);
    await createRoleRepository(strict.kapija.db).grant(admin.account.id, 'admin', 'test');
    const page = await newPage(browser, { locale: 'en' });
    await page.goto(`${strict.url}/admin`);
    await browserSignIn(page, admin);
    expect(new URL(page.url()).pathname).toBe('/admin/callback');
    const main = page.locator('main');
    expect(await main.locator('[role=alert]').innerText()).toContain('sign in again with a security key');
    const link = main.getByRole('link', { name: 'Add a security key on your account’s security page' });
    expect(await link.getAttribute('href')).toBe('/account/security');
    expect(formatViolations(await runAxe(page))).toBe('');

    // the link leads to the page where a security key is added (after signing in to the account)
    await Promise.all([page.waitForNavigation(), link.click()]);
    await browserSignIn(page, admin);
    await page.waitForURL(/\/account\/security$/);
    expect(await page.locator('h1').innerText()).toBeTruthy();
    // still refused by the console (the session has no security key)
    await page.goto(`${strict.url}/admin/clients`);
    expect(new URL(page.url()).pathname).toBe('/admin/callback');
    await page.context().close();
  });
});
