/**
 * Attack cases against identity proofing: factors that pretend to say who the citizen is, a
 * self-asserted national identifier, registrars working on themselves, activation codes replayed,
 * expired, stolen or guessed, duplicate identities, revocation, and verified claims the citizen did
 * not consent to. Each case is named after the rule it checks.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { confirmLogout, openPortal, signIn, submitForm } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg } from '../support/kapija.js';
import { SoftAuthenticator } from '../support/soft-authenticator.js';
import type { ProofingInput } from '../../src/identity/service.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { identityRevoke } from '../../src/cli/identity.js';
import { openHandles } from '../../src/app.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { en } from '../../src/i18n/messages/en.js';
import { srCyrl } from '../../src/i18n/messages/sr-Cyrl.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const ACR = { low: 'http://eidas.europa.eu/LoA/low', substantial: 'http://eidas.europa.eu/LoA/substantial', high: 'http://eidas.europa.eu/LoA/high' };
const KEY_AAGUID = '6b617069-6a61-4b00-8000-000000000001';
const VERIFIER = 'a-fixed-pkce-verifier-for-the-identity-tests-0123456789';
const PKCE = { code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'), code_challenge_method: 'S256' };
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);

const server = kapijaForSuite({ env: { WEBAUTHN_HWK_AAGUIDS: KEY_AAGUID } });
let rp: { clientId: string; clientSecret?: string | undefined };
beforeAll(async () => {
  rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile email jmbg offline_access' });
});

function authorize(extra: Record<string, string> = {}, client = rp): URL {
  const u = new URL('/auth', server.url);
  u.search = new URLSearchParams({ client_id: client.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, ...PKCE, ...extra }).toString();
  return u;
}

async function tokens(callback: URL, client = rp) {
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code: ${callback.href}`);
  const basic = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret!}`).toString('base64')}`;
  const res = await fetch(new URL('/token', server.url), { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: VERIFIER }) });
  const body = (await res.json()) as { id_token: string; access_token: string };
  const userinfo = (await (await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${body.access_token}` } })).json()) as Record<string, unknown>;
  return { idToken: decodeJwt(body.id_token), userinfo };
}

/** A proofing as a registrar's document check records it. */
function check(registrarId: string, attributes: ProofingInput['attributes'] = {}, level: ProofingInput['level'] = 'high'): ProofingInput {
  const jmbg = attributes.jmbg ?? uniqueJmbg();
  return {
    method: 'in_person',
    level,
    verifier: registrarId,
    office: 'Policijska uprava Novi Sad',
    evidence: { type: 'document', documentType: 'idcard', issuingCountry: 'RS', documentNumber: `00${jmbg.slice(7)}`, expiry: '2032-06-01' },
    attributes: { givenNameCyrl: 'Јелена', familyNameCyrl: 'Јовић', givenNameLatn: 'Jelena', familyNameLatn: 'Jović', birthdate: `1${jmbg.slice(4, 7)}-${jmbg.slice(2, 4)}-${jmbg.slice(0, 2)}`, ...attributes, jmbg },
  };
}

async function registrar() {
  const r = await createTestAccount(server.kapija);
  await createRegistrarRoles(server.kapija.repos).grant(r.account.id, 'test');
  return r;
}

/** A citizen whose only second factor is a device-bound security key. */
async function citizenWithKey(identity: 'none' | 'high' = 'none') {
  const citizen = await createTestAccount(server.kapija, { totp: false, identity });
  const key = new SoftAuthenticator({ aaguid: KEY_AAGUID, attestation: { format: 'none' } }, server.url, new URL(server.url).hostname);
  const options = await server.kapija.webauthn.registrationOptions(citizen.account.id, citizen.username);
  await server.kapija.webauthn.register(citizen.account.id, options.challenge, key.register(options), 'Key');
  return { ...citizen, key };
}

const postJson = (agent: Agent, path: string, csrf: string, body: unknown) => agent.postJson(new URL(path, server.url), csrf, body);

