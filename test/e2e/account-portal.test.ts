/**
 * The account portal, signed in through Kapija itself: sessions with device and place, signing out
 * another session (its refresh token then fails), connected services and withdrawing consent,
 * second factors (the last one cannot be removed; changes need a recent sign-in), export, deletion.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { simpleParser } from 'mailparser';
import { startLogoutReceiver } from '../support/logout-receiver.js';
import { Agent, type Page } from '../support/browserless.js';
import { openPortal, signIn, submitForm } from '../support/sign-in.js';
import { nextTotpCode } from '../support/totp.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const server = kapijaForSuite();

type Citizen = Awaited<ReturnType<typeof createTestAccount>>;

/** Opens /account in `agent`, signing in through Kapija if needed; returns the portal page. */
const portal = (agent: Agent, citizen: Citizen, path = '/account'): Promise<Page> => openPortal(agent, server.url, citizen, path);

/** Waits for a mail in the development outbox matching `match` (mail leaves after the answer). */
async function outboxMail(match: (m: { subject: string; to: string; text: string }) => boolean) {
  const outbox = path.join(server.kapija.config.dataDir, 'outbox');
  for (let i = 0; i < 50; i += 1) {
    const files = fs.existsSync(outbox) ? fs.readdirSync(outbox) : [];
    for (const f of files) {
      const parsed = await simpleParser(fs.readFileSync(path.join(outbox, f)));
      const to = Array.isArray(parsed.to) ? parsed.to[0]?.text : parsed.to?.text;
      const mail = { subject: parsed.subject ?? '', to: to ?? '', text: parsed.text ?? '' };
      if (match(mail)) return mail;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no such mail in the outbox');
}

async function rpSignIn(agent: Agent, citizen: Citizen, rp: { clientId: string; clientSecret?: string | undefined }, scope = 'openid offline_access') {
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope,
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const cb = await signIn(agent, url, REDIRECT, citizen);
  return { config, tokens: await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier }) };
}

test('the portal needs a sign-in through Kapija, shows the profile, and asks no consent for itself', async () => {
  const citizen = await createTestAccount(server.kapija, { givenName: 'Милица', familyName: 'Милић' });
  const agent = new Agent('sr-Cyrl');
  const first = await agent.request(new URL('/account', server.url));
  expect(first.status).toBe(303);
  const auth = new URL(first.headers.get('location')!);
  expect(auth.pathname).toBe('/auth');
  expect(auth.searchParams.get('client_id')).toBe('kapija-account');
  expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
  const page = await portal(agent, citizen);
  expect(page.body).toContain('Милица Милић');
  expect(page.body).toContain(citizen.username);
  expect(page.body).toContain('lang="sr-Cyrl"');
  // a forged callback is refused
  const forged = await new Agent().request(new URL('/account/callback?code=abc&state=xyz', server.url));
  expect(forged.status).toBe(400);
});

test('another session is listed with device and place, and signing it out ends its tokens and tells the service', async () => {
  const citizen = await createTestAccount(server.kapija);
  const receiver = await startLogoutReceiver();
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true });
  const phone = new Agent('en');
  const { config, tokens } = await rpSignIn(phone, citizen, rp);
  const laptop = new Agent('en');
  const sessionsPage = await portal(laptop, citizen, '/account/sessions');
  const uids = [...sessionsPage.body.matchAll(/data-session-uid="([^"]+)"/g)].map((m) => m[1]);
  expect(uids).toHaveLength(2);
  expect(sessionsPage.body).toContain('This browser');
  expect(sessionsPage.body).toContain('127.0.0.1');
  const phoneUid = (await server.kapija.sessions.listForAccount(citizen.account.id)).find((s) => s.clients.some((c) => c.clientId === rp.clientId))!.uid!;
  const ended = await submitForm(laptop, sessionsPage, /\/account\/sessions\/end$/, { uid: phoneUid });
  expect(ended.status).toBe(303);
  expect(ended.headers.get('location')).toBe('/account/sessions');
  await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  // the service received a back-channel logout token for that session, signed by Kapija
  expect(receiver.tokens).toHaveLength(1);
  const { payload } = await jwtVerify(receiver.tokens[0]!, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: rp.clientId });
  expect(payload.sid).toBe(tokens.claims()!.sid);
  await receiver.close();
  const after = await portal(laptop, citizen, '/account/sessions');
  expect([...after.body.matchAll(/data-session-uid="([^"]+)"/g)]).toHaveLength(1);
});

test('connected services list what each service receives; withdrawing consent revokes its tokens', async () => {
  const citizen = await createTestAccount(server.kapija);
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], client_name: 'Poreska uprava' });
  const agent = new Agent('en');
  const { config, tokens } = await rpSignIn(agent, citizen, rp, 'openid email offline_access');
  const services = await portal(agent, citizen, '/account/services');
  expect(services.body).toContain('Poreska uprava');
  expect(services.body).toContain('Your e-mail address');
  expect(services.body).not.toContain('data-revoke="kapija-account"');
  const revoked = await submitForm(agent, services, /\/account\/services\/revoke$/, { client_id: rp.clientId });
  expect(revoked.status).toBe(303);
  await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await portal(agent, citizen, '/account/services')).body).not.toContain('Poreska uprava');
});

