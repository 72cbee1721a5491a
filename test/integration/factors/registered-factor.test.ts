/**
 * A factor registered from outside (test/support/sms-factor.ts, which exists only in the tests)
 * works end to end without any change to the sign-in pages, the portal or the console: it is
 * offered on the second-factor page, verifies, yields its amr and the acr they reach, is refused
 * where it cannot reach the level a service needs, and is listed (and reset) like the built-in ones.
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { Agent, formAction, hiddenField, type Page } from '../../support/browserless.js';
import { openPortal, submitForm } from '../../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../../support/kapija.js';
import { createSmsFactor, type SmsOutbox } from '../../support/sms-factor.js';
import { createCardFactor } from '../../support/card-factor.js';
import { createAdminService } from '../../../src/admin/service.js';
import { createAccountDeletion } from '../../../src/account/deletion.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const VERIFIER = 'a-fixed-pkce-verifier-for-the-registered-factor-0123456789';
const PKCE = { code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'), code_challenge_method: 'S256' };
const HIGH = 'http://eidas.europa.eu/LoA/high';
const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';

const outbox: SmsOutbox = { sent: [] };
const server = kapijaForSuite({ options: { extraFactors: ({ credentials, box }) => [createSmsFactor({ credentials, box, outbox }), createCardFactor({ credentials })] } });
let rp: { clientId: string; clientSecret?: string | undefined };
beforeAll(async () => {
  rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
});

const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
function authorize(extra: Record<string, string> = {}): URL {
  const u = new URL('/auth', server.url);
  u.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, ...PKCE, ...extra }).toString();
  return u;
}

/** A citizen whose only second factor is the test factor (a phone number, no TOTP, no recovery codes). */
async function smsCitizen() {
  const citizen = await createTestAccount(server.kapija, { totp: false });
  const phone = `+38160${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
  await server.kapija.credentials.add({ accountId: citizen.account.id, type: 'sms', name: 'My phone', config: { phone } });
  return { ...citizen, phone };
}

/** Authorize and the password: the page that follows (the second-factor page, or where the sign-in ended). */
async function afterPassword(agent: Agent, citizen: { username: string; password: string }, extra: Record<string, string> = {}): Promise<Page | URL> {
  const login = await agent.follow(await agent.request(authorize(extra)), isCallback);
  if (login instanceof URL) throw new Error('reached the service without signing in');
  return agent.follow(await submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password }), isCallback);
}

/** Asks the factor to send its code (the ceremony options route), as a page script would. */
async function sendCode(agent: Agent, page: Page) {
  const uid = /\/interaction\/([^/?]+)/.exec(page.url.pathname)![1]!;
  const url = new URL(`/interaction/${uid}/sms/options`, server.url);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': hiddenField(page.body, '_csrf') ?? '', cookie: agent.jar.header(url) },
    body: JSON.stringify({}),
  });
  agent.jar.store(res.headers.getSetCookie());
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function redeem(callback: URL) {
  const res = await fetch(new URL('/token', server.url), {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: VERIFIER }),
  });
  const json = (await res.json()) as { id_token?: string };
  return decodeJwt(json.id_token!) as { acr: string; amr: string[] };
}

describe('a factor registered only in the tests', () => {
  test('is offered on the second-factor page, refuses a wrong code, verifies, and yields its amr (sms) and the level it reaches (substantial)', async () => {
    const citizen = await smsCitizen();
    const agent = new Agent();
    const mfa = (await afterPassword(agent, citizen)) as Page;
    expect(mfa.status).toBe(200);
    expect(formAction(mfa.body, /\/sms$/)).toBeDefined();
    expect(mfa.body).toContain('test.sms.heading');
    expect(mfa.body).not.toMatch(/\/totp"|data-webauthn="login"|method=recovery/);

    // A code before any was sent, and a wrong one after, are refused (the page again, 401).
    const early = await submitForm(agent, mfa, /\/sms$/, { code: '123456' });
    expect(early.status).toBe(401);
    const sent = await sendCode(agent, mfa);
    expect(sent).toEqual({ status: 200, body: { sent: true } });
    const message = outbox.sent.at(-1)!;
    expect(message.phone).toBe(citizen.phone);
    const wrong = await submitForm(agent, mfa, /\/sms$/, { code: message.code === '000000' ? '000001' : '000000' });
    expect(wrong.status).toBe(401);
    expect(formAction(wrong.body, /\/sms$/)).toBeDefined();
    // The challenge was used by the wrong attempt: the right code of that message no longer works.
    expect((await submitForm(agent, mfa, /\/sms$/, { code: message.code })).status).toBe(401);

    await sendCode(agent, mfa);
    const done = await agent.follow(await submitForm(agent, mfa, /\/sms$/, { code: outbox.sent.at(-1)!.code }), isCallback);
    const callback = done instanceof URL ? done : await agent.follow(await submitForm(agent, done, /\/confirm$/, {}), isCallback);
    expect(callback).toBeInstanceOf(URL);
    const token = await redeem(callback as URL);
    expect([...token.amr].sort()).toEqual(['mfa', 'pwd', 'sms']);
    expect(token.acr).toBe(SUBSTANTIAL);
  });

  test('is not offered where it cannot reach the level the service asks for: the sign-in ends with unmet_authentication_requirements', async () => {
    const citizen = await smsCitizen();
    const agent = new Agent();
    const end = await afterPassword(agent, citizen, { acr_values: HIGH });
    expect(end).toBeInstanceOf(URL);
    expect((end as URL).searchParams.get('error')).toBe('unmet_authentication_requirements');
  });

  test('is listed on the portal and in the console, stands alone (it can be removed only beside another), and an administrator’s reset removes it', async () => {
    const citizen = await smsCitizen();
    const agent = new Agent();
    const mfa = (await afterPassword(agent, citizen)) as Page;
    await sendCode(agent, mfa);
    const done = await agent.follow(await submitForm(agent, mfa, /\/sms$/, { code: outbox.sent.at(-1)!.code }), isCallback);
    if (!(done instanceof URL)) await agent.follow(await submitForm(agent, done, /\/confirm$/, {}), isCallback);

    const security = await openPortal(agent, server.url, citizen, '/account/security');
    expect(security.body).toContain('My phone');
    expect(security.body).toContain('test.sms.name');
    const [credential] = await server.kapija.credentials.list(citizen.account.id, 'sms');
    // The only second factor that stands alone: removing it is refused.
    const refused = await submitForm(agent, security, /\/security\/remove$/, { id: credential!.id });
    expect(refused.status).toBe(409);

    const k = server.kapija;
    const deletion = createAccountDeletion({ repos: k.repos, sessions: k.sessions, payloads: k.payloads, events: k.events, factors: k.factors });
    const service = createAdminService({ ...k, sessions: k.sessions, audit: k.repos.audit, roles: k.repos.roles, atomically: k.repos.atomically, deletion, production: false });
    const admin = await createTestAccount(server.kapija);
    const actor = { accountId: admin.account.id, role: 'admin' as const, ip: null };
    const view = await service.citizens.view(actor, citizen.account.id);
    expect(view.factors).toEqual([expect.objectContaining({ type: 'sms', name: 'My phone' })]);
    const reset = await service.citizens.resetFactors(actor, citizen.account.id);
    expect(reset.removed).toMatchObject({ sms: 1, totp: 0, webauthn: 0, recovery: 0 });
    expect(await server.kapija.credentials.list(citizen.account.id, 'sms')).toEqual([]);
  });
});

describe('a first factor registered only in the tests (shaped like an eID card: sc + pin)', () => {
  async function postCard(agent: Agent, page: Page, response: Record<string, string>) {
    const uid = /\/interaction\/([^/?]+)/.exec(page.url.pathname)![1]!;
    const url = new URL(`/interaction/${uid}/card/identify`, server.url);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': hiddenField(page.body, '_csrf') ?? '', cookie: agent.jar.header(url) },
      body: JSON.stringify({ response }),
      redirect: 'manual',
    });
    agent.jar.store(res.headers.getSetCookie());
    return { status: res.status, body: (await res.json()) as { location?: string; error?: string } };
  }

  test('identifies the account and completes the sign-in by itself, at high, with no second-factor step; a wrong PIN is refused', async () => {
    const citizen = await createTestAccount(server.kapija, { totp: false });
    const serial = `card-${citizen.account.id.slice(0, 8)}`;
    await server.kapija.credentials.add({ accountId: citizen.account.id, type: 'card', name: 'eID', lookup: serial, config: { pin: '4321' } });
    const agent = new Agent();
    const login = await agent.follow(await agent.request(authorize({ acr_values: HIGH })), isCallback);
    if (login instanceof URL) throw new Error('reached the service without signing in');

    expect((await postCard(agent, login, { id: serial, pin: '0000' })).status).toBe(401);
    const answer = await postCard(agent, login, { id: serial, pin: '4321' });
    expect(answer.status).toBe(200);
    // Straight back to the engine: no second-factor or enrolment page in between.
    expect(answer.body.location).toMatch(/\/auth\//);
    const next = await agent.follow(await agent.request(new URL(answer.body.location!, server.url)), isCallback);
    const callback = next instanceof URL ? next : await agent.follow(await submitForm(agent, next, /\/confirm$/, {}), isCallback);
    expect(callback).toBeInstanceOf(URL);
    const token = await redeem(callback as URL);
    expect([...token.amr].sort()).toEqual(['mfa', 'pin', 'sc']);
    expect(token.acr).toBe(HIGH);
  });

  test('is refused outside the identify step (after the password, in the second-factor step)', async () => {
    const citizen = await smsCitizen();
    const agent = new Agent();
    const mfa = (await afterPassword(agent, citizen)) as Page;
    expect((await postCard(agent, mfa, { id: 'x', pin: 'y' })).body.error).toBe('interaction.invalid_step');
  });
});
