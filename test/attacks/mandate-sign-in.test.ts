/**
 * Signing in for someone else when the service asks for a fresh sign-in (`prompt=login`,
 * `max_age=0`) or a higher level (acr step-up): the representative's sign-in under a mandate
 * finishes, once, with the principal's `sub` and the representative's `act`, and the ID token
 * tells the truth about the sign-in (auth_time, acr). Then the represent step attacked directly:
 * the same form submitted twice, a mandate of someone else, an expired one, one for another service.
 */
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { Agent, checkedValues, formAction, hiddenField, type Page } from '../support/browserless.js';
import { nextTotpCode } from '../support/totp.js';
import { submitForm, type SignInOptions } from '../support/sign-in.js';
import { SoftAuthenticator } from '../support/soft-authenticator.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { clientKeysForSuite } from '../support/client-keys.js';
import { ledgerChain } from '../../src/account/ledger.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const HIGH = 'http://eidas.europa.eu/LoA/high';
const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';
/** The model the test keys claim; allow-listed, so a key of it counts as a hardware key (eIDAS high). */
const KEY_AAGUID = '6b617069-6a61-4b00-8000-000000000002';
const server = kapijaForSuite({ env: { WEBAUTHN_HWK_AAGUIDS: KEY_AAGUID } });
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);

interface Representative extends SignInOptions {
  account: { id: string };
  key?: SoftAuthenticator;
}

const postJson = (agent: Agent, path: string, csrf: string, body: unknown) => agent.postJson(new URL(path, server.url), csrf, body);

/** What a sign-in showed: the pages by kind, in order, and the callback it ended at. */
interface Walk {
  pages: string[];
  callback: URL;
}

/**
 * Drives the sign-in pages as a browser would, answering the representation page with `choice`
 * (a mandate id or `self`); `useKey` answers the second factor with the security key. Fails when
 * the sign-in takes more than `limit` pages (a sign-in that loops never ends).
 */
async function walk(agent: Agent, url: URL, who: Representative, choice?: string, opts: { useKey?: boolean; limit?: number } = {}): Promise<Walk> {
  const pages: string[] = [];
  let step = await agent.follow(await agent.request(url), isCallback);
  for (let i = 0; i < (opts.limit ?? 8); i += 1) {
    if (step instanceof URL) return { pages, callback: step };
    const page: Page = step;
    let next: Page;
    if (/\/login"/.test(page.body)) {
      pages.push('login');
      next = await submitForm(agent, page, /\/login$/, { username: who.username, password: who.password });
    } else if (opts.useKey && who.key && /data-webauthn="login"/.test(page.body)) {
      pages.push('key');
      const uid = /\/interaction\/([^/]+)/.exec(page.url.pathname)![1]!;
      const csrf = hiddenField(page.body, '_csrf') ?? /data-csrf="([^"]+)"/.exec(page.body)?.[1] ?? '';
      const challenge = await postJson(agent, `/interaction/${uid}/webauthn/options`, csrf, { purpose: 'login' });
      expect(challenge.status).toBe(200);
      const done = await postJson(agent, `/interaction/${uid}/webauthn`, csrf, { response: who.key.assert(challenge.json as { challenge: string }) });
      expect(done.status).toBe(200);
      step = await agent.follow(await agent.request(new URL(String(done.json['location']), server.url)), isCallback);
      continue;
    } else if (/\/totp"/.test(page.body)) {
      pages.push('totp');
      next = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(who.totpSecret!) });
    } else if (/\/represent"/.test(page.body)) {
      pages.push('represent');
      if (!choice) throw new Error('the representation page was shown');
      next = await submitForm(agent, page, /\/represent$/, { choice });
      if (next.status >= 400) throw Object.assign(new Error(`represent answered ${next.status}`), { page: next });
    } else if (/\/confirm"/.test(page.body)) {
      pages.push('consent');
      next = await submitForm(agent, page, /\/confirm$/, { claims: checkedValues(page.body, 'claims') });
    } else throw new Error(`unexpected page ${page.url.pathname} (${page.status})`);
    step = await agent.follow(next, isCallback);
  }
  throw new Error(`the sign-in did not finish: ${pages.join(' → ')}`);
}

