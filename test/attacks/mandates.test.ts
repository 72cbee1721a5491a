/**
 * Attack cases against mandates (acting for someone else): granting to oneself or to an account
 * nobody verified, registrars recording representation that names them, withdrawing someone
 * else's mandate, using one that was withdrawn, expired, or does not cover the service, and the
 * ledgers of both citizens recording each grant, use and withdrawal.
 */
import * as oidc from 'openid-client';
import { Agent, checkedValues, hiddenField, type Page } from '../support/browserless.js';
import { openPortal, signInChoosing as signInChoosingAt, submitForm, type SignInOptions } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { ledgerChain } from '../../src/account/ledger.js';
import type { KapijaError } from '../../src/errors.js';
import { en } from '../../src/i18n/messages/en.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';

const clock = Date.now();
// On PostgreSQL when it is available (the migration and the joins on both stores), else SQLite.
const server = kapijaForSuite({ store: pgAvailable() ? 'postgres' : 'sqlite' });
const DAY = 24 * 3600 * 1000;

const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: KapijaError) => e.code);

describe('mandate registry', () => {
  test('a principal grants a voluntary mandate to a verified citizen; it is active only for the services and time it names', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username.toUpperCase(), { services: ['svc-a'], purposes: ['health'], validUntil: clock + 30 * DAY });
    expect(m).toMatchObject({ principalId: principal.account.id, representativeId: representative.account.id, basis: 'voluntary', services: ['svc-a'], purposes: ['health'], createdBy: principal.account.id });
    expect((await server.kapija.mandates.active(principal.account.id, representative.account.id, 'svc-a'))?.id).toBe(m.id);
    expect(await server.kapija.mandates.active(principal.account.id, representative.account.id, 'svc-b')).toBeUndefined();
    // The other way round is no mandate at all.
    expect(await server.kapija.mandates.active(representative.account.id, principal.account.id, 'svc-a')).toBeUndefined();
    expect(await server.kapija.mandates.active(principal.account.id, representative.account.id, 'svc-a', clock + 31 * DAY)).toBeUndefined();
    expect((await server.kapija.mandates.listForRepresentative(representative.account.id)).map((x) => x.id)).toEqual([m.id]);
    expect((await server.kapija.mandates.listForPrincipal(principal.account.id)).map((x) => x.id)).toEqual([m.id]);
  });

  test('no mandate to oneself, to an unknown or unverified account, with unknown purposes or dates in the past', async () => {
    const principal = await createTestAccount(server.kapija);
    const unverified = await createTestAccount(server.kapija, { identity: 'none' });
    const terms = { services: null, purposes: ['general'] };
    expect(await codeOf(server.kapija.mandates.grant(principal.account.id, principal.username, terms))).toBe('mandate.own_account');
    expect(await codeOf(server.kapija.mandates.grant(principal.account.id, 'nobody-has-this-name', terms))).toBe('mandate.representative_invalid');
    expect(await codeOf(server.kapija.mandates.grant(principal.account.id, unverified.username, terms))).toBe('mandate.representative_invalid');
    const other = await createTestAccount(server.kapija);
    expect(await codeOf(server.kapija.mandates.grant(principal.account.id, other.username, { services: null, purposes: ['everything'] }))).toBe('mandate.invalid');
    expect(await codeOf(server.kapija.mandates.grant(principal.account.id, other.username, { ...terms, validUntil: clock - 1 }))).toBe('mandate.invalid');
    expect(await codeOf(server.kapija.mandates.grant(principal.account.id, other.username, { services: ['bad id with spaces'], purposes: ['tax'] }))).toBe('mandate.invalid');
    // Granting for someone else (the actor is not the principal) is refused.
    expect(await codeOf(server.kapija.mandates.grant(principal.account.id, other.username, terms, { actor: other.account.id }))).toBe('mandate.forbidden');
    expect(await server.kapija.mandates.listForPrincipal(principal.account.id)).toEqual([]);
  });

  test('legal representation: only a registrar records it, never naming themselves, always with the decision', async () => {
    const child = await createTestAccount(server.kapija, { identity: 'none' });
    const parent = await createTestAccount(server.kapija);
    const registrar = await createTestAccount(server.kapija);
    const notRegistrar = await createTestAccount(server.kapija);
    await createRegistrarRoles(server.kapija.repos).grant(registrar.account.id, 'test');
    const input = { principalId: child.account.id, representativeId: parent.account.id, basis: 'parent' as const, decisionRef: 'Rešenje 12-345/2026', services: null, purposes: ['education', 'health'] };
    expect(await codeOf(server.kapija.mandates.record(input, { actor: notRegistrar.account.id }))).toBe('identity.registrar_required');
    expect(await codeOf(server.kapija.mandates.record({ ...input, representativeId: registrar.account.id }, { actor: registrar.account.id }))).toBe('mandate.own_account');
    expect(await codeOf(server.kapija.mandates.record({ ...input, decisionRef: '  ' }, { actor: registrar.account.id }))).toBe('mandate.invalid');
    const m = await server.kapija.mandates.record(input, { actor: registrar.account.id, ip: '192.0.2.7' });
    expect(m).toMatchObject({ basis: 'parent', decisionRef: 'Rešenje 12-345/2026', createdBy: registrar.account.id, services: null });
    expect(await server.kapija.mandates.active(child.account.id, parent.account.id, 'any-service')).toBeDefined();
    // The principal (a child) and the parent cannot end a legal representation; a registrar can.
    expect(await codeOf(server.kapija.mandates.withdraw(m.id, { actor: child.account.id }))).toBe('mandate.not_found');
    expect(await codeOf(server.kapija.mandates.withdraw(m.id, { actor: parent.account.id }))).toBe('mandate.not_found');
    await server.kapija.mandates.withdraw(m.id, { actor: registrar.account.id });
    expect(await server.kapija.mandates.active(child.account.id, parent.account.id, 'any-service')).toBeUndefined();
  });

  test('a voluntary mandate is withdrawn by its principal or representative, by nobody else, once; both ledgers and the audit trail say so', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const stranger = await createTestAccount(server.kapija);
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['tax'] });
    expect(await codeOf(server.kapija.mandates.withdraw(m.id, { actor: stranger.account.id }))).toBe('mandate.not_found');
    expect(await codeOf(server.kapija.mandates.withdraw('no-such-mandate', { actor: principal.account.id }))).toBe('mandate.not_found');
    await server.kapija.mandates.recordUse(m, 'svc-x', 'signin');
    const withdrawn = await server.kapija.mandates.withdraw(m.id, { actor: principal.account.id });
    expect(withdrawn.withdrawnAt).toBeInstanceOf(Date);
    expect(await codeOf(server.kapija.mandates.withdraw(m.id, { actor: principal.account.id }))).toBe('mandate.not_found');
    expect(await server.kapija.mandates.active(principal.account.id, representative.account.id, 'svc-x')).toBeUndefined();
    expect(await server.kapija.mandates.usableFor(representative.account.id, 'svc-x')).toEqual([]);
    for (const [who, role] of [[principal, 'principal'], [representative, 'representative']] as const) {
      const entries = (await server.kapija.audit.list({ chain: ledgerChain(who.account.id), action: 'ledger.' })).filter((e) => e.action.startsWith('ledger.mandate_'));
      expect(entries.map((e) => e.action).reverse()).toEqual(['ledger.mandate_granted', 'ledger.mandate_used', 'ledger.mandate_withdrawn']);
      expect(entries.every((e) => e.details['mandate_id'] === m.id && e.details['role'] === role)).toBe(true);
      expect(entries.find((e) => e.action === 'ledger.mandate_used')?.clientId).toBe('svc-x');
    }
    const admin = await server.kapija.audit.list({ chain: 'admin', action: 'mandate.', subject: principal.account.id });
    expect(admin.map((e) => e.action).reverse()).toEqual(['mandate.granted', 'mandate.used', 'mandate.withdrawn']);
    expect((await server.kapija.audit.verify(ledgerChain(principal.account.id))).ok).toBe(true);
    // Each citizen's activity page words the entries for their side, in their language.
    const principalPage = await openPortal(new Agent('en'), server.url, principal, '/account/activity');
    for (const key of ['ledger.mandate_granted.principal', 'ledger.mandate_used.principal', 'ledger.mandate_withdrawn.principal', 'ledger.how.signin'] as const) expect(principalPage.body).toContain(en[key]);
    expect(principalPage.body).not.toContain('ledger.mandate_');
    const representativePage = await openPortal(new Agent('sr-Latn'), server.url, representative, '/account/activity');
    for (const key of ['ledger.mandate_granted.representative', 'ledger.mandate_used.representative', 'ledger.mandate_withdrawn.representative'] as const) expect(representativePage.body).toContain(srLatn[key]);
  });

  test('deleting an account withdraws the mandates it gave and held, on the record', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    await server.kapija.events.emit('account.deleted', { accountId: representative.account.id });
    expect(await server.kapija.mandates.find(m.id)).toMatchObject({ withdrawnBy: 'system' });
    expect(await server.kapija.mandates.active(principal.account.id, representative.account.id, 'svc')).toBeUndefined();
    const entries = (await server.kapija.audit.list({ chain: ledgerChain(principal.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_withdrawn');
    expect(entries).toHaveLength(1);
  });

  test('a mandate ends with the principal account: a disabled principal cannot be acted for', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    await server.kapija.accounts.setStatus(principal.account.id, 'disabled');
    expect(await server.kapija.mandates.active(principal.account.id, representative.account.id, 'svc')).toBeUndefined();
    expect(await server.kapija.mandates.usableFor(representative.account.id, 'svc')).toEqual([]);
  });
});

