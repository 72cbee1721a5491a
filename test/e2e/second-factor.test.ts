/**
 * Two factors through the real pages and a real relying party (openid-client): enrolment of TOTP
 * with recovery codes, TOTP replay refused, recovery codes single-use, throttling of passwords and
 * codes (also across two instances on PostgreSQL), and the assurance a client may require.
 */
import * as oidc from 'openid-client';
import { generate } from 'otplib/functional';
import { Agent, type Page } from '../support/browserless.js';
import { signIn, submitForm } from '../support/sign-in.js';
import { nextTotpCode, markTotpStepUsed } from '../support/totp.js';
import { createTestAccount, createTestClient, kapijaForSuite, startKapija } from '../support/kapija.js';
import { createPgDatabase, pgAvailable } from '../support/databases.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

const server = kapijaForSuite();

async function authorize(base: string, clientId: string, secret: string | undefined, extra: Record<string, string> = {}) {
  const config = await oidc.discovery(new URL(base), clientId, secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  });
  return { config, verifier, url };
}

/** Follows redirects from `page`; returns the last page (or the callback URL). */
async function go(agent: Agent, page: Page): Promise<Page | URL> {
  return agent.follow(page, (u) => u.href.startsWith(REDIRECT));
}

async function passwordStep(agent: Agent, url: URL, username: string, password: string): Promise<Page> {
  const login = (await go(agent, await agent.request(url))) as Page;
  expect(login.body).toContain('autocomplete="current-password"');
  const after = await submitForm(agent, login, /\/login$/, { username, password });
  expect(after.status).toBe(303);
  return (await go(agent, after)) as Page;
}