/** Password and security key, then consent: the callback or the page Kapija stops at. */
async function signInWithKey(agent: Agent, citizen: Awaited<ReturnType<typeof citizenWithKey>>, url: URL): Promise<URL | Page> {
  const login = await agent.follow(await agent.request(url), isCallback);
  if (login instanceof URL) return login;
  const uid = /\/interaction\/([^/?]+)/.exec(login.url.pathname)![1]!;
  const answer = await submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password });
  const second = await agent.follow(answer, isCallback);
  if (second instanceof URL) return second;
  const csrf = hiddenField(second.body, '_csrf') ?? /data-csrf="([^"]+)"/.exec(second.body)?.[1] ?? '';
  const challenge = await postJson(agent, `/interaction/${uid}/webauthn/options`, csrf, { purpose: 'login' });
  const done = await postJson(agent, `/interaction/${uid}/webauthn`, csrf, { response: citizen.key.assert(challenge.json as { challenge: string }) });
  let step = await agent.follow(await agent.request(new URL(String(done.json.location), server.url)), isCallback);
  if (!(step instanceof URL) && /\/confirm"/.test(step.body)) step = await agent.follow(await submitForm(agent, step, /\/confirm$/, {}), isCallback);
  return step;
}

/** The /activate form, filled in. */
async function activate(agent: Agent, fields: { username: string; code: string; password: string }) {
  const page = await agent.request(new URL('/activate?lang=en', server.url));
  return submitForm(agent, page, /\/activate$/, fields);
}

describe('honest levels', () => {
  test('eIDAS 2015/1502 §2.1: an unverified citizen with a security key is asserted low, whatever the factors', async () => {
    const citizen = await citizenWithKey('none');
    const cb = await signInWithKey(new Agent(), citizen, authorize());
    expect(cb).toBeInstanceOf(URL);
    const { idToken } = await tokens(cb as URL);
    expect(idToken.acr).toBe(ACR.low);
    expect(idToken.amr).toEqual(expect.arrayContaining(['pwd', 'hwk']));
  });

  test('the same citizen proofed at high is asserted high with the same key (the rule is the lower of the two)', async () => {
    const citizen = await citizenWithKey('high');
    const { idToken } = await tokens((await signInWithKey(new Agent(), citizen, authorize())) as URL);
    expect(idToken.acr).toBe(ACR.high);
  });

  test.each([
    ['en', en],
    ['sr-Latn', srLatn],
    ['sr-Cyrl', srCyrl],
  ] as const)('OpenID Connect Core 3.1.2.6: a service needing substantial gets the explanatory page (%s), then unmet_authentication_requirements', async (locale, m) => {
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const agent = new Agent(locale);
    let page = (await agent.follow(await agent.request(authorize({ acr_values: ACR.substantial, ui_locales: locale })), isCallback)) as Page;
    page = (await agent.follow(await submitForm(agent, page, /\/login$/, { username: citizen.username, password: citizen.password }), isCallback)) as Page;
    const { nextTotpCode } = await import('../support/totp.js');
    page = (await agent.follow(await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) }), isCallback)) as Page;
    expect(page.body).toContain(m['identity.heading']);
    expect(page.body).toContain(m['identity.counter']);
    expect(page.body).toContain(m['identity.card']);
    const end = await agent.follow(await submitForm(agent, page, /\/identity$/, {}), isCallback);
    expect(end).toBeInstanceOf(URL);
    expect((end as URL).searchParams.get('error')).toBe('unmet_authentication_requirements');
    expect((end as URL).searchParams.get('code')).toBeNull();
  });

  test('after counter proofing with an activation code, "continue" on the same page finishes at substantial', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const agent = new Agent('en');
    let page = (await agent.follow(await agent.request(authorize({ acr_values: ACR.substantial })), isCallback)) as Page;
    page = (await agent.follow(await submitForm(agent, page, /\/login$/, { username: citizen.username, password: citizen.password }), isCallback)) as Page;
    const { nextTotpCode } = await import('../support/totp.js');
    page = (await agent.follow(await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) }), isCallback)) as Page;
    expect(page.body).toContain(en['identity.heading']);
    // Meanwhile, at the counter and on /activate:
    const { code } = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: citizen.account.id });
    const done = await activate(new Agent('en'), { username: citizen.username, code, password: citizen.password });
    expect(done.status).toBe(200);
    expect(done.body).toContain(en['activate.done']);
    let step = await agent.follow(await submitForm(agent, page, /\/identity$/, {}), isCallback);
    if (!(step instanceof URL)) step = await agent.follow(await submitForm(agent, step, /\/confirm$/, {}), isCallback);
    const { idToken } = await tokens(step as URL);
    expect(idToken.acr).toBe(ACR.substantial);
  });
});

