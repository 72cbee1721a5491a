/**
 * WebAuthn in Chromium with the DevTools virtual authenticator, through a real relying party
 * (openid-client): a security key as second factor (eIDAS high), a discoverable passkey alone
 * (passwordless, high), and step-up from a password + TOTP session to a level that needs the key.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { VIRTUAL_AUTHENTICATOR_AAGUID, addVirtualAuthenticator, describeBrowser, launchBrowser, newPage, type Browser, type Page } from '../support/browser.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { nextTotpCode } from '../support/totp.js';

let server: RunningKapija;
let browser: Browser;
let receiver: http.Server;
let redirectUri: string;

describeBrowser('WebAuthn security keys and passkeys', () => {
  beforeAll(async () => {
    // Chromium's virtual authenticator stands in for a security key model the operator accepts as hardware.
    server = await startKapija({ host: 'localhost', env: { WEBAUTHN_HWK_AAGUIDS: VIRTUAL_AUTHENTICATOR_AAGUID } });
    receiver = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    redirectUri = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cb`;
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => receiver?.close(r));
    await server?.stop();
  });

  async function relyingParty() {
    const rp = await createTestClient(server.kapija, { redirect_uris: [redirectUri] });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const start = async (extra: Record<string, string> = {}) => {
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        ...extra,
      });
      return {
        url,
        /** Exchanges the code the browser brought back; returns the ID token claims. */
        finish: async (page: Page) => {
          await page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 15_000 }).catch(async (err: unknown) => {
            throw new Error(`never reached the service; on ${page.url()}: ${(await page.locator('main').innerText()).slice(0, 600)}`, { cause: err });
          });
          const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier, idTokenExpected: true });
          return tokens.claims()!;
        },
      };
    };
    return { rp, start };
  }

  async function password(page: Page, username: string, pw: string) {
    await page.fill('#username', username);
    await page.fill('#password', pw);
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/login"] button[type=submit]')]);
  }

  /** After a first sign-in that enrolled a factor: the recovery codes page, then consent. */
  async function codesThenConsent(page: Page) {
    await page.waitForSelector('[data-recovery-codes]');
    expect(await page.locator('[data-recovery-codes] li').count()).toBe(10);
    await page.click('form[action$="/continue"] button');
    await Promise.race([
      page.waitForSelector('form[action$="/confirm"]'),
      page.waitForURL((u) => u.href.startsWith(redirectUri)),
    ]);
    if (!page.url().startsWith(redirectUri)) await page.click('form[action$="/confirm"] button');
  }

  test('password + security key: enrolled at first sign-in, then used as second factor; acr high', async () => {
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const { start } = await relyingParty();
    const page = await newPage(browser);
    const key = await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });

    const first = await start();
    await page.goto(first.url.href);
    await password(page, citizen.username, citizen.password);
    await page.waitForSelector('button[data-webauthn="register"]:visible');
    await Promise.all([page.waitForNavigation(), page.click('button[data-webauthn="register"]')]);
    await codesThenConsent(page);
    const enrolled = await first.finish(page);
    expect(enrolled.acr).toBe('http://eidas.europa.eu/LoA/high');
    expect(await key.credentials()).toHaveLength(1);

    await page.context().clearCookies();
    const second = await start();
    await page.goto(second.url.href);
    await password(page, citizen.username, citizen.password);
    await page.waitForSelector('button[data-webauthn="login"]:visible');
    expect(await page.locator('form[action$="/totp"]').count()).toBe(0);
    await page.click('button[data-webauthn="login"]');
    const claims = await second.finish(page);
    expect(claims.acr).toBe('http://eidas.europa.eu/LoA/high');
    expect(claims.amr).toEqual(['pwd', 'hwk', 'user', 'mfa']);
    const [stored] = await server.kapija.credentials.list(citizen.account.id, 'webauthn');
    expect(stored!.config).toMatchObject({ deviceType: 'singleDevice', backedUp: false });
    // hardware because its model is allow-listed: its packed attestation proves no certified model
    expect(stored).toMatchObject({ aaguid: VIRTUAL_AUTHENTICATOR_AAGUID, assurance: 'hwk' });
    expect(stored!.attestation).not.toBe('mds');
    expect(Number(stored!.config['counter'])).toBeGreaterThan(0);
    await page.context().close();
  });

  test('a discoverable passkey with user verification signs in alone, without a password', async () => {
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const { rp, start } = await relyingParty();
    const page = await newPage(browser);
    const passkey = await addVirtualAuthenticator(page, { transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true });

    const first = await start();
    await page.goto(first.url.href);
    await password(page, citizen.username, citizen.password);
    await page.waitForSelector('button[data-webauthn="register"]:visible');
    await Promise.all([page.waitForNavigation(), page.click('button[data-webauthn="register"]')]);
    await codesThenConsent(page);
    await first.finish(page);
    const held = await passkey.credentials();
    expect(held).toHaveLength(1);
    expect(held[0]!.isResidentCredential).toBe(true);
    // the user handle is Kapija's random handle, not the username
    expect(Buffer.from(held[0]!.userHandle!, 'base64').toString('utf8')).not.toContain(citizen.username);

    await page.context().clearCookies();
    const second = await start();
    await page.goto(second.url.href);
    await page.waitForSelector('button[data-webauthn="passkey"]:visible');
    await page.click('button[data-webauthn="passkey"]');
    const claims = await second.finish(page);
    expect(claims.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));
    expect(claims.amr).toEqual(['hwk', 'user', 'pin', 'mfa']);
    expect(claims.acr).toBe('http://eidas.europa.eu/LoA/high');
    await page.context().close();
  });

  test('step-up: a password + TOTP session is raised to high with the security key only', async () => {
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const { start } = await relyingParty();
    const page = await newPage(browser);
    await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });
    const enrol = await start();
    await page.goto(enrol.url.href);
    await password(page, citizen.username, citizen.password);
    await page.waitForSelector('button[data-webauthn="register"]:visible');
    await Promise.all([page.waitForNavigation(), page.click('button[data-webauthn="register"]')]);
    await codesThenConsent(page);
    await enrol.finish(page);
    const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
    await server.kapija.totp.importSeed(citizen.account.id, secret);

    // A substantial session: password + TOTP.
    await page.context().clearCookies();
    const substantial = await start({ acr_values: 'http://eidas.europa.eu/LoA/substantial' });
    await page.goto(substantial.url.href);
    await password(page, citizen.username, citizen.password);
    await page.fill('form[action$="/totp"] input[name=code]', await nextTotpCode(secret));
    await page.click('form[action$="/totp"] button[type=submit]');
    const low = await substantial.finish(page);
    expect(low.acr).toBe('http://eidas.europa.eu/LoA/substantial');

    // The service now asks for high: only the missing factor is asked, no password again.
    const high = await start({ acr_values: 'http://eidas.europa.eu/LoA/high' });
    await page.goto(high.url.href);
    await page.waitForSelector('button[data-webauthn="login"]:visible');
    expect(await page.locator('#password').count()).toBe(0);
    expect(await page.locator('form[action$="/totp"]').count()).toBe(0);
    await page.click('button[data-webauthn="login"]');
    const raised = await high.finish(page);
    expect(raised.acr).toBe('http://eidas.europa.eu/LoA/high');
    expect(raised.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'hwk', 'mfa']));
    await page.context().close();
  });

  test('a citizen adds a security key in the account portal and then signs in with it at high', async () => {
    const citizen = await createTestAccount(server.kapija);
    const { start } = await relyingParty();
    const page = await newPage(browser);
    const key = await addVirtualAuthenticator(page, { transport: 'usb', hasResidentKey: false, hasUserVerification: false, isUserVerified: false });
    await page.goto(`${server.url}/account/security`);
    await password(page, citizen.username, citizen.password);
    await page.fill('form[action$="/totp"] input[name=code]', await nextTotpCode(citizen.totpSecret!));
    await Promise.all([page.waitForNavigation(), page.click('form[action$="/totp"] button[type=submit]')]);
    await page.waitForURL((u) => u.pathname === '/account/security');
    await page.waitForSelector('button[data-webauthn="register"]:visible');
    await Promise.all([page.waitForNavigation(), page.click('button[data-webauthn="register"]')]);
    expect(await key.credentials()).toHaveLength(1);
    expect(await server.kapija.credentials.enrolledTypes(citizen.account.id)).toEqual(new Set(['totp', 'webauthn', 'recovery']));
    expect(await page.locator('[data-remove-factor]').count()).toBe(2);

    const flow = await start();
    await page.goto(flow.url.href);
    // single sign-on from the portal's session (substantial); this service asks no more: consent, then back
    await page.waitForSelector('form[action$="/confirm"]');
    await page.click('form[action$="/confirm"] button[type=submit]');
    expect((await flow.finish(page)).acr).toBe('http://eidas.europa.eu/LoA/substantial');
    const high = await start({ acr_values: 'http://eidas.europa.eu/LoA/high' });
    await page.goto(high.url.href);
    await page.waitForSelector('button[data-webauthn="login"]:visible');
    await page.click('button[data-webauthn="login"]');
    expect((await high.finish(page)).acr).toBe('http://eidas.europa.eu/LoA/high');
    await page.context().close();
  });
});
