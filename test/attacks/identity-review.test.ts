/**
 * An outside review of identity proofing: the routes tried out of order, after the identity lost
 * its standing, and with codes whose issuer lost theirs. Each case is named after the rule it checks.
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import request from 'supertest';
import { Agent } from '../support/browserless.js';
import { signIn, submitForm } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg } from '../support/kapija.js';
import type { ProofingInput } from '../../src/identity/service.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { createRoleRepository } from '../../src/store/roles.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const ACR = { low: 'http://eidas.europa.eu/LoA/low', substantial: 'http://eidas.europa.eu/LoA/substantial', high: 'http://eidas.europa.eu/LoA/high' };
const VERIFIER = 'a-fixed-pkce-verifier-for-the-identity-review-0123456789';
const PKCE = { code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'), code_challenge_method: 'S256' };
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);

// The console at substantial, so that an administrator with TOTP reaches it (the rule is the same at high).
const server = kapijaForSuite({ env: { ADMIN_MIN_ACR: 'substantial' } });
let rp: { clientId: string; clientSecret?: string | undefined };
beforeAll(async () => {
  rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile email jmbg offline_access' });
});

function authorize(extra: Record<string, string> = {}): URL {
  const u = new URL('/auth', server.url);
  u.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, ...PKCE, ...extra }).toString();
  return u;
}

function token(params: Record<string, string>) {
  const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`;
  return fetch(new URL('/token', server.url), { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
}

async function exchange(callback: URL) {
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code: ${callback.href}`);
  return (await (await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: VERIFIER })).json()) as { id_token: string; refresh_token?: string };
}

/** A registrar's document check. */
function check(registrarId: string, level: ProofingInput['level'] = 'high'): ProofingInput {
  const jmbg = uniqueJmbg();
  return {
    method: 'in_person',
    level,
    verifier: registrarId,
    office: 'Policijska uprava Novi Sad',
    evidence: { type: 'document', documentType: 'idcard', issuingCountry: 'RS', documentNumber: `00${jmbg.slice(7)}`, expiry: '2032-06-01' },
    attributes: { givenNameLatn: 'Jelena', familyNameLatn: 'Jović', birthdate: `1${jmbg.slice(4, 7)}-${jmbg.slice(2, 4)}-${jmbg.slice(0, 2)}`, jmbg },
  };
}

async function registrar() {
  const r = await createTestAccount(server.kapija);
  await createRegistrarRoles(server.kapija.repos).grant(r.account.id, 'test');
  return r;
}

/** The identity's expiry (the document's) passes: what the clock would do, written to the row. */
async function expireIdentity(accountId: string) {
  await server.kapija.db('verified_identities').where({ account_id: accountId }).update({ expires_at: Date.now() - 1000 });
  expect(await server.kapija.identity.levelOf(accountId)).toBe('none');
}

async function activate(agent: Agent, fields: { username: string; code: string; password: string }) {
  const page = await agent.request(new URL('/activate?lang=en', server.url));
  return submitForm(agent, page, /\/activate$/, fields);
}

describe('an identity whose proofing expired', () => {
  test('eIDAS 2015/1502: single sign-on does not reuse a session signed in above what the expired identity supports', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(citizen.account.id, { ...check(officer.account.id), expiresAt: Date.now() + 3600_000 }, { actor: officer.account.id });
    const agent = new Agent();
    const first = await exchange(await signIn(agent, authorize(), REDIRECT, citizen));
    expect(decodeJwt(first.id_token).acr).toBe(ACR.substantial);
    await expireIdentity(citizen.account.id);
    // A silent request: the session says substantial, the identity no longer does.
    const silent = await agent.follow(await agent.request(authorize({ prompt: 'none' })), isCallback);
    const asserted = silent instanceof URL && silent.searchParams.get('code') ? decodeJwt((await exchange(silent)).id_token).acr : undefined;
    expect(asserted === undefined || asserted === ACR.low).toBe(true);
    expect(silent instanceof URL ? silent.searchParams.get('error') : 'page').toBe('login_required');
    // Signing in again is asserted at what the identity now supports.
    const again = await exchange(await signIn(agent, authorize(), REDIRECT, citizen));
    expect(decodeJwt(again.id_token).acr).toBe(ACR.low);
  });

  test('eIDAS 2015/1502: a refresh token issued above what the identity now supports is refused once the proofing expired', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    await server.kapija.identity.recordProofing(citizen.account.id, { ...check(officer.account.id), expiresAt: Date.now() + 3600_000 }, { actor: officer.account.id });
    const first = await exchange(await signIn(new Agent(), authorize({ scope: 'openid offline_access', prompt: 'consent' }), REDIRECT, citizen));
    expect(first.refresh_token).toBeTruthy();
    await expireIdentity(citizen.account.id);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token! });
    const body = (await refreshed.json()) as { id_token?: string; error?: string };
    expect(body.id_token ? decodeJwt(body.id_token).acr : undefined).toBeUndefined();
    expect(refreshed.status).toBe(400);
    expect(body.error).toBe('invalid_grant');
  });

  test('a refresh token issued at low keeps working after the proofing expired (nothing it asserts was lost)', async () => {
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const first = await exchange(await signIn(new Agent(), authorize({ scope: 'openid offline_access', prompt: 'consent' }), REDIRECT, citizen));
    expect(decodeJwt(first.id_token).acr).toBe(ACR.low);
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token! });
    expect(refreshed.status).toBe(200);
  });
});