describe('Kapija’s own pages', () => {
  test('an unverified citizen still changes their password in the account portal: both factors, proven recently, are what a change needs', async () => {
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const agent = new Agent('en');
    const profile = await openPortal(agent, server.url, citizen, '/account/profile');
    const overview = await agent.request(new URL('/account', server.url));
    expect(overview.body).toContain(en['account.identity.none']);
    const changed = await submitForm(agent, profile, /\/account\/password$/, { current_password: citizen.password, new_password: 'a new long passphrase', new_password_confirm: 'a new long passphrase' });
    expect(changed.status).toBe(303);
    expect(changed.headers.get('location')).toBe('/account/profile?done=password');
  });

  test('/account shows what was verified, by which office and when, never the officer', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id), { actor: officer.account.id });
    const page = await openPortal(new Agent('en'), server.url, citizen);
    expect(page.body).toContain(en['account.identity.heading']);
    expect(page.body).toContain('Policijska uprava Novi Sad');
    expect(page.body).toContain(en['identity.method.in_person']);
    expect(page.body).toContain('Јелена Јовић');
    expect(page.body).not.toContain(officer.account.id);
    expect(page.body).not.toContain(officer.username);
  });
});

describe('the citizen’s rights', () => {
  test('GDPR Art. 15 / 17: the export carries the verified identity; deleting the account erases it and frees the JMBG', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const jmbg = uniqueJmbg();
    await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id, { jmbg }), { actor: officer.account.id });
    const agent = new Agent('en');
    const data = await openPortal(agent, server.url, citizen, '/account/data');
    const exported = await agent.request(new URL('/account/data/export.json', server.url));
    const body = JSON.parse(exported.body) as { verified_identity: { level: string; office: string; attributes: { jmbg: string } } };
    expect(body.verified_identity).toMatchObject({ level: 'high', office: 'Policijska uprava Novi Sad', attributes: { jmbg } });
    expect(exported.body).not.toContain(officer.account.id);
    const deleted = await submitForm(agent, data, /\/account\/delete$/, { confirm: citizen.username });
    expect(deleted.status).toBeLessThan(400);
    expect(await server.kapija.db('verified_identities').where({ account_id: citizen.account.id }).first()).toBeUndefined();
    expect(await server.kapija.identity.findAccountByVerifiedJmbg(jmbg)).toBeUndefined();
  });

  test('a registrar reading a verified identity through the API is in the citizen’s ledger as an administrator’s read', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id), { actor: officer.account.id });
    const script = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid kapija:admin' });
    const client = await server.kapija.provider.Client.find(script.clientId);
    const token = await new server.kapija.provider.AccessToken({ accountId: officer.account.id, client, scope: 'openid kapija:admin', grantId: 'test-grant', extra: { acr: ACR.high, auth_time: Math.floor(Date.now() / 1000) } } as never).save();
    const read = await request(server.kapija.app.callback()).get(`/admin/api/registrar/identities/${citizen.account.id}`).set('authorization', `Bearer ${token}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ level: 'high', method: 'in_person' });
    expect(JSON.stringify(read.body)).not.toContain('document_number');
    const reads = await server.kapija.audit.list({ chain: 'admin', action: 'admin.citizen.identity_viewed', subject: citizen.account.id });
    expect(reads.map((e) => e.actor)).toEqual([officer.account.id]);
  });
});

describe('the national identifier', () => {
  test('GDPR Art. 5(1)(d): a self-asserted jmbg (the old profile column) is never released; only a verified one is', async () => {
    const jmbg = uniqueJmbg();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.db('accounts').where({ id: citizen.account.id }).update({ jmbg });
    const claims = JSON.stringify({ id_token: { jmbg: { essential: true } }, userinfo: { jmbg: null } });
    const agent = new Agent();
    const { idToken, userinfo } = await tokens(await signIn(agent, authorize({ scope: 'openid profile jmbg', claims }), REDIRECT, { ...citizen, claims: ['sub', 'jmbg', 'given_name', 'family_name'] }));
    expect(idToken.jmbg).toBeUndefined();
    expect(userinfo.jmbg).toBeUndefined();
    expect(JSON.stringify(userinfo)).not.toContain(jmbg);
  });
});

describe('registrars', () => {
  test('separation of duties: a registrar cannot proof their own account, by code or directly', async () => {
    const officer = await registrar();
    await expect(server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: officer.account.id })).rejects.toMatchObject({ code: 'identity.own_account' });
    await expect(server.kapija.identity.recordProofing(officer.account.id, check(officer.account.id), { actor: officer.account.id })).rejects.toMatchObject({ code: 'identity.own_account' });
    // An unbound code the registrar issued, used for their own account: refused like any bad code.
    const { code } = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id });
    const answer = await activate(new Agent('en'), { username: officer.username, code, password: officer.password });
    expect(answer.status).toBe(400);
    expect(answer.body).toContain(en['error.identity.activation_invalid']);
  });

  const mint = async (accountId: string, acr: string) => {
    const script = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid kapija:admin' });
    const client = await server.kapija.provider.Client.find(script.clientId);
    return new server.kapija.provider.AccessToken({ accountId, client, scope: 'openid kapija:admin', grantId: 'test-grant', extra: { acr, auth_time: Math.floor(Date.now() / 1000) } } as never).save();
  };
  const api = () => request(server.kapija.app.callback());
  const body = (registrarId: string, attributes: Record<string, string> = {}) => {
    const c = check(registrarId);
    return {
      level: 'high',
      office: c.office,
      evidence: { document_type: 'idcard', issuing_country: 'RS', document_number: '001234567', expiry: '2032-06-01' },
      attributes: { given_name_cyrl: 'Јелена', family_name_cyrl: 'Јовић', given_name_latn: 'Jelena', family_name_latn: 'Jović', birthdate: c.attributes.birthdate, jmbg: c.attributes.jmbg, ...attributes },
    };
  };

  test('ASVS 5.0 V8.2.1: the registrar routes need the registrar role signed in at high; admin and auditor roles do not open them', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const low = await mint(officer.account.id, ACR.substantial);
    const refused = await api().post('/admin/api/registrar/activation-codes').set('authorization', `Bearer ${low}`).send({ account_id: citizen.account.id, check: body(officer.account.id) });
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toContain('insufficient_user_authentication');
    const admin = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const asAdmin = await api().post('/admin/api/registrar/activation-codes').set('authorization', `Bearer ${await mint(admin.account.id, ACR.high)}`).send({ account_id: citizen.account.id, check: body(admin.account.id) });
    expect(asAdmin.status).toBe(403);
    // A registrar is no administrator: the rest of the admin API stays closed.
    const high = await mint(officer.account.id, ACR.high);
    expect((await api().get('/admin/api/audit').set('authorization', `Bearer ${high}`)).status).toBe(403);
    const ok = await api().post('/admin/api/registrar/activation-codes').set('authorization', `Bearer ${high}`).send({ account_id: citizen.account.id, check: body(officer.account.id) });
    expect(ok.status).toBe(201);
    expect(ok.body.activation_code).toMatch(/^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
    const own = await api().post('/admin/api/registrar/activation-codes').set('authorization', `Bearer ${high}`).send({ account_id: officer.account.id, check: body(officer.account.id) });
    expect(own.status).toBe(403);
    expect(own.body.error).toBe('identity.own_account');
    // Only the code's keyed hash is in the database.
    const rows = (await server.kapija.db('activation_codes').select('code_hash')) as Array<{ code_hash: string }>;
    expect(rows.map((r) => r.code_hash)).not.toContain(ok.body.activation_code);
    expect(JSON.stringify(await server.kapija.db('activation_codes'))).not.toContain(ok.body.activation_code.replace(/-/g, ''));
  });

  test('JMBG uniqueness: a second account for the same JMBG is refused and reported in the audit trail', async () => {
    const officer = await registrar();
    const jmbg = uniqueJmbg();
    const first = await createTestAccount(server.kapija, { identity: 'none' });
    const second = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(first.account.id, check(officer.account.id, { jmbg }), { actor: officer.account.id });
    expect(await server.kapija.identity.findAccountByVerifiedJmbg(jmbg)).toBe(first.account.id);
    await expect(server.kapija.identity.recordProofing(second.account.id, check(officer.account.id, { jmbg }), { actor: officer.account.id })).rejects.toMatchObject({ code: 'identity.duplicate_jmbg', status: 409 });
    await expect(server.kapija.identity.issueActivationCode(check(officer.account.id, { jmbg }), { actor: officer.account.id }, { accountId: second.account.id })).rejects.toMatchObject({ code: 'identity.duplicate_jmbg' });
    const reported = await server.kapija.audit.list({ chain: 'admin', action: 'identity.duplicate_refused', subject: second.account.id });
    expect(reported.length).toBe(2);
    expect(reported[0]!.details).toEqual({ existing_account: first.account.id });
    expect(JSON.stringify(reported)).not.toContain(jmbg);
    expect(await server.kapija.identity.levelOf(second.account.id)).toBe('none');
    // An invalid JMBG (wrong check digit) is refused outright.
    await expect(server.kapija.identity.recordProofing(second.account.id, check(officer.account.id, { jmbg: `${jmbg.slice(0, 12)}${(Number(jmbg[12]) + 1) % 10}` }), { actor: officer.account.id })).rejects.toMatchObject({ code: 'identity.invalid_jmbg' });
  });

  test('auditors see each registrar’s proofings', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id), { actor: officer.account.id });
    const auditor = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(auditor.account.id, 'auditor', 'test');
    const rates = await api().get('/admin/api/identity/registrar-rates').set('authorization', `Bearer ${await mint(auditor.account.id, ACR.high)}`);
    expect(rates.status).toBe(200);
    expect(rates.body.registrars).toContainEqual({ verifier: officer.account.id, proofings: 1, revoked: 0 });
  });
});

describe('activation codes', () => {
  test('single use, expiring, bound to its account, and throttled when guessed', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const other = await createTestAccount(server.kapija, { identity: 'none' });
    const { code } = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: citizen.account.id });
    // for another account
    const stolen = await activate(new Agent('en'), { username: other.username, code, password: other.password });
    expect(stolen.status).toBe(400);
    expect(await server.kapija.identity.levelOf(other.account.id)).toBe('none');
    // the right account, typed loosely (lower case, spaces)
    const used = await activate(new Agent('en'), { username: citizen.username, code: code.toLowerCase().replace(/-/g, ' '), password: citizen.password });
    expect(used.status).toBe(200);
    expect(await server.kapija.identity.levelOf(citizen.account.id)).toBe('high');
    // twice
    const again = await activate(new Agent('en'), { username: citizen.username, code, password: citizen.password });
    expect(again.status).toBe(400);
    expect(again.body).toContain(en['error.identity.activation_invalid']);
    // expired
    const late = await createTestAccount(server.kapija, { identity: 'none' });
    const expired = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: late.account.id, ttlMs: -1 });
    expect((await activate(new Agent('en'), { username: late.username, code: expired.code, password: late.password })).status).toBe(400);
    expect(await server.kapija.identity.levelOf(late.account.id)).toBe('none');
    // an expired code's keyed hash is purged with the other expired rows
    expect((await server.kapija.purge()).activationCodes).toBeGreaterThanOrEqual(1);
    // the wrong password with the right code
    const fresh = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: late.account.id });
    expect((await activate(new Agent('en'), { username: late.username, code: fresh.code, password: 'not-the-password' })).status).toBe(400);
    // guessed: refused, then throttled (429) before the real code is even tried
    const guesser = new Agent('en');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) statuses.push((await activate(guesser, { username: late.username, code: `AAAAA-BBBBB-CCCCC-${String(i).padStart(5, '0')}`, password: late.password })).status);
    expect(statuses).toContain(429);
    const held = await activate(guesser, { username: late.username, code: fresh.code, password: late.password });
    expect(held.status).toBe(429);
    expect(await server.kapija.identity.levelOf(late.account.id)).toBe('none');
    expect((await server.kapija.audit.list({ chain: 'admin', action: 'identity.activation_refused', subject: late.account.id })).length).toBeGreaterThan(0);
  });

  test('an account created at the counter takes its password at activation, then signs in and enrols a factor', async () => {
    const officer = await registrar();
    const username = `counter${Date.now().toString(36)}`;
    const account = await server.kapija.accounts.create({ username }, null);
    const { code } = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: account.id });
    const weak = await activate(new Agent('en'), { username, code, password: 'password' });
    expect(weak.status).toBe(400);
    expect(await server.kapija.identity.levelOf(account.id)).toBe('none');
    const done = await activate(new Agent('en'), { username, code, password: 'a long counter passphrase' });
    expect(done.status).toBe(200);
    expect(await server.kapija.identity.levelOf(account.id)).toBe('high');
    const creds = await server.kapija.accounts.findCredentialsByUsername(username);
    expect(await server.kapija.passwords.verify(creds!.passwordHash, 'a long counter passphrase')).toBe(true);
  });
});

/** A citizen proofed at high at a counter, signed in with offline access: the browser, the token endpoint and the first tokens. */
async function proofedWithOfflineAccess() {
  const officer = await registrar();
  const citizen = await createTestAccount(server.kapija, { identity: 'none' });
  await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id), { actor: officer.account.id });
  const agent = new Agent();
  const cb = await signIn(agent, authorize({ scope: 'openid offline_access', prompt: 'consent' }), REDIRECT, citizen);
  const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`;
  const token = (params: Record<string, string>) =>
    fetch(new URL('/token', server.url), { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
  const first = (await (await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: VERIFIER })).json()) as { id_token: string; refresh_token: string };
  return { officer, citizen, agent, token, first };
}