describe('the mandates page', () => {
  test('a principal grants through the form (CSRF, recent sign-in), the representative sees it, the principal withdraws it', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija, { givenName: 'Milica', familyName: 'Marković' });
    const svc = await createTestClient(server.kapija, { client_name: 'Health portal', kapija_accepts_representation: true });
    await createTestClient(server.kapija, { client_name: 'Not opted in' });
    const agent = new Agent('en');
    const page = await openPortal(agent, server.url, principal, '/account/mandates');
    expect(page.body).toContain('Nobody may act for you.');
    expect(page.body).toContain(`value="${svc.clientId}"`);
    expect(page.body).not.toContain('Not opted in');
    // Without the CSRF token the form is refused and nothing is granted.
    const forged = await agent.request(new URL('/account/mandates', server.url), { form: { representative: representative.username, purposes: 'health', service: 'all' } });
    expect(forged.status).toBe(403);
    expect(await server.kapija.mandates.listForPrincipal(principal.account.id)).toEqual([]);
    // A service that did not opt in cannot be named, even by editing the form.
    const tampered = await submitForm(agent, page, /\/account\/mandates$/, { representative: representative.username, purposes: 'health', service: 'rp-not-opted-in' });
    expect(tampered.status).toBe(400);
    expect(tampered.body).toContain('role="alert"');
    const refused = await submitForm(agent, page, /\/account\/mandates$/, { representative: 'nobody-at-all', purposes: 'health', service: 'all' });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain(en['error.mandate.representative_invalid']);
    const granted = await submitForm(agent, page, /\/account\/mandates$/, { representative: representative.username, purposes: ['health', 'tax'], service: svc.clientId, valid_until: '2036-01-31' });
    expect(granted.status).toBe(303);
    const [m] = await server.kapija.mandates.listForPrincipal(principal.account.id);
    expect(m).toMatchObject({ representativeId: representative.account.id, services: [svc.clientId], purposes: ['health', 'tax'] });
    const shown = await agent.request(new URL('/account/mandates?done=granted', server.url));
    expect(shown.body).toContain('Milica Marković');
    expect(shown.body).toContain(`data-withdraw="${m!.id}"`);

    const repAgent = new Agent('sr-Latn');
    const held = await openPortal(repAgent, server.url, representative, '/account/mandates');
    expect(held.body).toContain(srLatn['account.mandates.held']);
    expect(held.body).toContain(principal.username);
    // The representative may also give it up; a stranger cannot withdraw it by posting its id.
    const stranger = await createTestAccount(server.kapija);
    const strangerAgent = new Agent('en');
    const strangerPage = await openPortal(strangerAgent, server.url, stranger, '/account/mandates');
    const notTheirs = await strangerAgent.request(new URL('/account/mandates/withdraw', server.url), { form: { _csrf: hiddenField(strangerPage.body, '_csrf')!, mandate_id: m!.id } });
    expect(notTheirs.status).toBe(404);
    expect((await server.kapija.mandates.find(m!.id))?.withdrawnAt).toBeNull();

    const withdrawn = await submitForm(agent, shown, /\/account\/mandates\/withdraw$/, { mandate_id: m!.id });
    expect(withdrawn.status).toBe(303);
    expect((await server.kapija.mandates.find(m!.id))?.withdrawnAt).toBeInstanceOf(Date);
    const after = await agent.request(new URL('/account/mandates?done=withdrawn', server.url));
    expect(after.body).not.toContain(`data-withdraw="${m!.id}"`);
  });
});