describe('TOTP enrolment at first sign-in', () => {
  test('a citizen without a second factor enrols one, gets ten recovery codes, and reaches the service at substantial', async () => {
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const seen: string[] = [];
    server.kapija.events.on('factor.enrolled', (e) => void (e.accountId === citizen.account.id && seen.push(`enrolled:${e.type}`)));
    server.kapija.events.on('signin.failure', (e) => void (e.accountId === citizen.account.id && seen.push(`failure:${e.factor}`)));
    server.kapija.events.on('signin.success', (e) => void (e.accountId === citizen.account.id && seen.push(`success:${e.clientId}:${e.acr}`)));
    const { config, verifier, url } = await authorize(server.url, rp.clientId, rp.clientSecret);
    const agent = new Agent();
    const enrol = await passwordStep(agent, url, citizen.username, citizen.password);
    expect(enrol.body).toContain('/totp/enrol"');
    expect(enrol.body).toMatch(/<img class="qr" src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
    const secret = /data-totp-secret>([A-Z2-7 ]+)</.exec(enrol.body)![1]!.replace(/ /g, '');
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    // not active until a correct code
    expect(await server.kapija.credentials.enrolledTypes(citizen.account.id)).toEqual(new Set());
    const wrong = await submitForm(agent, enrol, /\/totp\/enrol$/, { code: '000000' === (await generate({ secret })) ? '111111' : '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toContain('role="alert"');
    const ok = await submitForm(agent, wrong, /\/totp\/enrol$/, { code: await nextTotpCode(secret) });
    expect(ok.status).toBe(303);
    const codesPage = (await go(agent, ok)) as Page;
    const codes = [...codesPage.body.matchAll(/<li><code>([0-9A-Z]{5}-[0-9A-Z]{5})<\/code><\/li>/g)].map((m) => m[1]);
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    const cont = await submitForm(agent, codesPage, /\/continue$/, {});
    let step = await go(agent, cont);
    if (!(step instanceof URL)) step = await go(agent, await submitForm(agent, step, /\/confirm$/, {}));
    expect(step).toBeInstanceOf(URL);
    const tokens = await oidc.authorizationCodeGrant(config, step as URL, { pkceCodeVerifier: verifier, idTokenExpected: true });
    expect(tokens.claims()).toMatchObject({ acr: 'http://eidas.europa.eu/LoA/substantial', amr: ['pwd', 'otp', 'mfa'] });
    expect(await server.kapija.credentials.enrolledTypes(citizen.account.id)).toEqual(new Set(['totp', 'recovery']));
    expect(seen).toEqual(['failure:totp', 'enrolled:totp', `success:${rp.clientId}:http://eidas.europa.eu/LoA/substantial`]);
    // the codes shown are the stored ones: one of them works once
    await expect(server.kapija.recovery.verify(citizen.account.id, codes[3]!)).resolves.toMatchObject({ remaining: 9 });
    await expect(server.kapija.recovery.verify(citizen.account.id, codes[3]!)).rejects.toMatchObject({ code: 'factor.recovery.invalid_code' });
  });
});

describe('TOTP at sign-in', () => {
  test('a code is accepted once: replaying it in another sign-in is refused', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const code = await nextTotpCode(citizen.totpSecret!);
    const first = new Agent();
    const a = await authorize(server.url, rp.clientId, rp.clientSecret);
    const page1 = await passwordStep(first, a.url, citizen.username, citizen.password);
    expect(page1.body).toContain('autocomplete="one-time-code"');
    expect(page1.body).toContain('inputmode="numeric"');
    const accepted = await submitForm(first, page1, /\/totp$/, { code });
    expect(accepted.status).toBe(303);

    const second = new Agent();
    const b = await authorize(server.url, rp.clientId, rp.clientSecret);
    const page2 = await passwordStep(second, b.url, citizen.username, citizen.password);
    const replay = await submitForm(second, page2, /\/totp$/, { code });
    expect(replay.status).toBe(401);
    expect(replay.body).toContain('already');
  });

  test('a malformed or wrong code is refused with the same answer', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const agent = new Agent();
    const a = await authorize(server.url, rp.clientId, rp.clientSecret);
    const page = await passwordStep(agent, a.url, citizen.username, citizen.password);
    const bad1 = await submitForm(agent, page, /\/totp$/, { code: 'abc' });
    const bad2 = await submitForm(agent, bad1, /\/totp$/, { code: '12345678901234567890' });
    expect(bad1.status).toBe(401);
    expect(bad2.status).toBe(401);
    const alert = (p: Page) => /role="alert"[^>]*>([^<]+)</.exec(p.body)?.[1];
    expect(alert(bad1)).toBe(alert(bad2));
    // the language switcher of a page rendered by a POST points at the page, not at the POST URL
    expect(bad1.body).toMatch(/href="\/interaction\/[^/"?]+\?lang=sr-Latn"/);
    expect(bad1.body).not.toMatch(/href="[^"]*\/totp\?lang=/);
  });
});

describe('recovery codes', () => {
  test('a recovery code signs in once, says how many remain, and cannot be used again', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const useCode = async (code: string) => {
      const agent = new Agent();
      const a = await authorize(server.url, rp.clientId, rp.clientSecret);
      const page = await passwordStep(agent, a.url, citizen.username, citizen.password);
      expect(page.body).toContain('?method=recovery');
      const form = await agent.request(new URL(`${page.url.pathname}?method=recovery`, page.url));
      expect(form.body).toContain('/recovery"');
      return { agent, a, res: await submitForm(agent, form, /\/recovery$/, { code: code.toLowerCase() }) };
    };
    const { agent, a, res } = await useCode(citizen.recoveryCodes[0]!);
    expect(res.status).toBe(303);
    const notice = (await go(agent, res)) as Page;
    expect(notice.body).toContain('9');
    expect(notice.body).toContain('/recovery/new"');
    let step = await go(agent, await submitForm(agent, notice, /\/continue$/, {}));
    if (!(step instanceof URL)) step = await go(agent, await submitForm(agent, step, /\/confirm$/, {}));
    const tokens = await oidc.authorizationCodeGrant(a.config, step as URL, { pkceCodeVerifier: a.verifier, idTokenExpected: true });
    expect(tokens.claims()!.amr).toEqual(['pwd', 'otp', 'mfa']);

    const again = await useCode(citizen.recoveryCodes[0]!);
    expect(again.res.status).toBe(401);
    expect(await server.kapija.recovery.remaining(citizen.account.id)).toBe(9);
  });
});