test('the only second factor cannot be removed; a second one can, after a recent sign-in', async () => {
  const citizen = await createTestAccount(server.kapija);
  const agent = new Agent('en');
  const security = await portal(agent, citizen, '/account/security');
  const [totpId] = [...security.body.matchAll(/data-remove-factor="([^"]+)"/g)].map((m) => m[1]);
  const refused = await submitForm(agent, security, /\/account\/security\/remove$/, { id: totpId! });
  expect(refused.status).toBe(409);
  expect(refused.body).toContain('only second factor');
  expect(await server.kapija.credentials.enrolledTypes(citizen.account.id)).toContain('totp');

  // add a second authenticator app: not active until a correct code
  const setup = await agent.request(new URL('/account/security/totp', server.url));
  expect(setup.status).toBe(200);
  const secret = /data-totp-secret>([A-Z2-7 ]+)</.exec(setup.body)![1]!.replace(/ /g, '');
  const wrong = await submitForm(agent, setup, /\/account\/security\/totp$/, { code: '12', name: 'Tablet' });
  expect(wrong.status).toBe(401);
  const added = await submitForm(agent, setup, /\/account\/security\/totp$/, { code: await nextTotpCode(secret), name: 'Tablet' });
  expect(added.status).toBe(303);
  const withTwo = await portal(agent, citizen, '/account/security');
  expect(withTwo.body).toContain('Tablet');
  const removed = await submitForm(agent, withTwo, /\/account\/security\/remove$/, { id: totpId! });
  expect(removed.status).toBe(303);
  const left = await server.kapija.credentials.list(citizen.account.id, 'totp');
  expect(left.map((c) => c.name)).toEqual(['Tablet']);
});

test('export holds the profile and no secret; deletion erases personal data and ends every session', async () => {
  const citizen = await createTestAccount(server.kapija, { email: 'brisanje@example.rs' });
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  const agent = new Agent('en');
  const { config, tokens } = await rpSignIn(agent, citizen, rp);
  await portal(agent, citizen, '/account/data');
  const exported = await agent.request(new URL('/account/data/export.json', server.url), { headers: { accept: 'application/json' } });
  expect(exported.status).toBe(200);
  const data = JSON.parse(exported.body) as { account: { email: string }; factors: Record<string, unknown>[]; consents: unknown[] };
  expect(data.account.email).toBe('brisanje@example.rs');
  expect(data.factors.map((f) => f['type']).sort()).toEqual(['recovery', 'recovery', 'recovery', 'recovery', 'recovery', 'recovery', 'recovery', 'recovery', 'recovery', 'recovery', 'totp']);
  expect(exported.body).not.toMatch(/secret|password|argon2|publicKey/i);
  expect(data.consents.length).toBeGreaterThan(0);

  const dataPage = await portal(agent, citizen, '/account/data');
  const mismatch = await submitForm(agent, dataPage, /\/account\/delete$/, { confirm: 'someone-else' });
  expect(mismatch.status).toBe(400);
  const deleted = await submitForm(agent, dataPage, /\/account\/delete$/, { confirm: citizen.username });
  expect(deleted.status).toBe(303);
  expect(deleted.headers.get('location')).toBe('/account/deleted');
  const account = await server.kapija.accounts.findById(citizen.account.id);
  expect(account).toMatchObject({ status: 'deleted', email: null, givenName: null, familyName: null, birthdate: null });
  expect(account!.username).not.toContain(citizen.username);
  expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
  expect(await server.kapija.credentials.list(citizen.account.id)).toEqual([]);
  await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  // and the deleted citizen cannot sign in any more
  const again = await agent.request(new URL('/account', server.url));
  expect(again.status).toBe(303);
});