const REDIRECT = 'http://127.0.0.1:9/cb';

/** signInChoosing at this suite's service: `choice` on the representation page, each shown added to `pages`. */
const signInChoosing = (agent: Agent, url: URL, who: SignInOptions, choice?: string, pages: string[] = [], claims?: (page: string) => string[]) =>
  signInChoosingAt(agent, url, REDIRECT, who, { choice, pages, claims });

async function service(metadata: Record<string, unknown> = {}) {
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile offline_access', ...metadata });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const start = async (scope = 'openid profile') => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope, ...(scope.includes('offline_access') ? { prompt: 'consent' } : {}), code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return { url, redeem: (cb: URL) => oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, idTokenExpected: true }) };
  };
  return { ...rp, config, start };
}

describe('signing in for someone else', () => {
  test('at a service that accepts representation, the representative chooses the principal: sub is the principal\'s, act.sub theirs, both ledgers show the use', async () => {
    const principal = await createTestAccount(server.kapija, { givenName: 'Dragana', familyName: 'Ilić' });
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['health'] });

    const { url, redeem } = await svc.start();
    const pages: string[] = [];
    const cb = await signInChoosing(new Agent('en'), url, representative, m.id, pages);
    expect(pages[0]).toContain('For Dragana Ilić');
    const tokens = await redeem(cb);
    const claims = tokens.claims()!;
    const principalSub = await server.kapija.subjectFor(principal.account.id, svc.clientId);
    const representativeSub = await server.kapija.subjectFor(representative.account.id, svc.clientId);
    expect(principalSub).not.toBe(principal.account.id);
    expect(claims.sub).toBe(principalSub);
    expect(claims['act']).toEqual({ sub: representativeSub });
    expect(claims['mandate_id']).toBe(m.id);
    expect(claims['mandate_purposes']).toEqual(['health']);
    // The principal's claims, not the representative's.
    const userinfo = await oidc.fetchUserInfo(svc.config, tokens.access_token, principalSub);
    expect(userinfo).toMatchObject({ sub: principalSub, given_name: 'Dragana', act: { sub: representativeSub }, mandate_id: m.id });

    // The principal's data left: the releases (ID token, userinfo) are in the principal's ledger, not the representative's.
    const released = async (id: string) => (await server.kapija.audit.list({ chain: ledgerChain(id), action: 'ledger.data_released' })).filter((e) => e.clientId === svc.clientId).map((e) => e.details['channel']);
    expect((await released(principal.account.id)).sort()).toEqual(['id_token', 'userinfo']);
    expect(await released(representative.account.id)).toEqual([]);
    for (const who of [principal, representative]) {
      const uses = (await server.kapija.audit.list({ chain: ledgerChain(who.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_used');
      expect(uses).toHaveLength(1);
      expect(uses[0]).toMatchObject({ clientId: svc.clientId, details: expect.objectContaining({ mandate_id: m.id, how: 'signin' }) });
    }

    // Choosing "for myself" the next time gives the representative's own sub, without act.
    const again = await svc.start();
    const own = await again.redeem(await signInChoosing(new Agent('en'), again.url, representative, 'self'));
    expect(own.claims()!.sub).toBe(representativeSub);
    expect(own.claims()!['act']).toBeUndefined();
  });

  test('acting for the principal, the consent page shows and records the principal\'s refusals, not the representative\'s', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const { url, redeem } = await svc.start();
    const tokens = await redeem(await signInChoosing(new Agent('en'), url, representative, m.id, [], (page) => checkedValues(page, 'claims').filter((c) => c !== 'birthdate')));
    expect(tokens.claims()!['mandate_id']).toBe(m.id);
    expect([...(await server.kapija.repos.refusals.list(principal.account.id, svc.clientId))]).toEqual(['birthdate']);
    expect([...(await server.kapija.repos.refusals.list(representative.account.id, svc.clientId))]).toEqual([]);
    const userinfo = await oidc.fetchUserInfo(svc.config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo['birthdate']).toBeUndefined();
    expect(userinfo['given_name']).toBeDefined();
    const consents = await server.kapija.audit.list({ chain: ledgerChain(principal.account.id), action: 'ledger.consent_given' });
    expect(consents.map((e) => e.clientId)).toEqual([svc.clientId]);
  });

  test('acting for the principal, the consent page names the principal and lists the principal\'s data under the principal\'s earlier refusals', async () => {
    const principal = await createTestAccount(server.kapija, { givenName: 'Jelena', familyName: 'Savić' });
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true, client_name: 'Social office' });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['social', 'health'] });
    // The principal refused the date of birth to this service before; the representative refused the family name for themselves.
    await server.kapija.repos.refusals.refuse(principal.account.id, svc.clientId, ['birthdate']);
    await server.kapija.repos.refusals.refuse(representative.account.id, svc.clientId, ['family_name']);
    const { url, redeem } = await svc.start();
    const seen: string[] = [];
    const tokens = await redeem(await signInChoosing(new Agent('sr-Latn'), url, representative, m.id, [], (page) => {
      seen.push(page);
      return checkedValues(page, 'claims');
    }));
    expect(seen).toHaveLength(1);
    const page = seen[0]!;
    expect(page).toContain(srLatn['consent.mandate.heading'].replace('{client}', 'Social office').replace('{principal}', 'Jelena Savić'));
    expect(page).toContain(srLatn['account.mandates.purpose.social']);
    expect(page).toContain(srLatn['account.mandates.basis.voluntary']);
    // Not "your data": the principal's, with labels that say so.
    expect(page).not.toContain(srLatn['consent.heading'].replace('{client}', 'Social office'));
    expect(page).toContain(srLatn['consent.mandate.claim.given_name']);
    expect(page).not.toContain(srLatn['consent.claim.given_name']);
    // The principal's refusal holds (not offered, not released); the representative's own refusal does not apply.
    expect(checkedValues(page, 'claims')).toContain('family_name');
    expect(page).not.toContain('value="birthdate"');
    const userinfo = await oidc.fetchUserInfo(svc.config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo).toMatchObject({ given_name: 'Jelena', family_name: 'Savić' });
    expect(userinfo['birthdate']).toBeUndefined();

    // For themselves, the same representative sees their own page, "your data" under their own
    // refusal: the consent given for the principal is not carried over as theirs (a new session).
    const again = await svc.start();
    const own: string[] = [];
    await again.redeem(await signInChoosing(new Agent('sr-Latn'), again.url, representative, 'self', [], (p) => {
      own.push(p);
      return checkedValues(p, 'claims');
    }));
    expect(own[0]).toContain(srLatn['consent.heading'].replace('{client}', 'Social office'));
    expect(own[0]).not.toContain('Jelena');
    // Their own earlier refusal: shown again (a first consent) but unticked, as for any citizen.
    expect(checkedValues(own[0]!, 'claims')).not.toContain('family_name');
  });

  test('acting for the principal is not listed as the representative\'s own connected service (it is the principal\'s consent)', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true, client_name: 'Pension fund' });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['social'] });
    const agent = new Agent('en');
    const { url, redeem } = await svc.start();
    const tokens = await redeem(await signInChoosing(agent, url, representative, m.id));
    const page = await openPortal(agent, server.url, representative, '/account/services');
    expect(page.body).not.toContain('Pension fund');
    expect((await oidc.fetchUserInfo(svc.config, tokens.access_token, tokens.claims()!.sub))['mandate_id']).toBe(m.id);
    // Once they sign in for themselves, the service is theirs, and listed.
    const own = await svc.start();
    await own.redeem(await signInChoosing(agent, own.url, representative, 'self'));
    expect((await openPortal(agent, server.url, representative, '/account/services')).body).toContain('Pension fund');
  });

  test('in the same browser session, the next sign-in to the service asks again for whom (and a withdrawn mandate is not carried on)', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const agent = new Agent('en');
    const first = await svc.start();
    expect((await first.redeem(await signInChoosing(agent, first.url, representative, m.id))).claims()!['mandate_id']).toBe(m.id);
    // Same browser, same Kapija session: the citizen proves both factors again and chooses again.
    const second = await svc.start();
    const pages: string[] = [];
    const own = await second.redeem(await signInChoosing(agent, second.url, representative, 'self', pages));
    expect(pages).toHaveLength(1);
    expect(own.claims()!.sub).toBe(await server.kapija.subjectFor(representative.account.id, svc.clientId));
    expect(own.claims()!['act']).toBeUndefined();
    // For themselves now: single sign-on as usual, no new sign-in.
    const third = await svc.start();
    const again = await agent.follow(await agent.request(third.url), (u) => u.href.startsWith(REDIRECT));
    expect(again).toBeInstanceOf(URL);
    expect((await third.redeem(again as URL)).claims()!.sub).toBe(own.claims()!.sub);
  });

  test('a service that did not opt in never shows the choice and never receives act', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service();
    await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const { url, redeem } = await svc.start();
    const pages: string[] = [];
    const tokens = await redeem(await signInChoosing(new Agent('en'), url, representative, undefined, pages));
    expect(pages).toEqual([]);
    expect(tokens.claims()!.sub).toBe(await server.kapija.subjectFor(representative.account.id, svc.clientId));
    expect(tokens.claims()!['act']).toBeUndefined();
    const userinfo = await oidc.fetchUserInfo(svc.config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo['act']).toBeUndefined();
    expect(userinfo['mandate_id']).toBeUndefined();
    const introspected = await oidc.tokenIntrospection(svc.config, tokens.access_token);
    expect(introspected).toMatchObject({ active: true, sub: tokens.claims()!.sub });
    expect(introspected['act']).toBeUndefined();
    expect(await server.kapija.db('mandate_grants').whereIn('mandate_id', (await server.kapija.mandates.listForPrincipal(principal.account.id)).map((x) => x.id))).toEqual([]);
  });

  test('without a mandate for that principal, a tampered choice is refused and nothing is issued', async () => {
    const principal = await createTestAccount(server.kapija);
    const other = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true });
    await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    // A mandate someone else holds, and one of the representative's that does not cover this service.
    const notTheirs = await server.kapija.mandates.grant(other.account.id, principal.username, { services: null, purposes: ['general'] });
    const elsewhere = await server.kapija.mandates.grant(other.account.id, representative.username, { services: ['another-service'], purposes: ['general'] });
    const { url } = await svc.start();
    const agent = new Agent('en');
    const pages: string[] = [];
    const first = (await signInChoosing(agent, url, representative, notTheirs.id, pages).catch((e: { page?: Page }) => e)) as { page?: Page };
    expect(first.page?.status).toBe(400);
    expect(pages[0]).not.toContain(notTheirs.id);
    expect(pages[0]).not.toContain(elsewhere.id);
    // The same page, still at the representation step, refuses the other forgeries too.
    const interaction = /action="(\/interaction\/[^/"]+)\/represent"/.exec(pages[0]!)![1]!;
    for (const forged of [elsewhere.id, 'not-a-mandate', '']) {
      const res = await agent.request(new URL(`${interaction}/represent`, server.url), { form: { _csrf: hiddenField(pages[0]!, '_csrf')!, choice: forged } });
      expect(res.status).toBe(400);
    }
    const uses = (await server.kapija.audit.list({ chain: ledgerChain(representative.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_used');
    expect(uses).toEqual([]);
  });

  test('a withdrawn or expired mandate ends at once: its tokens no longer refresh or read userinfo, and it is no longer offered', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['tax'] });
    const { url, redeem } = await svc.start('openid profile offline_access');
    const tokens = await redeem(await signInChoosing(new Agent('en'), url, representative, m.id));
    const principalSub = tokens.claims()!.sub;
    expect(tokens.refresh_token).toBeTruthy();
    await oidc.fetchUserInfo(svc.config, tokens.access_token, principalSub);
    // While the mandate is in force, a refresh keeps acting for the principal.
    const refreshed = await oidc.refreshTokenGrant(svc.config, tokens.refresh_token!);
    expect(refreshed.claims()).toMatchObject({ sub: principalSub, mandate_id: m.id });
    expect((await oidc.fetchUserInfo(svc.config, refreshed.access_token, principalSub))['act']).toEqual(tokens.claims()!['act']);

    // Introspection answers like userinfo: the principal's sub, with act and the mandate.
    expect(await oidc.tokenIntrospection(svc.config, refreshed.access_token)).toMatchObject({ active: true, sub: principalSub, act: tokens.claims()!['act'], mandate_id: m.id });

    await server.kapija.mandates.withdraw(m.id, { actor: principal.account.id });
    expect(await oidc.tokenIntrospection(svc.config, refreshed.access_token)).toMatchObject({ active: false });
    expect((await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
    expect((await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status).toBe(401);
    await expect(oidc.refreshTokenGrant(svc.config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Not offered any more: the representative signs in for themselves only.
    const next = await svc.start();
    const pages: string[] = [];
    const own = await next.redeem(await signInChoosing(new Agent('en'), next.url, representative, undefined, pages));
    expect(pages).toEqual([]);
    expect(own.claims()!.sub).toBe(await server.kapija.subjectFor(representative.account.id, svc.clientId));
  });

  test('the representative\'s identity revoked: the mandate is not used any more, its tokens are refused', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const { url, redeem } = await svc.start();
    const tokens = await redeem(await signInChoosing(new Agent('en'), url, representative, m.id));
    expect((await oidc.fetchUserInfo(svc.config, tokens.access_token, tokens.claims()!.sub))['mandate_id']).toBe(m.id);
    expect(await server.kapija.identity.revoke(representative.account.id, { actor: 'test-registrar' }, 'document reported stolen')).toBe(true);
    expect((await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
    expect(await oidc.tokenIntrospection(svc.config, tokens.access_token)).toMatchObject({ active: false });
    expect(await server.kapija.mandates.usableFor(representative.account.id, svc.clientId)).toEqual([]);
    expect(await server.kapija.mandates.active(principal.account.id, representative.account.id, svc.clientId)).toBeUndefined();
    // The mandate itself is not withdrawn: proofed again, the representative may use it again.
    expect((await server.kapija.mandates.find(m.id))?.withdrawnAt).toBeNull();
  });

  test('a mandate that expires ends the tokens made under it', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'], validUntil: Date.now() + 3000 });
    const { url, redeem } = await svc.start();
    const tokens = await redeem(await signInChoosing(new Agent('en'), url, representative, m.id));
    expect(tokens.claims()!['mandate_id']).toBe(m.id);
    await new Promise((r) => setTimeout(r, Math.max(0, m.validUntil!.getTime() - Date.now() + 50)));
    // Neither the principal's answer nor the representative's own: the token is refused.
    const res = await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('invalid_token');
  });
});

describe('purge', () => {
  test('a grant\'s binding to its mandate is purged once the grant is gone or expired, never while it lives; the mandates stay', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true, grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:token-exchange'] });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    // Three grants bound to the mandate: one sign-in under it, two token exchanges.
    const { url, redeem } = await svc.start();
    const signedIn = await redeem(await signInChoosing(new Agent('en'), url, representative, m.id));
    const own = await svc.start();
    const mine = await own.redeem(await signInChoosing(new Agent('en'), own.url, representative, 'self'));
    const tokens = [{ access_token: signedIn.access_token, sub: signedIn.claims()!.sub }];
    for (let i = 0; i < 2; i += 1) {
      const res = await fetch(new URL('/token', server.url), {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${svc.clientId}:${svc.clientSecret!}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', subject_token: mine.access_token, requested_subject: signedIn.claims()!.sub }),
      });
      expect(res.status).toBe(200);
      tokens.push({ access_token: String(((await res.json()) as Record<string, unknown>)['access_token']), sub: signedIn.claims()!.sub });
    }
    const bindings = async () => ((await server.kapija.db('mandate_grants').where({ mandate_id: m.id }).select('grant_id')) as Array<{ grant_id: string }>).map((r) => r.grant_id).sort();
    const [revoked, expired, live] = await Promise.all(tokens.map(async (t) => (await server.kapija.provider.AccessToken.find(t.access_token))!.grantId!));
    expect(await bindings()).toEqual([revoked, expired, live].sort());

    // Young bindings are kept even when their grant is gone (the grant may still be on its way to the store).
    await (await server.kapija.provider.Grant.find(revoked!))!.destroy();
    await server.kapija.purge();
    expect(await bindings()).toContain(revoked);

    // Older: the revoked grant's and the expired grant's bindings go, the live grant's stays.
    await server.kapija.db('mandate_grants').where({ mandate_id: m.id }).update({ created_at: Date.now() - 24 * 3600 * 1000 });
    await server.kapija.db('oidc_payloads').where({ model: 'Grant', id: expired }).update({ expires_at: Date.now() - 1000 });
    const purged = await server.kapija.purge();
    expect(purged.mandateGrants).toBeGreaterThanOrEqual(2);
    expect(await bindings()).toEqual([live]);
    // The live grant still acts for the principal; the mandate (the record) stays.
    expect((await oidc.fetchUserInfo(svc.config, tokens[2]!.access_token, tokens[2]!.sub))['mandate_id']).toBe(m.id);
    expect(await server.kapija.mandates.find(m.id)).toMatchObject({ id: m.id });

    // Withdrawn, the live grant keeps its binding, so its tokens keep being refused (not answered as the representative's own).
    await server.kapija.mandates.withdraw(m.id, { actor: principal.account.id });
    await server.kapija.purge();
    expect(await bindings()).toEqual([live]);
    const res = await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${tokens[2]!.access_token}` } });
    expect(res.status).toBe(401);
    expect(await server.kapija.mandates.find(m.id)).toMatchObject({ withdrawnBy: principal.account.id });
  });
});

describe('token exchange (RFC 8693)', () => {
  const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
  const exchange = async (svc: { clientId: string; clientSecret?: string | undefined }, params: Record<string, string>) => {
    const res = await fetch(new URL('/token', server.url), {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${svc.clientId}:${svc.clientSecret!}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: EXCHANGE, subject_token_type: AT_TYPE, ...params }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const grantTypes = ['authorization_code', 'refresh_token', EXCHANGE];

  test('a service exchanges the representative\'s token for one acting for the principal, only with a mandate in force', async () => {
    const principal = await createTestAccount(server.kapija, { givenName: 'Zoran' });
    const stranger = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true, grant_types: grantTypes });
    const { url, redeem } = await svc.start();
    const own = await redeem(await signInChoosing(new Agent('en'), url, representative));
    const principalSub = await server.kapija.subjectFor(principal.account.id, svc.clientId);
    const representativeSub = await server.kapija.subjectFor(representative.account.id, svc.clientId);

    // Without a mandate: refused, for the principal and for a stranger alike.
    expect(await exchange(svc, { subject_token: own.access_token, requested_subject: principalSub })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['social'] });
    expect(await exchange(svc, { subject_token: own.access_token, requested_subject: await server.kapija.subjectFor(stranger.account.id, svc.clientId) })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await exchange(svc, { subject_token: 'not-a-token', requested_subject: principalSub })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await exchange(svc, { subject_token: own.access_token })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });

    const exchanged = await exchange(svc, { subject_token: own.access_token, requested_subject: principalSub });
    expect(exchanged).toMatchObject({ status: 200, body: { issued_token_type: AT_TYPE, token_type: 'Bearer', act: { sub: representativeSub }, mandate_id: m.id } });
    const token = String(exchanged.body['access_token']);
    const userinfo = await oidc.fetchUserInfo(svc.config, token, principalSub);
    expect(userinfo).toMatchObject({ sub: principalSub, given_name: 'Zoran', act: { sub: representativeSub }, mandate_id: m.id });
    // A token already acting for someone is not exchanged again.
    expect(await exchange(svc, { subject_token: token, requested_subject: principalSub })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    // The use is in both ledgers.
    for (const [who, role] of [[principal, 'principal'], [representative, 'representative']] as const) {
      const uses = (await server.kapija.audit.list({ chain: ledgerChain(who.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_used');
      expect(uses.map((e) => [e.details['how'], e.details['role'], e.clientId])).toEqual([['token_exchange', role, svc.clientId]]);
    }
    expect(await oidc.tokenIntrospection(svc.config, token)).toMatchObject({ active: true, sub: principalSub, act: { sub: representativeSub }, mandate_id: m.id });

    await server.kapija.mandates.withdraw(m.id, { actor: representative.account.id });
    await expect(oidc.fetchUserInfo(svc.config, token, principalSub)).rejects.toThrow();
    expect(await oidc.tokenIntrospection(svc.config, token)).toMatchObject({ active: false });
    expect(await exchange(svc, { subject_token: own.access_token, requested_subject: principalSub })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  test('refused for an expired or future mandate, a mandate for another service, and a principal named by their account id', async () => {
    const principal = await createTestAccount(server.kapija);
    const other = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const svc = await service({ kapija_accepts_representation: true, grant_types: grantTypes });
    const elsewhere = await service({ kapija_accepts_representation: true, grant_types: grantTypes });
    const { url, redeem } = await svc.start();
    const own = await redeem(await signInChoosing(new Agent('en'), url, representative));
    const m = await server.kapija.mandates.grant(principal.account.id, representative.username, { services: [svc.clientId], purposes: ['general'] });
    await server.kapija.mandates.grant(other.account.id, representative.username, { services: [elsewhere.clientId], purposes: ['general'] });
    const principalSub = await server.kapija.subjectFor(principal.account.id, svc.clientId);
    const refused = { status: 400, body: { error: 'invalid_grant' } };
    // The other principal's mandate covers another service only.
    expect(await exchange(svc, { subject_token: own.access_token, requested_subject: await server.kapija.subjectFor(other.account.id, svc.clientId) })).toMatchObject(refused);
    // The principal named by their account id (a service knows only their pairwise sub).
    expect(await exchange(svc, { subject_token: own.access_token, requested_subject: principal.account.id })).toMatchObject(refused);
    // Expired.
    await server.kapija.db('mandates').where({ id: m.id }).update({ valid_until: Date.now() - 1000 });
    expect(await exchange(svc, { subject_token: own.access_token, requested_subject: principalSub })).toMatchObject(refused);
    // Not yet in force.
    await server.kapija.db('mandates').where({ id: m.id }).update({ valid_from: Date.now() + 3600_000, valid_until: Date.now() + 7200_000 });
    expect(await exchange(svc, { subject_token: own.access_token, requested_subject: principalSub })).toMatchObject(refused);
    // Nothing issued, nothing recorded.
    for (const who of [principal, other, representative]) {
      expect((await server.kapija.audit.list({ chain: ledgerChain(who.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.mandate_used')).toEqual([]);
    }
    expect(await server.kapija.db('mandate_grants').where({ mandate_id: m.id })).toEqual([]);
  });

  test('a service that did not opt in, or another service\'s token, is refused', async () => {
    const principal = await createTestAccount(server.kapija);
    const representative = await createTestAccount(server.kapija);
    const plain = await service({ grant_types: grantTypes });
    const opted = await service({ kapija_accepts_representation: true, grant_types: grantTypes });
    await server.kapija.mandates.grant(principal.account.id, representative.username, { services: null, purposes: ['general'] });
    const { url, redeem } = await plain.start();
    const tokens = await redeem(await signInChoosing(new Agent('en'), url, representative));
    expect(await exchange(plain, { subject_token: tokens.access_token, requested_subject: await server.kapija.subjectFor(principal.account.id, plain.clientId) })).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
    expect(await exchange(opted, { subject_token: tokens.access_token, requested_subject: await server.kapija.subjectFor(principal.account.id, opted.clientId) })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });
});