/** Opens /admin/clients in `agent`, signing in through Kapija when the console asks for it: the page's status. */
async function openConsole(agent: Agent, admin: Awaited<ReturnType<typeof createTestAccount>>): Promise<number> {
  const first = await agent.request(new URL('/admin/clients', server.url));
  if (first.status !== 303) return first.status;
  const login = await agent.request(new URL(first.headers.get('location')!, server.url));
  const callback = await signIn(agent, new URL(login.headers.get('location')!, server.url), `${server.url}/admin/callback`, admin);
  const back = await agent.request(callback);
  return (await agent.request(new URL(back.headers.get('location')!, server.url))).status;
}

describe('an identity proofed again at a lower level', () => {
  test('the sessions above the new level end and single sign-on asks for a new sign-in, asserted at the new level', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const input = check(officer.account.id);
    await server.kapija.identity.recordProofing(citizen.account.id, input, { actor: officer.account.id });
    const agent = new Agent();
    expect(decodeJwt((await exchange(await signIn(agent, authorize(), REDIRECT, citizen))).id_token).acr).toBe(ACR.substantial);
    await server.kapija.identity.recordProofing(citizen.account.id, { ...input, level: 'low', method: 'letter' }, { actor: officer.account.id });
    expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
    const silent = await agent.follow(await agent.request(authorize({ prompt: 'none' })), isCallback);
    expect(silent instanceof URL ? silent.searchParams.get('error') : 'page').toBe('login_required');
    expect(decodeJwt((await exchange(await signIn(agent, authorize(), REDIRECT, citizen))).id_token).acr).toBe(ACR.low);
  });
});

describe('Kapija’s own pages after the proofing expired', () => {
  test('ADMIN_MIN_ACR: the console does not keep an administrator whose identity no longer supports its level', async () => {
    const officer = await registrar();
    const admin = await createTestAccount(server.kapija, { identity: 'none' });
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    await server.kapija.identity.recordProofing(admin.account.id, { ...check(officer.account.id), expiresAt: Date.now() + 3600_000 }, { actor: officer.account.id });
    const agent = new Agent();
    expect(await openConsole(agent, admin)).toBe(200);
    expect((await agent.request(new URL('/admin/clients', server.url))).status).toBe(200);
    await expireIdentity(admin.account.id);
    const after = await agent.request(new URL('/admin/clients', server.url));
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toMatch(/^\/admin\/login/);
  });
});

