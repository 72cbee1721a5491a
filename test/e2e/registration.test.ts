/**
 * Registration, e-mail verification and password reset over HTTP, with every mail received by a
 * real SMTP server started here: a new citizen registers from a service's sign-in page, follows
 * the link in the mail, signs in to a real relying party (openid-client) enrolling TOTP on the way;
 * answers do not tell whether a username or address exists; breached passwords are refused; a
 * password reset by mail ends every session and token.
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { signIn, submitForm } from '../support/sign-in.js';
import { nextTotpCode } from '../support/totp.js';
import { startSmtp, linkIn, type TestSmtp } from '../support/smtp.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
let smtp: TestSmtp;

beforeAll(async () => {
  smtp = await startSmtp();
});
const server = kapijaForSuite(() => ({ env: { SMTP_URL: smtp.url, MAIL_FROM: 'Kapija <no-reply@kapija.test>' } }));
afterAll(async () => {
  await smtp?.close();
});

const unique = () => randomBytes(4).toString('hex');
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);

async function relyingParty() {
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid profile email offline_access',
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  return { rp, config, url, verifier, state };
}

async function page(agent: Agent, step: Promise<Page> | Page): Promise<Page> {
  const followed = await agent.follow(await step, isCallback);
  if (followed instanceof URL) throw new Error(`unexpected redirect to ${followed.href}`);
  return followed;
}

/** The visible text of <main>, for comparing answers. */
const mainOf = (html: string) => /<main[^>]*>([\s\S]*)<\/main>/.exec(html)?.[1] ?? '';

async function register(agent: Agent, fields: Record<string, string>, from = '/register'): Promise<Page> {
  const form = await agent.request(new URL(from, server.url));
  expect(form.status).toBe(200);
  const back = hiddenField(form.body, 'return');
  return submitForm(agent, form, /^\/register$/, { ...(back ? { return: back } : {}), ...fields });
}