describe('assurance a client requires', () => {
  test('a client whose minimum is high cannot be reached with TOTP: unmet_authentication_requirements', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], kapija_min_acr: 'http://eidas.europa.eu/LoA/high' });
    const agent = new Agent();
    const a = await authorize(server.url, rp.clientId, rp.clientSecret);
    const login = (await go(agent, await agent.request(a.url))) as Page;
    const after = (await go(agent, await submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password }))) as URL | Page;
    const end = after instanceof URL ? after : await go(agent, after);
    expect(end).toBeInstanceOf(URL);
    expect((end as URL).searchParams.get('error')).toBe('unmet_authentication_requirements');
  });

  test('acr_values=substantial is met by password + TOTP', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const a = await authorize(server.url, rp.clientId, rp.clientSecret, { acr_values: 'http://eidas.europa.eu/LoA/substantial' });
    const cb = await signIn(new Agent(), a.url, REDIRECT, citizen);
    const tokens = await oidc.authorizationCodeGrant(a.config, cb, { pkceCodeVerifier: a.verifier, idTokenExpected: true });
    expect(tokens.claims()!.acr).toBe('http://eidas.europa.eu/LoA/substantial');
  });
});

describe('throttling', () => {
  async function attempt(base: string, clientId: string, secret: string | undefined, username: string, password: string) {
    const agent = new Agent();
    const a = await authorize(base, clientId, secret);
    const login = (await go(agent, await agent.request(a.url))) as Page;
    return submitForm(agent, login, /\/login$/, { username, password });
  }

  test('wrong passwords are delayed after five failures from one address, for a known and an unknown name alike', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    for (const name of [citizen.username, `nobody-${citizen.username}`]) {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1) statuses.push((await attempt(server.url, rp.clientId, rp.clientSecret, name, 'wrong-password')).status);
      expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
      expect(statuses[5]).toBe(429);
      const blocked = await attempt(server.url, rp.clientId, rp.clientSecret, name, name === citizen.username ? citizen.password : 'x');
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(blocked.body).toMatch(/\d+ seconds/);
    }
  });

  test('wrong TOTP codes are throttled per account', async () => {
    const citizen = await createTestAccount(server.kapija);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const agent = new Agent();
    const a = await authorize(server.url, rp.clientId, rp.clientSecret);
    let page = await passwordStep(agent, a.url, citizen.username, citizen.password);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const res = await submitForm(agent, page, /\/totp$/, { code: '000000' });
      statuses.push(res.status);
      if (res.status === 401) page = res;
    }
    expect(statuses.slice(0, 5).every((s) => s === 401)).toBe(true);
    expect(statuses[5]).toBe(429);
    // even the right code waits now
    const right = await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) });
    expect(right.status).toBe(429);
  });

  (pgAvailable() ? test : test.skip)('failures from one address at two instances on one PostgreSQL add up', async () => {
    const db = await createPgDatabase();
    const a = await startKapija({ testDb: db });
    const b = await startKapija({ testDb: db });
    try {
      const citizen = await createTestAccount(a.kapija);
      const rp = await createTestClient(a.kapija, { redirect_uris: [REDIRECT] });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i += 1) {
        const target = i % 2 === 0 ? a : b;
        statuses.push((await attempt(target.url, rp.clientId, rp.clientSecret, citizen.username, 'wrong')).status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
      // and TOTP replay across instances: a code accepted at A is refused at B
      const code = await nextTotpCode(citizen.totpSecret!);
      await expect(a.kapija.totp.verify(citizen.account.id, code)).resolves.toMatchObject({ amr: ['otp'] });
      await expect(b.kapija.totp.verify(citizen.account.id, code)).rejects.toMatchObject({ code: 'factor.totp.invalid_code' });
      markTotpStepUsed(citizen.totpSecret!, Math.floor(Date.now() / 1000 / 30));
    } finally {
      await a.stop();
      await b.stop();
      await db.drop();
    }
  });
});