/** A kapija:admin access token as Kapija issues it after a sign-in at `acr` (its grant's acr in `extra`). */
async function adminToken(accountId: string, acr: string): Promise<string> {
  const client = await server.kapija.provider.Client.find((await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid kapija:admin' })).clientId);
  return new server.kapija.provider.AccessToken({ accountId, client, scope: 'openid kapija:admin', grantId: 'review-grant', extra: { acr, auth_time: Math.floor(Date.now() / 1000) } } as never).save();
}

describe('the admin and registrar APIs after the proofing expired', () => {
  const api = () => request(server.kapija.app.callback());

  test('ADMIN_MIN_ACR: an admin API token does not outlive the identity that supported its acr', async () => {
    const officer = await registrar();
    const admin = await createTestAccount(server.kapija, { identity: 'none' });
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    await server.kapija.identity.recordProofing(admin.account.id, { ...check(officer.account.id), expiresAt: Date.now() + 3600_000 }, { actor: officer.account.id });
    const bearer = `Bearer ${await adminToken(admin.account.id, ACR.substantial)}`;
    expect((await api().get('/admin/api/citizens').query({ q: 'ab' }).set('authorization', bearer)).status).toBe(200);
    await expireIdentity(admin.account.id);
    const after = await api().get('/admin/api/citizens').query({ q: 'ab' }).set('authorization', bearer);
    expect(after.status).toBe(401);
    expect(after.headers['www-authenticate']).toContain('insufficient_user_authentication');
  });

  test('a registrar’s API token at high does not outlive the registrar’s identity at high', async () => {
    const officer = await registrar();
    const desk = await createTestAccount(server.kapija, { identity: 'none' });
    await createRegistrarRoles(server.kapija.repos).grant(desk.account.id, 'test');
    await server.kapija.identity.recordProofing(desk.account.id, { ...check(officer.account.id), expiresAt: Date.now() + 3600_000 }, { actor: officer.account.id });
    const bearer = `Bearer ${await adminToken(desk.account.id, ACR.high)}`;
    expect((await api().get('/admin/api/registrar/accounts').query({ q: 'ab' }).set('authorization', bearer)).status).toBe(200);
    await expireIdentity(desk.account.id);
    const after = await api().get('/admin/api/registrar/accounts').query({ q: 'ab' }).set('authorization', bearer);
    expect(after.status).toBe(401);
    expect(after.headers['www-authenticate']).toContain('insufficient_user_authentication');
  });
});

describe('an account opened at the counter', () => {
  test('a document check the service refuses (an expired document) leaves no account behind', async () => {
    const desk = await registrar();
    const bearer = `Bearer ${await adminToken(desk.account.id, ACR.high)}`;
    const jmbg = uniqueJmbg();
    const username = `counter${jmbg.slice(0, 9)}`;
    const res = await request(server.kapija.app.callback())
      .post('/admin/api/registrar/accounts')
      .set('authorization', bearer)
      .send({
        username,
        check: {
          level: 'high',
          office: 'Policijska uprava Novi Sad',
          evidence: { document_type: 'idcard', issuing_country: 'RS', document_number: '001234567', expiry: '2020-01-31' },
          attributes: { given_name_cyrl: 'Јелена', family_name_cyrl: 'Јовић', given_name_latn: 'Jelena', family_name_latn: 'Jović', birthdate: `1${jmbg.slice(4, 7)}-${jmbg.slice(2, 4)}-${jmbg.slice(0, 2)}`, jmbg },
        },
      });
    expect(res.status).toBe(400);
    expect(await server.kapija.accounts.findByUsername(username)).toBeUndefined();
  });
});

describe('activation codes after the proofing lost its standing', () => {
  test('a code issued before the identity was revoked (fraud) does not restore it', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const input = check(officer.account.id);
    await server.kapija.identity.recordProofing(citizen.account.id, input, { actor: officer.account.id });
    // A second code for the same identity was handed out too (a letter in the post).
    const { code } = await server.kapija.identity.issueActivationCode(input, { actor: officer.account.id }, { accountId: citizen.account.id });
    expect(await server.kapija.identity.revoke(citizen.account.id, { actor: officer.account.id }, 'fraud')).toBe(true);
    const used = await activate(new Agent('en'), { username: citizen.username, code, password: citizen.password });
    expect(used.status).toBe(400);
    expect(await server.kapija.identity.levelOf(citizen.account.id)).toBe('none');
  });

  test('a code for the revoked JMBG, bound to no account, cannot hand that identity to another account', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const input = check(officer.account.id);
    // The code (for whichever account the citizen opens) is issued first; then the same identity is proofed on an account.
    const { code } = await server.kapija.identity.issueActivationCode(input, { actor: officer.account.id });
    await server.kapija.identity.recordProofing(citizen.account.id, input, { actor: officer.account.id });
    expect(await server.kapija.identity.revoke(citizen.account.id, { actor: officer.account.id }, 'fraud')).toBe(true);
    const other = await createTestAccount(server.kapija, { identity: 'none' });
    expect((await activate(new Agent('en'), { username: other.username, code, password: other.password })).status).toBe(400);
    expect(await server.kapija.identity.levelOf(other.account.id)).toBe('none');
  });

  test('separation of duties: codes a registrar issued stop working when the registrar role is revoked', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const { code } = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: citizen.account.id });
    expect(await createRegistrarRoles(server.kapija.repos).revoke(officer.account.id, 'an-admin')).toBe(true);
    const used = await activate(new Agent('en'), { username: citizen.username, code, password: citizen.password });
    expect(used.status).toBe(400);
    expect(await server.kapija.identity.levelOf(citizen.account.id)).toBe('none');
    // A code from a registrar still in office works as before.
    const colleague = await registrar();
    const fresh = await server.kapija.identity.issueActivationCode(check(colleague.account.id), { actor: colleague.account.id }, { accountId: citizen.account.id });
    expect((await activate(new Agent('en'), { username: citizen.username, code: fresh.code, password: citizen.password })).status).toBe(200);
    expect(await server.kapija.identity.levelOf(citizen.account.id)).toBe('high');
  });
});