describe('registration', () => {
  test('from the sign-in page, through the mailed link, to a first sign-in at a real service with TOTP enrolment', async () => {
    const { rp, config, url, verifier, state } = await relyingParty();
    const agent = new Agent('en');
    const login = await page(agent, agent.request(url));
    const uid = /\/interaction\/([^/]+)$/.exec(login.url.pathname)![1]!;
    const registerHref = /href="(\/register\?return=[^"]+)"/.exec(login.body)?.[1]?.replace(/&amp;/g, '&');
    expect(registerHref).toBe(`/register?return=${uid}&lang=en`);

    const username = `ana.${unique()}`;
    const email = `${username}@example.rs`;
    const password = 'dunavska obala u sumrak';
    const sent = await register(agent, { username, email, given_name: 'Ana', family_name: 'Jovanović', password, password_confirm: password }, registerHref);
    expect(sent.status).toBe(200);
    expect(sent.body).toContain('Check your e-mail');

    const mail = await smtp.waitFor(email, (m) => m.subject === 'Confirm your e-mail address for Kapija');
    expect(mail.from).toContain('no-reply@kapija.test');
    expect(mail.language).toBe('en');
    // The address is not verified yet: nothing the registrant typed goes into the mail.
    expect(mail.text).not.toContain(username);
    expect(mail.html).toContain('<html lang="en">');
    const verifyLink = linkIn(mail, `${server.url}/verify-email?token=`);
    expect(mail.html).toContain(verifyLink.href.replace(/&/g, '&amp;'));

    const account = await server.kapija.accounts.findByUsername(username);
    expect(account).toMatchObject({ status: 'pending', emailVerified: false, givenName: 'Ana', locale: 'en' });

    // Not before the address is verified.
    const early = await submitForm(agent, await agent.request(new URL(`/interaction/${uid}`, server.url)), /\/login$/, { username, password });
    expect(early.status).toBe(403);
    expect(early.body).toContain('Confirm your e-mail address first');

    // Opening the link does not use it (mail scanners fetch links); the button does.
    const confirm = await agent.request(verifyLink);
    expect(confirm.status).toBe(200);
    expect(await server.kapija.accounts.findByUsername(username)).toMatchObject({ status: 'pending' });
    const verified = await submitForm(agent, confirm, /^\/verify-email$/, { token: hiddenField(confirm.body, 'token')! });
    expect(verified.status).toBe(200);
    expect(verified.body).toContain('Your e-mail address is confirmed');
    expect(await server.kapija.accounts.findByUsername(username)).toMatchObject({ status: 'active', emailVerified: true, email });
    const again = await submitForm(agent, confirm, /^\/verify-email$/, { token: hiddenField(confirm.body, 'token')! });
    expect(again.status).toBe(400);
    expect(again.body).toContain('already used or has expired');

    // Continue to the service: the same interaction, now with a password and a new second factor.
    const continueHref = /href="(\/interaction\/[^"]+)"/.exec(verified.body)?.[1];
    expect(continueHref).toBe(`/interaction/${uid}?lang=en`);
    const back = await agent.request(new URL(continueHref!, server.url));
    const enrol = await page(agent, submitForm(agent, back, /\/login$/, { username, password }));
    const secret = /data-totp-secret>([^<]+)</.exec(enrol.body)?.[1]?.replace(/\s/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    const codes = await page(agent, submitForm(agent, enrol, /\/totp\/enrol$/, { code: await nextTotpCode(secret!) }));
    const consent = await page(agent, submitForm(agent, codes, /\/continue$/, {}));
    const done = await agent.follow(await submitForm(agent, consent, /\/confirm$/, {}), isCallback);
    expect(done).toBeInstanceOf(URL);
    const tokens = await oidc.authorizationCodeGrant(config, done as URL, { pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: true });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(await server.kapija.subjectFor(account!.id, rp.clientId));
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub!);
    expect(info).toMatchObject({ email, email_verified: true, given_name: 'Ana', preferred_username: username });
  });

  test('answers the same for a new, a taken username and a taken address; the owner of a taken address is told by mail', async () => {
    const existing = await createTestAccount(server.kapija);
    const password = 'jesen na kalemegdanu';
    const fresh = await register(new Agent('en'), { username: `nov.${unique()}`, email: `nov.${unique()}@example.rs`, given_name: 'N', family_name: 'N', password, password_confirm: password });
    const takenName = `drugi.${unique()}@example.rs`;
    const byName = await register(new Agent('en'), { username: existing.username, email: takenName, given_name: 'N', family_name: 'N', password, password_confirm: password });
    const byMail = await register(new Agent('en'), { username: `treci.${unique()}`, email: existing.account.email!.toUpperCase(), given_name: 'N', family_name: 'N', password, password_confirm: password });
    expect([fresh.status, byName.status, byMail.status]).toEqual([200, 200, 200]);
    expect(mainOf(byName.body)).toBe(mainOf(fresh.body));
    expect(mainOf(byMail.body)).toBe(mainOf(fresh.body));

    const warned = await smtp.waitFor(existing.account.email!, (m) => /register with your address/.test(m.subject));
    expect(linkIn(warned, `${server.url}/recover`).pathname).toBe('/recover');
    const taken = await smtp.waitFor(takenName, (m) => /choose another username/.test(m.subject));
    expect(taken.text).not.toContain(existing.username);
    // No second account, and the owner's account is untouched.
    expect((await server.kapija.accounts.findByEmail(existing.account.email!)).map((a) => a.id)).toEqual([existing.account.id]);
    expect((await server.kapija.accounts.findByEmail(takenName)).length).toBe(0);
  });

  test('refuses a breached password, a short one and a mismatch, with each error tied to its field', async () => {
    const username = `slab.${unique()}`;
    const email = `${username}@example.rs`;
    const base = { username, email, given_name: 'S', family_name: 'S' };
    const breached = await register(new Agent('en'), { ...base, password: 'password1', password_confirm: 'password1' });
    expect(breached.status).toBe(400);
    expect(breached.body).toContain('too common or has appeared in a data breach');
    expect(breached.body).toMatch(/<input id="password"[^>]*aria-describedby="password-hint password-error"[^>]*aria-invalid="true"/);
    expect(breached.body).toContain('<a href="#password">');
    // What the citizen typed is kept, except the passwords.
    expect(breached.body).toContain(`value="${email}"`);
    expect(breached.body).not.toContain('value="password1"');

    const short = await register(new Agent('sr-Latn'), { ...base, password: 'kratka', password_confirm: 'kratka' });
    expect(short.status).toBe(400);
    expect(short.body).toContain('Lozinka mora da ima najmanje 8 znakova.');
    const mismatch = await register(new Agent('en'), { ...base, password: 'dugacka fraza jedan', password_confirm: 'dugacka fraza dva' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body).toMatch(/<input id="password_confirm"[^>]*aria-invalid="true"/);

    expect(await server.kapija.accounts.findByUsername(username)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.to(email)).toHaveLength(0);
  });

  test('refuses a form without its CSRF token', async () => {
    const agent = new Agent('en');
    await agent.request(new URL('/register', server.url));
    const res = await agent.request(new URL('/register', server.url), { form: { username: 'x', email: 'x@example.rs' } });
    expect(res.status).toBe(403);
  });
});