async function service(metadata: Record<string, unknown> = {}) {
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile offline_access', kapija_accepts_representation: true, ...metadata });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const start = async (extra: Record<string, string> = {}) => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra });
    return { url, redeem: (cb: URL) => oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, idTokenExpected: true, ...(extra['max_age'] ? { maxAge: Number(extra['max_age']) } : {}) }) };
  };
  return { ...rp, config, start };
}

async function representativeWithKey(): Promise<Representative> {
  const r = await createTestAccount(server.kapija);
  const key = new SoftAuthenticator({ aaguid: KEY_AAGUID, attestation: { format: 'none' } }, server.url, new URL(server.url).hostname);
  const options = await server.kapija.webauthn.registrationOptions(r.account.id, r.username);
  await server.kapija.webauthn.register(r.account.id, options.challenge, key.register(options), 'Key');
  return { ...r, key };
}

const uses = async (accountId: string) =>
  (await server.kapija.audit.list({ chain: ledgerChain(accountId), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_used');

describe('a fresh sign-in asked for by the service, while acting for someone', () => {
  test.each([
    ['prompt=login', { prompt: 'login' }],
    ['max_age=0', { max_age: '0' }],
  ])('%s: the representative signs in again, chooses the principal once, and the sign-in finishes acting for them', async (_name, extra) => {
    const principal = await createTestAccount(server.kapija, { givenName: 'Olga' });
    const representative = await createTestAccount(server.kapija);
    const svc = await service();
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['general'] });
    const agent = new Agent('en');
    // A session already signed in (for themselves) at this service.
    const first = await svc.start();
    await first.redeem((await walk(agent, first.url, representative, 'self')).callback);

    const before = Math.floor(Date.now() / 1000);
    const fresh = await svc.start(extra);
    const { pages, callback } = await walk(agent, fresh.url, representative, m.id);
    // Both factors again, the choice once, the principal's consent once: no second round.
    expect(pages).toEqual(['login', 'totp', 'represent', 'consent']);
    const tokens = await fresh.redeem(callback);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(await server.kapija.subjectFor(principal.account.id, svc.clientId));
    expect(claims['act']).toEqual({ sub: await server.kapija.subjectFor(representative.account.id, svc.clientId) });
    expect(claims['mandate_id']).toBe(m.id);
    // auth_time is the fresh sign-in's (the factors proven just now), not the earlier one's.
    expect(Number(claims.auth_time)).toBeGreaterThanOrEqual(before - 1);
    expect((await uses(principal.account.id)).map((e) => e.details['how'])).toEqual(['signin']);
    expect((await uses(representative.account.id)).map((e) => e.details['how'])).toEqual(['signin']);
  });

  test('prompt=login choosing "for myself" finishes too, with the representative\'s own sub and no act', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service();
    await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const agent = new Agent('en');
    const fresh = await svc.start({ prompt: 'login' });
    const { pages, callback } = await walk(agent, fresh.url, representative, 'self');
    expect(pages).toEqual(['login', 'totp', 'represent', 'consent']);
    const claims = (await fresh.redeem(callback)).claims()!;
    expect(claims.sub).toBe(await server.kapija.subjectFor(representative.account.id, svc.clientId));
    expect(claims['act']).toBeUndefined();
  });

  test('without mandates, prompt=login at a service that asks for consent finishes after the consent (the login stays answered)', async () => {
    const citizen = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: false });
    const agent = new Agent('en');
    const fresh = await svc.start({ prompt: 'login' });
    const { pages, callback } = await walk(agent, fresh.url, citizen);
    expect(pages).toEqual(['login', 'totp', 'consent']);
    expect((await fresh.redeem(callback)).claims()!.sub).toBe(await server.kapija.subjectFor(citizen.account.id, svc.clientId));
  });

  test('acr step-up: a substantial session raised to high with the security key acts for the principal at high', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await representativeWithKey();
    const svc = await service();
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['general'] });
    const agent = new Agent('en');
    const first = await svc.start({ acr_values: SUBSTANTIAL });
    const own = await first.redeem((await walk(agent, first.url, representative, 'self')).callback);
    expect(own.claims()!['acr']).toBe(SUBSTANTIAL);

    const high = await svc.start({ acr_values: HIGH });
    const { pages, callback } = await walk(agent, high.url, representative, m.id, { useKey: true });
    expect(pages.filter((p) => p === 'represent')).toHaveLength(1);
    expect(pages).toContain('key');
    const claims = (await high.redeem(callback)).claims()!;
    expect(claims['acr']).toBe(HIGH);
    expect(claims.sub).toBe(await server.kapija.subjectFor(principal.account.id, svc.clientId));
    expect(claims['mandate_id']).toBe(m.id);
  });

  test('acr step-up and prompt=login at once, acting for the principal: one sign-in, at high', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await representativeWithKey();
    const svc = await service();
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['general'] });
    const agent = new Agent('en');
    const high = await svc.start({ acr_values: HIGH, prompt: 'login' });
    const { pages, callback } = await walk(agent, high.url, representative, m.id, { useKey: true });
    expect(pages.filter((p) => p === 'represent')).toHaveLength(1);
    const tokens = await high.redeem(callback);
    expect(decodeJwt(tokens.id_token!)).toMatchObject({ acr: HIGH, mandate_id: m.id });
  });
});

