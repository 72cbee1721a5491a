/**
 * Signing in with the eID card end to end: Kapija on its main host, a real nginx (the README's
 * server block, docs/nginx/kapija-eid.conf) as the certificate host (CERT_SIGNIN_URL), node's https
 * client presenting the test CA's citizen certificates there, and the browserless Agent holding the
 * main host's cookies. The two legs are joined only by the single-use ticket and return token
 * (factors/certificate/handoff.ts); every attack on that join is tried here.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import * as oidc from 'openid-client';
import { Agent, checkedValues, formAction, type Page } from '../support/browserless.js';
import { openPortal, submitForm } from '../support/sign-in.js';
import { browserSignIn, cspViolations, describeBrowser, formatViolations, launchBrowser, newPage, runAxe, tabTo, type Browser } from '../support/browser.js';
import { TEST_ENV, createTestAccount, createTestClient, kapijaForSuite, startKapija, testConfig } from '../support/kapija.js';
import { createKapija } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { describeNginx, freePort, startNginx, type RunningNginx } from '../support/nginx.js';
import { makeTestEidPki, type LeafFiles, type TestEidPki } from '../support/test-ca.js';
import { CLIENT_CERT_HEADER, PROXY_SECRET_HEADER, createCertificateSignIn, verifyCrl } from '../../src/factors/certificate/index.js';
import { createCertificateCrlRepository } from '../../src/store/certificate-crls.js';
import { translator, type Locale } from '../../src/i18n/index.js';

const SECRET = 'the-proxy-secret-shared-with-nginx-for-the-e2e-0123456789';
const REDIRECT = 'http://127.0.0.1:9/cb';
const HIGH = 'http://eidas.europa.eu/LoA/high';
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
const unescape = (html: string) => html.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

let pki: TestEidPki;
let anchorsFile: string;
let nginxPort: number;
beforeAll(async () => {
  pki = makeTestEidPki();
  anchorsFile = path.join(pki.dir, 'anchors.pem');
  fs.writeFileSync(anchorsFile, pki.anchorsPem);
  nginxPort = await freePort();
});

const certEnv = () => ({ CERT_TRUST_ANCHORS: anchorsFile, CERT_PROXY_SECRET: SECRET, CERT_SIGNIN_URL: `https://localhost:${nginxPort}` });
const server = kapijaForSuite(() => ({ env: certEnv() }));

describeNginx('signing in with the eID card through nginx', () => {
  let nginx: RunningNginx;
  let rp: { clientId: string; clientSecret?: string | undefined };

  beforeAll(async () => {
    // The CRLs as `kapija certs refresh` stores them.
    const crls = createCertificateCrlRepository(server.kapija.db);
    const signIn = createCertificateSignIn(server.kapija.config, crls)!;
    for (const der of [pki.crls.intermediate, pki.crls.root, pki.crls.revokedIntermediate]) {
      const crl = await verifyCrl(der, signIn.anchors, new Date());
      await crls.put({ ...crl, revokedCount: crl.revoked.size, source: 'test' });
    }
    nginx = await startNginx({ upstream: server.url, proxySecret: SECRET, certFile: pki.server.certFile, keyFile: pki.server.keyFile, port: nginxPort });
    rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile email jmbg' });
  });
  afterAll(async () => {
    await nginx?.stop();
  });

  function authorize(extra: Record<string, string> = {}): URL {
    const u = new URL('/auth', server.url);
    u.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', ...extra }).toString();
    return u;
  }

  /** The sign-in page of a new interaction, and the certificate host's URL its ID-card button leads to (with a fresh ticket). */
  async function startCard(agent: Agent, url: URL = authorize()): Promise<{ login: Page; certUrl: URL }> {
    const login = await agent.follow(await agent.request(url), isCallback);
    if (login instanceof URL) throw new Error('reached the service without signing in');
    const started = await submitForm(agent, login, /\/certificate\/start$/, {});
    expect(started.status).toBe(303);
    const certUrl = new URL(started.headers.get('location')!);
    expect(certUrl.origin).toBe(`https://localhost:${nginxPort}`);
    return { login, certUrl };
  }

  /** The browser at the certificate host: TLS to nginx, presenting `card` when given (no cookies: another host). */
  function atCertificateHost(url: URL, card?: LeafFiles, headers: Record<string, string> = {}): Promise<{ status: number; location: string | null; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: Number(url.port),
          servername: 'localhost',
          path: `${url.pathname}${url.search}`,
          ca: fs.readFileSync(pki.server.caFile),
          ...(card ? { cert: card.pem, key: card.key } : {}),
          headers: { accept: 'text/html', 'accept-language': 'en', ...headers },
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: (res.headers.location as string | undefined) ?? null, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** Presents the card for `certUrl`'s ticket: the main host's return URL. */
  async function presentCard(certUrl: URL, card?: LeafFiles): Promise<URL> {
    const answer = await atCertificateHost(certUrl, card);
    expect(answer.status).toBe(303);
    const back = new URL(answer.location!);
    expect(back.origin).toBe(server.url);
    expect(back.pathname).toMatch(/^\/interaction\/[^/]+\/certificate\/identify$/);
    return back;
  }

  /** From the main host's return URL to the service: consent (the claims ticked, and `extra`) when asked. */
  async function finish(agent: Agent, back: URL, extra: string[] = []): Promise<URL> {
    let step = await agent.follow(await agent.request(back), isCallback);
    for (let i = 0; i < 3 && !(step instanceof URL); i += 1) {
      const page: Page = step;
      if (!formAction(page.body, /\/confirm$/)) throw new Error(`unexpected page ${page.url.pathname} (${page.status}): ${page.body.slice(0, 400)}`);
      step = await agent.follow(await submitForm(agent, page, /\/confirm$/, { claims: [...new Set([...checkedValues(page.body, 'claims'), ...extra])] }), isCallback);
    }
    if (!(step instanceof URL)) throw new Error('the sign-in did not reach the service');
    return step;
  }

  const interactionOf = (u: URL) => /\/interaction\/([^/?]+)/.exec(u.pathname)![1]!;

  test('the sign-in page offers the ID card (three languages) and its button posts, with CSRF, to the main host', async () => {
    for (const [locale, text] of [['en', 'Sign in with your ID card'], ['sr-Latn', 'Prijavi se ličnom kartom'], ['sr-Cyrl', 'Пријави се личном картом']] as const) {
      const agent = new Agent();
      const login = (await agent.follow(await agent.request(authorize({ ui_locales: locale })), isCallback)) as Page;
      expect(login.body).toContain(text);
      expect(formAction(login.body, /\/certificate\/start$/)).toBeDefined();
      // Chromium applies form-action to the redirect after the submission: the certificate host is allowed.
      expect(login.headers.get('content-security-policy')).toContain(`https://localhost:${nginxPort}`);
    }
    // Without the CSRF token the button does nothing.
    const agent = new Agent();
    const login = (await agent.follow(await agent.request(authorize()), isCallback)) as Page;
    const action = new URL(formAction(login.body, /\/certificate\/start$/)!, server.url);
    expect((await agent.request(action, { form: { _csrf: 'forged' } })).status).toBe(403);
  });

  test('the citizen signs in with the card: acr high, amr sc + pin + mfa, verified_claims with the certificate as evidence (openid-client reads the ID token and userinfo)', async () => {
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const claims = JSON.stringify({
      id_token: { verified_claims: { verification: { trust_framework: null, assurance_level: null, evidence: null }, claims: { given_name: null, family_name: null, 'given_name#sr-Latn': null, 'family_name#sr-Latn': null, birthdate: null, jmbg: null } } },
      userinfo: { verified_claims: { verification: { trust_framework: null, evidence: null }, claims: { family_name: null, jmbg: null } } },
    });
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid profile jmbg', claims, acr_values: HIGH, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const agent = new Agent();
    const { certUrl } = await startCard(agent, url);
    // The citizen also ticks the JMBG, which the consent page does not tick for them.
    const callback = await finish(agent, await presentCard(certUrl, pki.citizen), ['jmbg', 'verified_claims']);

    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    const id = tokens.claims() as Record<string, unknown>;
    expect(id.acr).toBe(HIGH);
    expect([...(id.amr as string[])].sort()).toEqual(['mfa', 'pin', 'sc']);
    const evidence = { type: 'electronic_signature', signature_type: 'qes_eidas', issuer: expect.stringContaining('Kapija Test eID Citizens CA'), serial_number: expect.stringMatching(/^[0-9A-F]+$/), created_at: expect.any(String) };
    expect(id.verified_claims).toEqual({
      verification: { trust_framework: 'rs_eid', assurance_level: 'high', evidence: [evidence] },
      claims: { given_name: 'Петар', family_name: 'Петровић', 'given_name#sr-Latn': 'Petar', 'family_name#sr-Latn': 'Petrović', birthdate: '1990-01-01', jmbg: pki.citizen.jmbg },
    });
    const userinfo = (await oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck)) as Record<string, unknown>;
    expect(userinfo.verified_claims).toEqual({ verification: { trust_framework: 'rs_eid', evidence: [evidence] }, claims: { family_name: 'Петровић', jmbg: pki.citizen.jmbg } });

    // The account opened by the card: a random user name, no password, proofed once at high.
    const accountId = await server.kapija.identity.findAccountByVerifiedJmbg(pki.citizen.jmbg);
    expect(accountId).toBeDefined();
    const account = (await server.kapija.accounts.findById(accountId!))!;
    expect(account.username).toMatch(/^eid-[0-9a-f]{16}$/);
    expect(account.username).not.toContain(pki.citizen.jmbg);
    expect((await server.kapija.accounts.findCredentialsByUsername(account.username))!.passwordHash).toBeNull();
    const identity = (await server.kapija.identity.find(accountId!))!;
    expect(identity).toMatchObject({ level: 'high', method: 'certificate', evidence: { type: 'certificate', expiry: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) } });

    // The next sign-in with the card: the same account, no second proofing.
    const again = new Agent();
    const next = await startCard(again);
    await finish(again, await presentCard(next.certUrl, pki.citizen));
    expect(await server.kapija.identity.findAccountByVerifiedJmbg(pki.citizen.jmbg)).toBe(accountId);
    const proofed = await server.kapija.audit.list({ chain: `account:${accountId!}`, action: 'ledger.identity_proofed' });
    expect(proofed).toHaveLength(1);
  });

  test.each([
    ['revoked', 'en'],
    ['expired', 'sr-Latn'],
  ] as const)('the %s certificate gets the clear refusal page (%s), with "try again" and "sign in another way"; nobody is signed in', async (which, locale) => {
    const agent = new Agent(locale);
    const accountsBefore = (await server.kapija.db('accounts').count<{ n: number | string }[]>({ n: '*' }))[0]!.n;
    const { certUrl } = await startCard(agent, authorize({ ui_locales: locale }));
    const back = await presentCard(certUrl, pki[which]);
    const page = (await agent.follow(await agent.request(back), isCallback)) as Page;
    // The refusal has a page of its own: the used return token leaves the address bar.
    expect(page.url.pathname).toBe(`/interaction/${interactionOf(back)}/certificate/refused`);
    expect((await server.kapija.db('accounts').count<{ n: number | string }[]>({ n: '*' }))[0]!.n).toBe(accountsBefore);
    const t = translator(locale as Locale);
    expect(page.status).toBe(403);
    const text = unescape(page.body);
    expect(text).toContain(t('certificate.refused.title'));
    expect(text).toContain(t(`certificate.refused.${which}`));
    expect(formAction(page.body, /\/certificate\/start$/)).toBe(`/interaction/${interactionOf(back)}/certificate/start`);
    expect(text).toContain(t('certificate.retry'));
    expect(page.body).toContain(`href="/interaction/${interactionOf(back)}?lang=${locale}"`);
    expect(text).toContain(t('certificate.other_method'));
    // "Try again" starts a new hand-off from the refusal page; "sign in another way" is the sign-in page.
    const retry = await submitForm(agent, page, /\/certificate\/start$/, {});
    expect(retry.status).toBe(303);
    const other = await agent.request(new URL(`/interaction/${interactionOf(back)}?lang=${locale}`, server.url));
    expect(other.status).toBe(200);
    expect(formAction(other.body, /\/login$/)).toBeDefined();
  });

  test('no certificate presented at the certificate host: the refusal page says so', async () => {
    const agent = new Agent();
    const { certUrl } = await startCard(agent);
    const page = (await agent.follow(await agent.request(await presentCard(certUrl)), isCallback)) as Page;
    expect(page.status).toBe(403);
    expect(unescape(page.body)).toContain(translator('en')('certificate.refused.none'));
  });

  describeBrowser('in Chromium, keyboard only', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    /** A browser with the card in the reader: Chromium presents `card` to the certificate host (Playwright's client certificates). */
    const withCard = async (card: LeafFiles) => {
      const page = await newPage(browser, {
        locale: 'sr-Latn',
        // Chromium does not know the test CA of the certificate host's server certificate.
        context: { ignoreHTTPSErrors: true, clientCertificates: [{ origin: `https://localhost:${nginxPort}`, certPath: card.certFile, keyPath: card.keyFile }] },
      });
      page.setDefaultTimeout(10_000);
      return page;
    };
    const button = 'form[action$="/certificate/start"] button';

    test('a revoked card: the button, the refusal page and "try again" work from the keyboard, axe-clean, under the pages’ CSP', async () => {
      const page = await withCard(pki.revoked);
      await page.goto(authorize({ ui_locales: 'sr-Latn' }).href);
      expect(formatViolations(await runAxe(page))).toBe('');
      /** Enter on the focused button: through the certificate host to the refusal page. */
      const toRefusal = async () => {
        const shown = page.waitForResponse((r) => r.url().includes('/certificate/refused?'));
        await page.keyboard.press('Enter');
        await shown;
        await page.waitForLoadState();
      };
      await tabTo(page, button, undefined, 40);
      await toRefusal();
      const t = translator('sr-Latn');
      await expect(page.locator('h1').textContent()).resolves.toBe(t('certificate.refused.title'));
      await expect(page.locator('[role=alert]').textContent()).resolves.toBe(t('certificate.refused.revoked'));
      expect(formatViolations(await runAxe(page))).toBe('');
      // "Try again": the same card, the same answer.
      await tabTo(page, button);
      await toRefusal();
      await expect(page.locator('[role=alert]').textContent()).resolves.toBe(t('certificate.refused.revoked'));
      await tabTo(page, 'main a[href^="/interaction/"]');
      await Promise.all([page.waitForURL(/\/interaction\/[^/]+\?lang=sr-Latn$/), page.keyboard.press('Enter')]);
      await expect(page.locator('#username').count()).resolves.toBe(1);
      expect(cspViolations(page)).toEqual([]);
      await page.context().close();
    });

    test('the citizen’s card: from the button to the service with the keyboard alone', async () => {
      // Chromium refuses port 9: this service's callback is a closed port Chromium may ask for.
      const callback = `http://127.0.0.1:${await freePort()}/cb`;
      const service = await createTestClient(server.kapija, { redirect_uris: [callback] });
      const page = await withCard(pki.citizen);
      const u = new URL('/auth', server.url);
      u.search = new URLSearchParams({ client_id: service.clientId, response_type: 'code', scope: 'openid', redirect_uri: callback, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', ui_locales: 'sr-Latn' }).toString();
      await page.goto(u.href);
      const reached = page.waitForRequest((r) => r.url().startsWith(callback), { timeout: 20_000 });
      await tabTo(page, button, undefined, 40);
      await page.keyboard.press('Enter');
      // The consent page (another interaction of the same sign-in), unless the service is already reached.
      const consent = page.locator('form[action$="/confirm"] button[type=submit]');
      const first = await Promise.race([reached.then(() => 'service' as const), consent.waitFor({ timeout: 20_000 }).then(() => 'consent' as const)]);
      if (first === 'consent') {
        expect(formatViolations(await runAxe(page))).toBe('');
        await tabTo(page, 'form[action$="/confirm"] button[type=submit]', undefined, 60);
        await page.keyboard.press('Enter');
      }
      expect(new URL((await reached).url()).searchParams.get('code')).toBeTruthy();
      expect(cspViolations(page)).toEqual([]);
      await page.context().close();
    });
    test('the portal’s "Link your ID card", keyboard only, axe-clean: a revoked card is explained with a way back', async () => {
      const citizen = await createTestAccount(server.kapija, { identity: 'none' });
      const page = await withCard(pki.revoked);
      await page.goto(`${server.url}/account?lang=sr-Latn`);
      await browserSignIn(page, { ...citizen, keyboard: true });
      await page.waitForURL(/\/account(\?|$)/);
      const t = translator('sr-Latn');
      await expect(page.locator('form[action="/account/identity/card"] button').textContent()).resolves.toBe(t('account.identity.card'));
      expect(formatViolations(await runAxe(page))).toBe('');
      await tabTo(page, 'form[action="/account/identity/card"] button', undefined, 60);
      await Promise.all([page.waitForURL(/\/account\/identity\/card\?return=/), page.keyboard.press('Enter')]);
      await expect(page.locator('[role=alert]').textContent()).resolves.toBe(t('certificate.refused.revoked'));
      expect(formatViolations(await runAxe(page))).toBe('');
      await tabTo(page, 'main a[href^="/account?lang="]');
      await Promise.all([page.waitForURL(/\/account\?lang=sr-Latn$/), page.keyboard.press('Enter')]);
      expect(cspViolations(page)).toEqual([]);
      await page.context().close();
    });
  });

  describe('linking the card to an account the citizen already has (the portal)', () => {
    /** The card's JMBG free again: an identity the card opened earlier in this file is revoked. */
    async function freeTheCard() {
      const holder = await server.kapija.identity.findAccountByVerifiedJmbg(pki.citizen.jmbg);
      if (holder) await server.kapija.identity.revoke(holder, { actor: 'test' }, 'the test links the card elsewhere');
    }

    test('an unverified citizen, after two factors, links the card: proofed at high; the card then signs in to this account', async () => {
      await freeTheCard();
      const citizen = await createTestAccount(server.kapija, { identity: 'none' });
      const agent = new Agent();
      const overview = await openPortal(agent, server.url, citizen);
      expect(overview.body).toContain('Link your ID card');
      expect(overview.headers.get('content-security-policy')).toContain(`https://localhost:${nginxPort}`);
      const started = await submitForm(agent, overview, /\/account\/identity\/card$/, {});
      expect(started.status).toBe(303);
      const certUrl = new URL(started.headers.get('location')!);
      expect(certUrl.origin).toBe(`https://localhost:${nginxPort}`);
      const answer = await atCertificateHost(certUrl, pki.citizen);
      const back = new URL(answer.location!);
      expect(back.pathname).toBe('/account/identity/card');
      // Another signed-in citizen's browser cannot take it: the outcome is bound to the account that asked.
      const other = new Agent();
      await openPortal(other, server.url, await createTestAccount(server.kapija, { identity: 'none' }));
      const stolen = await other.request(back);
      expect(stolen.status).toBe(400);
      const linked = await agent.request(back);
      expect(linked.status).toBe(303);
      expect(linked.headers.get('location')).toBe('/account');
      expect(await server.kapija.identity.findAccountByVerifiedJmbg(pki.citizen.jmbg)).toBe(citizen.account.id);
      expect(await server.kapija.identity.find(citizen.account.id)).toMatchObject({ level: 'high', method: 'certificate', attributes: { jmbg: pki.citizen.jmbg, givenNameLatn: 'Petar' } });
      // Used once.
      expect((await agent.request(back)).status).toBe(400);
      // The card now signs in to this account.
      const signer = new Agent();
      const { certUrl: again } = await startCard(signer);
      await finish(signer, await presentCard(again, pki.citizen));
      expect(await server.kapija.identity.findAccountByVerifiedJmbg(pki.citizen.jmbg)).toBe(citizen.account.id);
    });

    test('a revoked card is explained and links nothing; a card whose JMBG another account holds is refused', async () => {
      const citizen = await createTestAccount(server.kapija, { identity: 'none' });
      const agent = new Agent();
      const overview = await openPortal(agent, server.url, citizen);
      const viaCard = async (card: LeafFiles) => {
        const started = await submitForm(agent, overview, /\/account\/identity\/card$/, {});
        return agent.request(new URL((await atCertificateHost(new URL(started.headers.get('location')!), card)).location!));
      };
      const refused = await viaCard(pki.revoked);
      expect(refused.status).toBe(403);
      expect(unescape(refused.body)).toContain(translator('en')('certificate.refused.revoked'));
      expect(await server.kapija.identity.find(citizen.account.id)).toBeUndefined();
      // pki.citizen's JMBG is in force on the account of the test before: not bound a second time.
      expect(await server.kapija.identity.findAccountByVerifiedJmbg(pki.citizen.jmbg)).toBeDefined();
      const duplicate = await viaCard(pki.citizen);
      expect(duplicate.status).toBe(409);
      expect(await server.kapija.identity.find(citizen.account.id)).toBeUndefined();
    });

    test('a citizen verified at high is not offered the link', async () => {
      const citizen = await createTestAccount(server.kapija);
      const overview = await openPortal(new Agent(), server.url, citizen);
      expect(overview.body).not.toContain('/account/identity/card');
    });
  });

  describe('attacks on the hand-off', () => {
    test('a ticket is used once: presented again, it is refused and nothing comes back', async () => {
      const agent = new Agent();
      const { certUrl } = await startCard(agent);
      await presentCard(certUrl, pki.citizen);
      const again = await atCertificateHost(certUrl, pki.citizen);
      expect(again.status).toBe(400);
      expect(again.location).toBeNull();
      expect(unescape(again.body)).toContain(translator('en')('error.certificate.ticket_invalid'));
    });

    test('a return token is used once: after a refusal, the same return URL is refused', async () => {
      const agent = new Agent();
      const { certUrl } = await startCard(agent);
      const back = await presentCard(certUrl, pki.revoked);
      expect((await agent.request(back)).status).toBe(303);
      const again = await agent.request(back);
      expect(again.status).toBe(401);
      expect(unescape(again.body)).toContain(translator('en')('error.certificate.return_invalid'));
    });

    test('a return token is used once: after the sign-in, the same return URL signs nobody in again', async () => {
      const agent = new Agent();
      const { certUrl } = await startCard(agent);
      const back = await presentCard(certUrl, pki.citizen);
      await finish(agent, back);
      const again = await agent.request(back);
      expect(again.status).toBeGreaterThanOrEqual(400);
      expect(again.headers.get('location')).toBeNull();
    });

    test('a return token from another browser (without the interaction’s cookies) is refused, and stays usable by the browser that started', async () => {
      const victim = new Agent();
      const { certUrl } = await startCard(victim);
      const back = await presentCard(certUrl, pki.citizen);
      const stranger = await new Agent().request(back);
      expect(stranger.status).toBe(400);
      expect(stranger.headers.get('location')).toBeNull();
      // The stranger's own interaction, with the victim's return token: bound to the victim's interaction, refused.
      const attacker = new Agent();
      const own = await startCard(attacker);
      const swapped = new URL(back);
      swapped.pathname = `/interaction/${interactionOf(new URL(own.login.url))}/certificate/identify`;
      const refused = await attacker.request(swapped);
      expect(refused.status).toBe(401);
      expect(unescape(refused.body)).toContain(translator('en')('error.certificate.return_invalid'));
      // The browser that started still completes its sign-in.
      expect(isCallback(await finish(victim, back))).toBe(true);
    });

    test('a ticket from another interaction (an attacker’s link sent to a victim) completes nothing for either', async () => {
      const attacker = new Agent();
      const { certUrl } = await startCard(attacker);
      const victim = new Agent();
      const victims = await startCard(victim);
      // The victim follows the attacker's link and presents their card: the way back names the attacker's interaction.
      const back = await presentCard(certUrl, pki.citizen);
      expect(interactionOf(back)).not.toBe(interactionOf(new URL(victims.login.url)));
      const atVictim = await victim.request(back);
      expect(atVictim.status).toBe(400);
      expect(atVictim.headers.get('location')).toBeNull();
      // Nor can the victim's own interaction take it.
      const swapped = new URL(back);
      swapped.pathname = `/interaction/${interactionOf(new URL(victims.login.url))}/certificate/identify`;
      expect((await victim.request(swapped)).status).toBe(401);
    });

    test('a certificate header forged straight to Kapija’s port (no proxy secret) is ignored: refused, and the ticket is not spent', async () => {
      const agent = new Agent();
      const { certUrl } = await startCard(agent);
      const direct = new URL(`${certUrl.pathname}${certUrl.search}`, server.url);
      const forged = await fetch(direct, { headers: { accept: 'text/html', 'accept-language': 'en', [CLIENT_CERT_HEADER]: encodeURIComponent(pki.citizen.pem), [PROXY_SECRET_HEADER]: 'a-guess-at-the-secret-which-is-long-enough' }, redirect: 'manual' });
      expect(forged.status).toBe(403);
      expect(forged.headers.get('location')).toBeNull();
      expect(unescape(await forged.text())).toContain(translator('en')('error.certificate.no_proxy'));
      // The real card, through the proxy, still works with the same ticket.
      expect(isCallback(await finish(agent, await presentCard(certUrl, pki.citizen)))).toBe(true);
    });

    test('the certificate route reached on the main host, without the proxy, is refused', async () => {
      const agent = new Agent();
      const { certUrl } = await startCard(agent);
      const onMainHost = await agent.request(new URL(`${certUrl.pathname}${certUrl.search}`, server.url));
      expect(onMainHost.status).toBe(403);
      expect(onMainHost.headers.get('location')).toBeNull();
    });

    test('an expired ticket is refused', async () => {
      const agent = new Agent();
      const { certUrl } = await startCard(agent);
      await server.kapija.db('certificate_handoffs').where({ kind: 'ticket' }).update({ expires_at: Date.now() - 1000 });
      const late = await atCertificateHost(certUrl, pki.citizen);
      expect(late.status).toBe(400);
      expect(late.location).toBeNull();
      // Expired rows go with the other expired rows.
      expect((await server.kapija.purge()).handoffs).toBeGreaterThan(0);
    });

    test('the identify route is refused outside the identify step and without a return token', async () => {
      const agent = new Agent();
      const { login } = await startCard(agent);
      const uid = interactionOf(new URL(login.url));
      const none = await agent.request(new URL(`/interaction/${uid}/certificate/identify`, server.url));
      expect(none.status).toBe(401);
      expect(unescape(none.body)).toContain(translator('en')('error.certificate.return_invalid'));
      // The refusal page explains only the factor's own refusals.
      expect((await agent.request(new URL(`/interaction/${uid}/certificate/refused?reason=made_up`, server.url))).status).toBe(404);
      expect((await agent.request(new URL(`/interaction/${uid}/certificate/refused?reason=../login`, server.url))).status).toBe(404);
      expect((await agent.request(new URL(`/interaction/${uid}/certificate/refused?reason=revoked`, server.url))).status).toBe(403);
    });
  });
});