describe('password reset', () => {
  test('by a mailed single-use link: the same answer for unknown names, a new password with the same rules, every session and token ended', async () => {
    const citizen = await createTestAccount(server.kapija, { email: `reset.${unique()}@example.rs` });
    const { config, url, verifier } = await relyingParty();
    const agent = new Agent('en');
    const callback = await signIn(agent, url, REDIRECT, citizen);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    expect(tokens.refresh_token).toBeTruthy();

    const ask = async (identifier: string) => {
      const a = new Agent('en');
      const form = await a.request(new URL('/recover', server.url));
      return submitForm(a, form, /^\/recover$/, { identifier });
    };
    const unknown = await ask(`nobody.${unique()}`);
    const known = await ask(citizen.account.email!);
    expect([unknown.status, known.status]).toEqual([200, 200]);
    expect(mainOf(known.body)).toBe(mainOf(unknown.body));

    const mail = await smtp.waitFor(citizen.account.email!, (m) => /лозинка/.test(m.subject));
    // The citizen's own language (sr-Cyrl), not the page's.
    expect(mail.language).toBe('sr-Cyrl');
    expect(mail.subject).toBe('Нова лозинка за Капију');
    const link = linkIn(mail, `${server.url}/recover/reset?token=`);

    const form = await agent.request(link);
    expect(form.status).toBe(200);
    const weak = await submitForm(agent, form, /^\/recover\/reset$/, { token: hiddenField(form.body, 'token')!, password: 'qwertyuiop', password_confirm: 'qwertyuiop' });
    expect(weak.status).toBe(400);
    const newPassword = `nova ${unique()} lozinka`;
    const done = await submitForm(agent, form, /^\/recover\/reset$/, { token: hiddenField(form.body, 'token')!, password: newPassword, password_confirm: newPassword });
    expect(done.status).toBe(200);
    expect(done.body).toContain('Your password is changed');

    // Single use.
    expect((await agent.request(link)).status).toBe(400);
    // Every session and token ended.
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
    // The old password no longer works; the new one does.
    const next = await relyingParty();
    await expect(signIn(new Agent('en'), next.url, REDIRECT, citizen)).rejects.toThrow(/login failed with status 401/);
    const cb = await signIn(new Agent('en'), next.url, REDIRECT, { ...citizen, password: newPassword });
    expect(cb.searchParams.get('code')).toBeTruthy();
    // And the owner is told, with a "this wasn't me" link.
    const notice = await smtp.waitFor(citizen.account.email!, (m) => m.subject === 'Лозинка вашег налога на Капији је промењена');
    expect(notice.text).toContain('Промењена је преко везе послате на ову адресу, и све сесије су окончане.');
    expect(linkIn(notice, `${server.url}/not-me?token=`).searchParams.get('token')).toBeTruthy();
  });

  test('is throttled per name or address: the sixth request within 15 minutes waits', async () => {
    const target = `throttled.${unique()}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const a = new Agent('en');
      const form = await a.request(new URL('/recover', server.url));
      const res = await submitForm(a, form, /^\/recover$/, { identifier: i % 2 ? target.toUpperCase() : target });
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });

  test('a forged or expired link is refused', async () => {
    const res = await new Agent('en').request(new URL(`/recover/reset?token=${'A'.repeat(43)}`, server.url));
    expect(res.status).toBe(400);
    expect(res.body).toContain('already used or has expired');
  });
});

describe('e-mail change', () => {
  test('requestEmailChange mails the new address; the link switches the address and tells the old one', async () => {
    const citizen = await createTestAccount(server.kapija, { email: `stara.${unique()}@example.rs` });
    const newEmail = `nova.${unique()}@example.rs`;
    await server.kapija.registrationAndRecovery.requestEmailChange(citizen.account.id, newEmail, 'sr-Latn');
    const mail = await smtp.waitFor(newEmail, (m) => m.subject === 'Potvrdite novu adresu e-pošte za Kapiju');
    expect((await server.kapija.accounts.findById(citizen.account.id))?.email).toBe(citizen.account.email);
    const agent = new Agent('sr-Latn');
    const confirm = await agent.request(linkIn(mail, `${server.url}/verify-email?token=`));
    const done = await submitForm(agent, confirm, /^\/verify-email$/, { token: hiddenField(confirm.body, 'token')! });
    expect(done.status).toBe(200);
    expect(await server.kapija.accounts.findById(citizen.account.id)).toMatchObject({ email: newEmail, emailVerified: true });
    const notice = await smtp.waitFor(citizen.account.email!, (m) => /промењена|promenjena/.test(m.subject));
    expect(notice.text).toContain('/not-me?token=');
  });
});
