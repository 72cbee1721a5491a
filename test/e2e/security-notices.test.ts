/**
 * Security notices by mail (received by a real SMTP server): a sign-in from a new browser is
 * announced in the citizen's language, a known one is not; the notice's "this wasn't me" link,
 * after a second factor, ends every session, revokes every grant and token, delivers back-channel
 * logout, and shows a receipt of what was ended and which services confirmed.
 */
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { signIn, submitForm } from '../support/sign-in.js';
import { startSmtp, linkIn, type TestSmtp } from '../support/smtp.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { startLogoutReceiver, type LogoutReceiver } from '../support/logout-receiver.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
let smtp: TestSmtp;
let server: RunningKapija;
let receiver: LogoutReceiver;


beforeAll(async () => {
  smtp = await startSmtp();
  receiver = await startLogoutReceiver();
  server = await startKapija({ env: { SMTP_URL: smtp.url } });
});
afterAll(async () => {
  await server?.stop();
  await receiver?.close();
  await smtp?.close();
});

async function service() {
  const rp = await createTestClient(server.kapija, {
    client_name: 'Poreska uprava',
    redirect_uris: [REDIRECT],
    backchannel_logout_uri: receiver.url,
    backchannel_logout_session_required: true,
  });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  return { rp, config };
}

async function signInWith(agent: Agent, config: oidc.Configuration, citizen: Awaited<ReturnType<typeof createTestAccount>>) {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid offline_access',
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const callback = await signIn(agent, url, REDIRECT, citizen);
  return oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
}

const NEW_DEVICE_SR = 'Нова пријава на ваш налог на Капији';

