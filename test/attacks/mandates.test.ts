/**
 * Attack cases against mandates (acting for someone else): granting to oneself or to an account
 * nobody verified, registrars recording representation that names them, withdrawing someone
 * else's mandate, using one that was withdrawn, expired, or does not cover the service, and the
 * ledgers of both citizens recording each grant, use and withdrawal.
 */
import { Agent, hiddenField } from '../support/browserless.js';
import { openPortal, submitForm } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { ledgerChain } from '../../src/account/ledger.js';
import type { KapijaError } from '../../src/errors.js';
import { en } from '../../src/i18n/messages/en.js';
import { srLatn } from '../../src/i18n/messages/sr-Latn.js';

const clock = Date.now();
const server = kapijaForSuite();
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