describe('the represent step attacked', () => {
  /** Signs the representative in up to the representation page (password, TOTP), without answering it. */
  async function atRepresentPage(agent: Agent, url: URL, who: Representative): Promise<Page> {
    let step = await agent.follow(await agent.request(url), isCallback);
    for (let i = 0; i < 4; i += 1) {
      if (step instanceof URL) throw new Error('the sign-in finished without the representation page');
      if (/\/represent"/.test(step.body)) return step;
      const next = /\/login"/.test(step.body)
        ? await submitForm(agent, step, /\/login$/, { username: who.username, password: who.password })
        : await submitForm(agent, step, /\/totp$/, { code: await nextTotpCode(who.totpSecret!) });
      step = await agent.follow(next, isCallback);
    }
    throw new Error('no representation page');
  }
  const bindings = async (mandateId: string) => (await server.kapija.db('mandate_grants').where({ mandate_id: mandateId })).length;

  test('the same form submitted twice binds one grant and records one use; the sign-in still finishes once', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service();
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const agent = new Agent('en');
    const { url, redeem } = await svc.start();
    const page = await atRepresentPage(agent, url, representative);
    const first = await submitForm(agent, page, /\/represent$/, { choice: m.id });
    expect(first.status).toBe(303);
    const again = await submitForm(agent, page, /\/represent$/, { choice: m.id });
    expect(again.status).toBe(400);
    // Nor can the same form switch to "for myself" once the choice was made.
    expect((await submitForm(agent, page, /\/represent$/, { choice: 'self' })).status).toBe(400);
    expect(await bindings(m.id)).toBe(1);
    expect(await uses(principal.account.id)).toHaveLength(1);
    expect(await uses(representative.account.id)).toHaveLength(1);
    // The browser goes on with the first answer.
    let step = await agent.follow(first, isCallback);
    if (!(step instanceof URL)) step = await agent.follow(await submitForm(agent, step, /\/confirm$/, { claims: checkedValues(step.body, 'claims') }), isCallback);
    expect((await redeem(step as URL)).claims()!['mandate_id']).toBe(m.id);
    // After the sign-in, the form is refused (the interaction is gone).
    expect((await submitForm(agent, page, /\/represent$/, { choice: m.id })).status).toBe(400);
    expect(await uses(principal.account.id)).toHaveLength(1);
  });

  test('the same form submitted twice at the same moment: one answer is taken', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service();
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const agent = new Agent('en');
    const { url } = await svc.start();
    const page = await atRepresentPage(agent, url, representative);
    const answers = await Promise.all([0, 1, 2].map(() => submitForm(agent, page, /\/represent$/, { choice: m.id })));
    expect(answers.filter((a) => a.status === 303)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 400)).toHaveLength(2);
    expect(await bindings(m.id)).toBe(1);
    expect(await uses(principal.account.id)).toHaveLength(1);
  });

  test('a principal without a mandate, an expired mandate, a mandate for another service: refused, nothing bound or recorded', async () => {
    const principal = await createTestAccount(server.kapija);
    const stranger = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service();
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['general'], validUntil: Date.now() + 60 * 60 * 1000 });
    const other = await createTestAccount(server.kapija);
    const elsewhere = await server.kapija.mandates.grant(other.account.id, representative.username, { services: ['another-service'], purposes: ['general'] });
    const strangers = await server.kapija.mandates.grant(stranger.account.id, other.username, { services: null, purposes: ['general'] });
    const agent = new Agent('en');
    const { url } = await svc.start();
    const page = await atRepresentPage(agent, url, representative);
    expect(page.body).toContain(`value="${m.id}"`);
    expect(page.body).not.toContain(elsewhere.id);
    // A principal's account id, or the mandate of someone else, in place of a mandate id.
    for (const forged of [principal.account.id, stranger.account.id, strangers.id, elsewhere.id]) {
      expect((await submitForm(agent, page, /\/represent$/, { choice: forged })).status).toBe(400);
    }
    // The mandate offered expires while the page is open.
    await server.kapija.db('mandates').where({ id: m.id }).update({ valid_until: Date.now() - 1000 });
    expect((await submitForm(agent, page, /\/represent$/, { choice: m.id })).status).toBe(400);
    for (const id of [m.id, elsewhere.id, strangers.id]) expect(await bindings(id)).toBe(0);
    expect(await uses(representative.account.id)).toEqual([]);
    expect(await uses(principal.account.id)).toEqual([]);
    // "For myself" still works on the same page.
    const own = await submitForm(agent, page, /\/represent$/, { choice: 'self' });
    expect(own.status).toBe(303);
  });
});