test('a new browser is announced and a known one is not; "this wasn\'t me" ends everything after a second factor', async () => {
  const citizen = await createTestAccount(server.kapija, { email: `obavestenje.${Date.now()}@example.rs` });
  const address = citizen.account.email!;
  const { rp, config } = await service();

  // First sign-in ever, from the citizen's own browser: nothing to report.
  const own = new Agent('en');
  const first = await signInWith(own, config, citizen);
  expect(own.jar.get('kapija.device')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  // The same browser again: still nothing.
  await signInWith(own, config, citizen);
  await new Promise((r) => setTimeout(r, 300));
  expect(smtp.to(address).filter((m) => m.subject === NEW_DEVICE_SR)).toHaveLength(0);

  // Another browser: a notice, in the citizen's language (sr-Cyrl), with a "this wasn't me" link.
  const other = new Agent('en');
  const second = await signInWith(other, config, citizen);
  const notice = await smtp.waitFor(address, (m) => m.subject === NEW_DEVICE_SR);
  expect(notice.language).toBe('sr-Cyrl');
  expect(notice.text).toContain('127.0.0.1');
  expect(notice.html).toContain('<html lang="sr-Cyrl">');
  expect(smtp.to(address).filter((m) => m.subject === NEW_DEVICE_SR)).toHaveLength(1);
  const notMe = linkIn(notice, `${server.url}/not-me?token=`);

  const victim = new Agent('en');
  const form = await victim.request(notMe);
  expect(form.status).toBe(200);
  expect(form.body).toMatch(/<label for="code">/);
  const token = hiddenField(form.body, 'token')!;

  // A wrong code changes nothing.
  const wrong = await submitForm(victim, form, /^\/not-me$/, { token, code: 'AAAA-BBBB-CCCC' });
  expect(wrong.status).toBe(401);
  expect(wrong.body).toMatch(/aria-invalid="true"/);
  expect((await server.kapija.sessions.listForAccount(citizen.account.id)).length).toBe(2);
  expect(receiver.tokens).toHaveLength(0);

  // A recovery code proves the second factor: everything ends.
  const receipt = await submitForm(victim, form, /^\/not-me$/, { token, code: citizen.recoveryCodes[0]! });
  expect(receipt.status).toBe(200);
  expect(receipt.body).toContain('You are signed out everywhere');
  expect(receipt.body).toContain('Sessions ended: 2');
  expect(receipt.body).toMatch(new RegExp(`data-client="${rp.clientId}" data-backchannel="delivered">Poreska uprava: confirmed`));

  expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
  expect(await server.kapija.payloads.listByAccount(citizen.account.id, 'Grant')).toEqual([]);
  for (const tokens of [first, second]) {
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  }
  expect((await oidc.tokenIntrospection(config, second.access_token)).active).toBe(false);
  // Back-channel logout reached the service for both sessions.
  expect(receiver.tokens.length).toBe(2);
  const sids = new Set(receiver.tokens.map((t) => decodeJwt(t).sid));
  expect(sids.size).toBe(2);
  expect(receiver.tokens.every((t) => decodeJwt(t).aud === rp.clientId)).toBe(true);

  // The link worked once.
  expect((await victim.request(notMe)).status).toBe(400);
});

test('a removed second factor is announced; enrolment before the first sign-in is not', async () => {
  const citizen = await createTestAccount(server.kapija, { email: `faktor.${Date.now()}@example.rs`, totp: false });
  const address = citizen.account.email!;
  // Enrolled before any sign-in (as the first sign-in does): no notice.
  await server.kapija.events.emit('factor.enrolled', { accountId: citizen.account.id, type: 'totp', ip: '127.0.0.1' });
  await new Promise((r) => setTimeout(r, 200));
  expect(smtp.to(address)).toHaveLength(0);
  // After a sign-in, a change is news.
  await server.kapija.events.emit('signin.success', {
    accountId: citizen.account.id, clientId: 'x', acr: 'a', amr: ['pwd'], ip: '127.0.0.1', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', deviceId: 'device-1',
  });
  await server.kapija.events.emit('factor.removed', { accountId: citizen.account.id, type: 'webauthn', ip: '127.0.0.1' });
  const removed = await smtp.waitFor(address, (m) => m.subject === 'Други фактор вашег налога на Капији је промењен');
  expect(removed.text).toContain('безбедносни кључ или приступни кључ (уклоњен)');
  expect(removed.text).toContain('/not-me?token=');
});

test('a recovery code used to sign in is announced to its owner with the codes left; a TOTP sign-in is not', async () => {
  const citizen = await createTestAccount(server.kapija, { email: `oporavak.${Date.now()}@example.rs` });
  const address = citizen.account.email!;
  const { config } = await service();
  const RECOVERY_USED_SR = 'Код за опоравак вашег налога на Капији је искоришћен';

  await signInWith(new Agent('en'), config, citizen);
  await new Promise((r) => setTimeout(r, 300));
  expect(smtp.to(address).filter((m) => m.subject === RECOVERY_USED_SR)).toHaveLength(0);

  // Password, then a recovery code instead of the authenticator app.
  const agent = new Agent('en');
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const login = (await agent.follow(await agent.request(url), (u) => u.href.startsWith(REDIRECT))) as Page;
  const factor = (await agent.follow(await submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password }), (u) => u.href.startsWith(REDIRECT))) as Page;
  const form = await agent.request(new URL(`${factor.url.pathname}?method=recovery`, factor.url));
  expect((await submitForm(agent, form, /\/recovery$/, { code: citizen.recoveryCodes[0]! })).status).toBe(303);

  const notice = await smtp.waitFor(address, (m) => m.subject === RECOVERY_USED_SR);
  expect(notice.language).toBe('sr-Cyrl');
  expect(notice.text).toContain('Преосталих кодова за опоравак: 9');
  expect(notice.text).toMatch(/Адреса \(ИП\): \S*127\.0\.0\.1/);
  expect(linkIn(notice, `${server.url}/not-me?token=`).searchParams.get('token')).toBeTruthy();
  expect(notice.text).not.toContain(citizen.recoveryCodes[0]!);
  expect(smtp.to(address).filter((m) => m.subject === RECOVERY_USED_SR)).toHaveLength(1);
});