describe('an activation code and an identity in force', () => {
  test('a code carrying another JMBG does not rebind an account whose identity is in force (that is a correction at a counter)', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const own = check(officer.account.id);
    await server.kapija.identity.recordProofing(citizen.account.id, own, { actor: officer.account.id });
    // A letter for someone else (a relative at the same address), bound to no account.
    const { code } = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id });
    expect((await activate(new Agent('en'), { username: citizen.username, code, password: citizen.password })).status).toBe(400);
    expect((await server.kapija.identity.find(citizen.account.id))?.attributes.jmbg).toBe(own.attributes.jmbg);
    // A code with the same JMBG (a new document checked) still renews it.
    const renewal = await server.kapija.identity.issueActivationCode(own, { actor: officer.account.id }, { accountId: citizen.account.id });
    expect((await activate(new Agent('en'), { username: citizen.username, code: renewal.code, password: citizen.password })).status).toBe(200);
  });
});

describe('setting a password at activation', () => {
  test('separation of duties: a code a registrar issues for an account the ID card opened does not give it a password', async () => {
    const officer = await registrar();
    // The card's first sign-in opened this account: no password, the identity from the certificate.
    const jmbg = uniqueJmbg();
    const card = await server.kapija.accounts.create({ username: `eid-${jmbg.slice(0, 8)}`, givenName: 'Јелена', familyName: 'Јовић', status: 'active' }, null);
    await server.kapija.identity.recordProofing(
      card.id,
      { method: 'certificate', level: 'high', verifier: 'CN=Test CA', evidence: { type: 'certificate', certificateIssuer: 'CN=Test CA', certificateSerial: '1A' }, attributes: { givenNameLatn: 'Jelena', familyNameLatn: 'Jović', jmbg } },
      { actor: 'certificate' },
    );
    // The registrar finds it at the desk, issues a code for it with the same JMBG and activates it with a password of their own.
    const input = check(officer.account.id);
    const { code } = await server.kapija.identity.issueActivationCode({ ...input, attributes: { ...input.attributes, jmbg, birthdate: undefined } }, { actor: officer.account.id }, { accountId: card.id });
    const taken = await activate(new Agent('en'), { username: card.username, code, password: 'a-password-the-officer-chose-1' });
    expect(taken.status).toBe(400);
    expect((await server.kapija.accounts.findCredentialsByUsername(card.username))?.passwordHash).toBeNull();
    expect((await server.kapija.identity.find(card.id))?.method).toBe('certificate');
  });

  test('an account opened at the counter still takes its password at activation', async () => {
    const officer = await registrar();
    const counter = await server.kapija.accounts.create({ username: `counter${uniqueJmbg().slice(0, 8)}`, emailVerified: false }, null);
    const { code } = await server.kapija.identity.issueActivationCode(check(officer.account.id), { actor: officer.account.id }, { accountId: counter.id });
    expect((await activate(new Agent('en'), { username: counter.username, code, password: 'a-long-password-for-the-counter-1' })).status).toBe(200);
    expect((await server.kapija.accounts.findCredentialsByUsername(counter.username))?.passwordHash).toBeTruthy();
  });
});

describe('the evidence', () => {
  test('eIDAS 2015/1502 §2.1.2: an expired document proves nothing, at the counter or by a code', async () => {
    const officer = await registrar();
    const citizen = await createTestAccount(server.kapija, { identity: 'none' });
    const input = check(officer.account.id);
    const expired = { ...input, evidence: { ...input.evidence, expiry: '2020-01-31' } };
    await expect(server.kapija.identity.recordProofing(citizen.account.id, expired, { actor: officer.account.id })).rejects.toMatchObject({ code: 'identity.document_expired', status: 400 });
    await expect(server.kapija.identity.issueActivationCode(expired, { actor: officer.account.id }, { accountId: citizen.account.id })).rejects.toMatchObject({ code: 'identity.document_expired' });
    expect(await server.kapija.identity.levelOf(citizen.account.id)).toBe('none');
    // A document valid through today still counts.
    const today = new Date().toISOString().slice(0, 10);
    expect((await server.kapija.identity.recordProofing(citizen.account.id, { ...input, evidence: { ...input.evidence, expiry: today } }, { actor: officer.account.id })).level).toBe('high');
  });
});

describe('the registration desk', () => {
  test('an administrator below high sent from a desk URL with a huge query gets an ordinary redirect, not headers too large to read', async () => {
    const admin = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const agent = new Agent();
    expect(await openConsole(agent, admin)).toBe(200);
    // The console at substantial; the desk asks for high and sends the browser to sign in, remembering where to come back.
    const res = await agent.request(new URL(`/admin/desk/check?account=${'%25'.repeat(3000)}`, server.url));
    expect(res.status).toBe(303);
    expect(res.headers.getSetCookie().join('').length).toBeLessThan(4096);
  });
});