describe('revocation', () => {
  test('revocation also ends offline access granted above the new level: a refresh token kept after the session ended is refused', async () => {
    const { officer, citizen, agent, token, first } = await proofedWithOfflineAccess();
    expect(first.refresh_token).toBeTruthy();
    // The citizen signs out at Kapija: the session ends, the offline grant stays (that is what offline access is).
    const endSession = new URL('/session/end', server.url);
    endSession.search = new URLSearchParams({ id_token_hint: first.id_token, client_id: rp.clientId }).toString();
    await confirmLogout(agent, endSession);
    expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
    const kept = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(kept.status).toBe(200);
    const rotated = (await kept.json()) as { id_token: string; refresh_token: string };
    expect(decodeJwt(rotated.id_token).acr).toBe(ACR.substantial);
    // The identity is revoked: no token asserting more than the identity now supports may come out of that grant.
    expect(await server.kapija.identity.revoke(citizen.account.id, { actor: officer.account.id }, 'document reported stolen')).toBe(true);
    const after = await token({ grant_type: 'refresh_token', refresh_token: rotated.refresh_token });
    expect(after.status).toBe(400);
    expect(((await after.json()) as { error: string }).error).toBe('invalid_grant');
  });

  test('revoking from the CLI, where no engine runs, also ends the stored sessions and the offline grants above the new level', async () => {
    const { citizen, agent, token, first } = await proofedWithOfflineAccess();
    expect((await server.kapija.sessions.listForAccount(citizen.account.id)).length).toBe(1);
    let out = '';
    // The CLI's own handles on the same database: no engine, no listener of the running instance.
    const cli = openHandles(server.kapija.config, { db: server.kapija.db });
    const code = await identityRevoke(cli, ['--username', citizen.username, '--reason', 'document reported stolen'], (x) => (out += x));
    expect(code).toBe(0);
    expect(out).toContain('1 session(s) above the new level ended');
    expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
    const refused = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(refused.status).toBe(400);
    // The browser's single sign-on is gone as well: a silent request now needs a new sign-in.
    const silent = await agent.follow(await agent.request(authorize({ prompt: 'none' })), isCallback);
    expect(silent instanceof URL ? silent.searchParams.get('error') : 'page').toBe('login_required');
  });

  test('revocation drops the level at once: sessions above it end, the next sign-in is asserted low', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id), { actor: officer.account.id });
    const agent = new Agent();
    const first = await tokens(await signIn(agent, authorize(), REDIRECT, citizen));
    expect(first.idToken.acr).toBe(ACR.substantial);
    expect((await server.kapija.sessions.listForAccount(citizen.account.id)).length).toBe(1);
    expect(await server.kapija.identity.revoke(citizen.account.id, { actor: officer.account.id }, 'document reported stolen')).toBe(true);
    expect(await server.kapija.identity.levelOf(citizen.account.id)).toBe('none');
    expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
    const next = await tokens(await signIn(agent, authorize(), REDIRECT, citizen));
    expect(next.idToken.acr).toBe(ACR.low);
    const ledger = (await server.kapija.audit.list({ chain: `account:${citizen.account.id}`, action: 'ledger.' })).filter((e) => e.action.startsWith('ledger.identity_'));
    expect(ledger.map((e) => e.action).sort()).toEqual(['ledger.identity_proofed', 'ledger.identity_revoked']);
    // The ledger names the office, never the officer, and holds no verified value.
    expect(ledger[0]!.details).not.toHaveProperty('verifier');
    expect(JSON.stringify(ledger)).not.toContain('Jelena');
  });
});