test('without CERT_TRUST_ANCHORS the ID card is not offered and its routes do not exist', async () => {
  const plain = await startKapija();
  try {
    const rp = await createTestClient(plain.kapija, { redirect_uris: [REDIRECT] });
    const u = new URL('/auth', plain.url);
    u.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }).toString();
    const agent = new Agent();
    const login = (await agent.follow(await agent.request(u), isCallback)) as Page;
    expect(login.status).toBe(200);
    expect(login.body).not.toContain('Sign in with your ID card');
    expect(formAction(login.body, /\/certificate\//)).toBeUndefined();
    expect(plain.kapija.factors.get('certificate')).toBeUndefined();
    const certRoute = await agent.request(new URL('/eid/sign-in?ticket=x', plain.url));
    expect(certRoute.status).toBe(404);
  } finally {
    await plain.stop();
  }
});

test('the server needs CERT_SIGNIN_URL beside CERT_TRUST_ANCHORS (the CLI does not)', async () => {
  // Refused before anything is opened.
  await expect(createKapija(testConfig({ CERT_TRUST_ANCHORS: anchorsFile, CERT_PROXY_SECRET: SECRET }))).rejects.toThrow(/^CERT_SIGNIN_URL: required with CERT_TRUST_ANCHORS/);
  expect(loadConfig({ ...TEST_ENV, CERT_TRUST_ANCHORS: anchorsFile, CERT_PROXY_SECRET: SECRET }).certificate?.signInUrl).toBeUndefined();
});