describe('the device authorization grant (RFC 8628), acting for someone', () => {
  const clientKey = clientKeysForSuite();

  /** A television app that accepts representation (private_key_jwt with its keys at a jwks_uri, as the engine requires of pairwise device clients). */
  async function television() {
    const { privateKey, kid, jwksUri } = await clientKey();
    const rp = await createTestClient(server.kapija, { grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [], jwks_uri: jwksUri, token_endpoint_auth_method: 'private_key_jwt', scope: 'openid profile', kapija_accepts_representation: true }, { public: true });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, undefined, oidc.PrivateKeyJwt({ key: privateKey, kid }), { execute: [oidc.allowInsecureRequests] });
    return { rp, config };
  }

  const postDeviceForm = (agent: Agent, page: Page, fields: Record<string, string>) =>
    agent.request(new URL(formAction(page.body, /^\/device/)!, page.url), { form: { xsrf: hiddenField(page.body, 'xsrf') ?? '', ...fields } });

  test('the representative enters the code, signs in, chooses the principal: the television receives sub (principal) and act', async () => {
    const principal = await createTestAccount(server.kapija, { givenName: 'Ruža' });
    const representative = await createTestAccount(server.kapija);
    const { rp, config } = await television();
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [rp.clientId], purposes: ['general'] });
    const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile' });
    const agent = new Agent('en');
    const entry = await agent.request(`${server.url}/device?lang=en`);
    const confirmation = await postDeviceForm(agent, entry, { user_code: started.user_code });
    let step: Page | URL = await agent.follow(await postDeviceForm(agent, confirmation, { user_code: hiddenField(confirmation.body, 'user_code')!, confirm: 'yes' }), () => false);
    const seen: string[] = [];
    for (let i = 0; i < 6 && !(step instanceof URL); i += 1) {
      const page: Page = step;
      let next: Page;
      if (/\/login"/.test(page.body)) {
        seen.push('login');
        next = await submitForm(agent, page, /\/login$/, { username: representative.username, password: representative.password });
      } else if (/\/totp"/.test(page.body)) {
        seen.push('totp');
        next = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(representative.totpSecret!) });
      } else if (/\/represent"/.test(page.body)) {
        seen.push('represent');
        next = await submitForm(agent, page, /\/represent$/, { choice: m.id });
      } else if (/\/confirm"/.test(page.body)) {
        seen.push('consent');
        expect(page.body).toContain('Ruža');
        next = await submitForm(agent, page, /\/confirm$/, { claims: checkedValues(page.body, 'claims') });
      } else break;
      step = await agent.follow(next, () => false);
    }
    expect(seen).toEqual(['login', 'totp', 'represent', 'consent']);
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, started);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(await server.kapija.subjectFor(principal.account.id, rp.clientId));
    expect(claims['act']).toEqual({ sub: await server.kapija.subjectFor(representative.account.id, rp.clientId) });
    expect(claims['mandate_id']).toBe(m.id);
    expect((await oidc.fetchUserInfo(config, tokens.access_token, claims.sub))['given_name']).toBe('Ruža');
    expect(await uses(principal.account.id)).toHaveLength(1);
    expect(await uses(representative.account.id)).toHaveLength(1);
    await server.kapija.mandates.withdraw(m.id, { actor: principal.account.id });
    await expect(oidc.fetchUserInfo(config, tokens.access_token, claims.sub)).rejects.toThrow();
  });
});