describe('verified_claims (OpenID Connect for Identity Assurance 1.0)', () => {
  const request = JSON.stringify({
    id_token: { verified_claims: { verification: { trust_framework: null, assurance_level: null, time: null, evidence: null }, claims: { given_name: null, family_name: null, 'given_name#sr-Latn': null, birthdate: null, jmbg: null } } },
    userinfo: { verified_claims: { verification: { trust_framework: null }, claims: { family_name: null, jmbg: null } } },
  });

  test('discovery publishes the identity-assurance metadata; openid-client reads verified_claims from the ID token and userinfo', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const jmbg = uniqueJmbg();
    await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id, { jmbg }), { actor: officer.account.id });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const meta = config.serverMetadata() as Record<string, unknown>;
    expect(meta.verified_claims_supported).toBe(true);
    expect(meta.trust_frameworks_supported).toEqual(['rs_eid']);
    expect(meta.evidence_supported).toEqual(expect.arrayContaining(['document', 'electronic_signature']));
    expect(meta.documents_supported).toEqual(expect.arrayContaining(['idcard']));
    expect(meta.claims_in_verified_claims_supported).toEqual(expect.arrayContaining(['given_name', 'family_name', 'birthdate', 'jmbg']));
    expect(meta.claims_supported).toContain('verified_claims');
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid profile jmbg', claims: request, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const cb = await signIn(new Agent(), url, REDIRECT, { ...citizen, claims: ['sub', 'given_name', 'family_name', 'birthdate', 'jmbg', 'verified_claims', 'name', 'preferred_username', 'locale', 'updated_at'] });
    const tokenSet = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier });
    const idClaims = tokenSet.claims() as Record<string, unknown>;
    expect(idClaims.verified_claims).toEqual({
      verification: {
        trust_framework: 'rs_eid',
        assurance_level: 'high',
        time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        evidence: [{ type: 'document', check_details: [{ check_method: 'vpip' }], time: expect.any(String), document_details: { type: 'idcard', issuer: { country_code: 'RS' }, date_of_expiry: '2032-06-01' } }],
      },
      claims: { given_name: 'Јелена', family_name: 'Јовић', 'given_name#sr-Latn': 'Jelena', birthdate: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/), jmbg },
    });
    expect(JSON.stringify(idClaims)).not.toContain('document_number');
    const userinfo = (await oidc.fetchUserInfo(config, tokenSet.access_token, oidc.skipSubjectCheck)) as Record<string, unknown>;
    expect(userinfo.verified_claims).toEqual({ verification: { trust_framework: 'rs_eid' }, claims: { family_name: 'Јовић', jmbg } });
    // The ledger names each verified claim released.
    const released = await server.kapija.audit.list({ chain: `account:${citizen.account.id}`, action: 'ledger.data_released' });
    expect(released.flatMap((e) => e.details.claims as string[])).toEqual(expect.arrayContaining(['verified_claims.jmbg', 'verified_claims.given_name']));
  });

  test('verified_claims the citizen did not consent to are not released; nor are claims outside the service’s scopes', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(citizen.account.id, check(officer.account.id), { actor: officer.account.id });
    // Unticked at consent.
    const refused = await tokens(await signIn(new Agent(), authorize({ scope: 'openid profile jmbg', claims: request }), REDIRECT, { ...citizen, claims: ['sub', 'given_name', 'family_name'] }));
    expect(refused.idToken.verified_claims).toBeUndefined();
    expect(refused.userinfo.verified_claims).toBeUndefined();
    expect(refused.idToken.jmbg).toBeUndefined();
    // A service registered without the jmbg scope: verified_claims without the JMBG.
    const narrow = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile' });
    const other = await tokens(await signIn(new Agent(), authorize({ scope: 'openid profile', claims: request }, narrow), REDIRECT, citizen), narrow);
    const vc = other.idToken.verified_claims as { claims: Record<string, unknown> };
    expect(vc.claims.given_name).toBe('Јелена');
    expect(vc.claims.jmbg).toBeUndefined();
    expect(JSON.stringify(other)).not.toMatch(/"jmbg"/);
  });

  test('an unverified citizen gets no verified_claims, whatever is asked', async () => {
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const got = await tokens(await signIn(new Agent(), authorize({ scope: 'openid profile jmbg', claims: request }), REDIRECT, { ...citizen, claims: ['sub', 'given_name', 'verified_claims'] }));
    expect(got.idToken.verified_claims).toBeUndefined();
    expect(got.userinfo.verified_claims).toBeUndefined();
  });
});