test('the ledger shows which service received which data, when and how; it can be downloaded; tampering shows', async () => {
  const citizen = await createTestAccount(server.kapija);
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], client_name: 'Katastar' });
  const agent = new Agent('en');
  const { config, tokens } = await rpSignIn(agent, citizen, rp, 'openid email');
  await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);

  const activity = await portal(agent, citizen, '/account/activity');
  expect(activity.body).toContain('data-ledger-verified="yes"');
  const rows = [...activity.body.matchAll(/<tr>\s*<td><time[^>]*>[^<]*<\/time><\/td>\s*<td>([^<]*)<\/td>\s*<td>([^<]*)<\/td>\s*<td>([^<]*)/g)].map((m) => [m[1], m[2], m[3]!.trim()]);
  expect(rows).toContainEqual(['Data sent to the service', 'Katastar', expect.stringContaining('Your e-mail address')]);
  expect(rows).toContainEqual(['Signed in', 'Katastar', '']);
  expect(rows).toContainEqual(['Consent given', 'Katastar', expect.stringContaining('Your e-mail address')]);

  const exported = (JSON.parse((await agent.request(new URL('/account/activity/export', server.url))).body) as { entries: { action: string; client_id: string; details: { channel?: string; claims?: string[] }; hash: string }[] }).entries;
  const userinfo = exported.find((e) => e.action === 'ledger.data_released' && e.details.channel === 'userinfo')!;
  expect(userinfo).toMatchObject({ client_id: rp.clientId, details: { claims: ['email', 'email_verified', 'sub'] } });
  expect(userinfo.hash).toMatch(/^[0-9a-f]{64}$/);
  const csv = await agent.request(new URL('/account/activity/export?format=csv', server.url));
  expect(csv.headers.get('content-type')).toContain('text/csv');
  expect(csv.body.split('\r\n')[0]).toBe('time,id,chain,seq,at,actor,action,subject_account_id,client_id,service_name,ip,details,prev_hash,hash');
  // no personal data in the ledger itself: claim names only, no IP
  expect(JSON.stringify(exported)).not.toContain(citizen.account.email!);
  expect(JSON.stringify(exported)).not.toContain('127.0.0.1');

  // an entry changed in the database is detected
  await server.kapija.db('audit_events').where({ chain: `account:${citizen.account.id}`, seq: 1 }).update({ details: '{"forged":true}' });
  expect((await portal(agent, citizen, '/account/activity')).body).toContain('data-ledger-verified="no"');
});

test('changing the password needs the current one and a good new one, and ends every other session; an e-mail change sends a link to the new address', async () => {
  const citizen = await createTestAccount(server.kapija);
  // Signed in elsewhere too: a service on another device, with a back-channel logout endpoint.
  const receiver = await startLogoutReceiver();
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true });
  const elsewhere = new Agent('en');
  const { config, tokens } = await rpSignIn(elsewhere, citizen, rp);
  const agent = new Agent('en');
  const profile = await portal(agent, citizen, '/account/profile');
  expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toHaveLength(2);
  expect(profile.body).toContain('autocomplete="current-password"');
  expect(profile.body).toContain('autocomplete="new-password"');
  const wrong = await submitForm(agent, profile, /\/account\/password$/, { current_password: 'not-it', new_password: 'a fresh long passphrase', new_password_confirm: 'a fresh long passphrase' });
  expect(wrong.status).toBe(400);
  expect(wrong.body).toContain('current password is not correct');
  const common = await submitForm(agent, profile, /\/account\/password$/, { current_password: citizen.password, new_password: 'password123', new_password_confirm: 'password123' });
  expect(common.status).toBe(400);
  const changed = await submitForm(agent, profile, /\/account\/password$/, { current_password: citizen.password, new_password: 'a fresh long passphrase', new_password_confirm: 'a fresh long passphrase' });
  expect(changed.status).toBe(303);
  const creds = await server.kapija.accounts.findCredentialsByUsername(citizen.username);
  expect(await server.kapija.passwords.verify(creds!.passwordHash, 'a fresh long passphrase')).toBe(true);
  expect(await server.kapija.passwords.verify(creds!.passwordHash, citizen.password)).toBe(false);
  // The other session is over: its service was told and its refresh token no longer works.
  expect(receiver.tokens).toHaveLength(1);
  const { payload } = await jwtVerify(receiver.tokens[0]!, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: rp.clientId });
  expect(payload.sid).toBe(tokens.claims()!.sid);
  await receiver.close();
  await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  // This browser stays signed in and says what happened.
  const remaining = await server.kapija.sessions.listForAccount(citizen.account.id);
  expect(remaining).toHaveLength(1);
  const after = await agent.request(new URL(changed.headers.get('location')!, server.url));
  expect(after.status).toBe(200);
  expect(after.body).toContain('every other session has been ended');
  // The notice to the citizen's address (in the account's language) tells how it was changed and what was ended.
  const notice = await outboxMail((m) => m.subject === 'Лозинка вашег налога на Капији је промењена' && m.to === citizen.account.email);
  expect(notice.text).toContain('Промењена је на страници налога, и све остале сесије су окончане.');

  const outbox = path.join(server.kapija.config.dataDir, 'outbox');
  const before = fs.existsSync(outbox) ? fs.readdirSync(outbox).length : 0;
  const email = await submitForm(agent, profile, /\/account\/email$/, { email: 'nova.adresa@example.rs' });
  expect(email.status).toBe(303);
  // mail leaves after the answer (the same timing whatever the address): wait for it
  const sent = (m: string) => /^To: .*nova\.adresa@example\.rs/m.test(m) && m.includes('/verify-email?token=');
  let mails: string[] = [];
  for (let i = 0; i < 50 && !mails.some(sent); i += 1) {
    await new Promise((r) => setTimeout(r, 100));
    mails = fs.readdirSync(outbox).map((f) => fs.readFileSync(path.join(outbox, f), 'utf8'));
  }
  expect(mails.length).toBeGreaterThan(before);
  expect(mails.some(sent)).toBe(true);
  // the old address stays until the link is followed
  expect((await server.kapija.accounts.findById(citizen.account.id))!.email).toBe(citizen.account.email);
});
