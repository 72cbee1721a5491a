/**
 * The registrar API for legal representation (/admin/api/registrar/…/mandates): only a registrar
 * signed in at high records, lists and ends a guardian's or parent's representation, recently
 * signed in for a change; bad input is a JSON error, never a 500; each change is in both
 * citizens' ledgers and the admin audit trail, as at the desk.
 */
import request from 'supertest';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { ledgerChain } from '../../src/account/ledger.js';

const HIGH = 'http://eidas.europa.eu/LoA/high';
const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';
const server = kapijaForSuite();
const api = () => request(server.kapija.app.callback());

/** A kapija:admin access token of `accountId`, as the code flow would give a front-office system. */
async function mint(accountId: string, acr = HIGH, authTime = Math.floor(Date.now() / 1000)) {
  const script = await createTestClient(server.kapija, { redirect_uris: ['http://127.0.0.1:9/cb'], scope: 'openid kapija:admin' });
  const client = await server.kapija.provider.Client.find(script.clientId);
  return new server.kapija.provider.AccessToken({ accountId, client, scope: 'openid kapija:admin', grantId: 'test-grant', extra: { acr, auth_time: authTime } } as never).save();
}

async function registrar() {
  const r = await createTestAccount(server.kapija);
  await createRegistrarRoles(server.kapija.repos).grant(r.account.id, 'test');
  return { ...r, token: await mint(r.account.id) };
}

const ledger = async (accountId: string) =>
  (await server.kapija.audit.list({ chain: ledgerChain(accountId), action: 'ledger.' }))
    .filter((e) => e.action.startsWith('ledger.mandate_'))
    .map((e) => ({ action: e.action, actor: e.actor, details: e.details }))
    .reverse();

const record = (token: string, principalId: string, body: unknown) => api().post(`/admin/api/registrar/accounts/${encodeURIComponent(principalId)}/mandates`).set('authorization', `Bearer ${token}`).send(body as object);

describe('legal representation through the registrar API', () => {
  test('a registrar records a parent\'s representation, lists it and ends it; both ledgers and the audit trail say so', async () => {
    const officer = await registrar();
    const child = await createTestAccount(server.kapija, { identity: 'none' });
    const parent = await createTestAccount(server.kapija);
    const created = await record(officer.token, child.account.id, { representative_username: parent.username, basis: 'parent', decision_ref: 'Rešenje 601-77/2026', purposes: ['education', 'health'], valid_until: '2034-06-30' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ principal_id: child.account.id, representative_id: parent.account.id, basis: 'parent', decision_ref: 'Rešenje 601-77/2026', services: null, purposes: ['education', 'health'], valid_until: '2034-06-30T23:59:59.000Z', created_by: officer.account.id, withdrawn_at: null, in_force: true });
    const id = created.body.id as string;
    expect((await server.kapija.mandates.active(child.account.id, parent.account.id, 'any-service'))?.id).toBe(id);

    const listed = await api().get(`/admin/api/registrar/accounts/${child.account.id}/mandates`).set('authorization', `Bearer ${officer.token}`);
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ principal_id: child.account.id, mandates: [{ id, basis: 'parent', in_force: true }] });

    const ended = await api().post(`/admin/api/registrar/mandates/${id}/withdraw`).set('authorization', `Bearer ${officer.token}`);
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ id, withdrawn_by: officer.account.id, in_force: false });
    expect(await server.kapija.mandates.active(child.account.id, parent.account.id, 'any-service')).toBeUndefined();
    // Once ended, it cannot be ended again.
    expect((await api().post(`/admin/api/registrar/mandates/${id}/withdraw`).set('authorization', `Bearer ${officer.token}`)).status).toBe(404);

    for (const [who, role] of [[child, 'principal'], [parent, 'representative']] as const) {
      const entries = await ledger(who.account.id);
      expect(entries.map((e) => e.action)).toEqual(['ledger.mandate_granted', 'ledger.mandate_withdrawn']);
      expect(entries.every((e) => e.actor === officer.account.id && e.details['mandate_id'] === id && e.details['role'] === role && e.details['basis'] === 'parent')).toBe(true);
    }
    const audit = await server.kapija.audit.list({ chain: 'admin', action: 'mandate.', subject: child.account.id });
    expect(audit.map((e) => [e.action, e.actor]).reverse()).toEqual([
      ['mandate.granted', officer.account.id],
      ['mandate.withdrawn', officer.account.id],
    ]);
    // No personal data in the entries: ids, the basis, the purposes.
    expect(JSON.stringify(audit)).not.toContain(parent.username);
  });

  test('by account id as well; a guardian\'s representation may name services and a start date', async () => {
    const officer = await registrar();
    const ward = await createTestAccount(server.kapija);
    const guardian = await createTestAccount(server.kapija);
    const res = await record(officer.token, ward.account.id, { representative_id: guardian.account.id, basis: 'guardian', decision_ref: 'CSR 12/2026', purposes: ['general'], services: ['svc-a', 'svc-b'], valid_from: '2026-01-01' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ basis: 'guardian', services: ['svc-a', 'svc-b'], valid_from: '2026-01-01T00:00:00.000Z' });
  });

  test('only a registrar signed in at high: a citizen, an administrator or auditor without the registrar role, a lower sign-in, no token', async () => {
    const child = await createTestAccount(server.kapija, { identity: 'none' });
    const parent = await createTestAccount(server.kapija);
    const body = { representative_username: parent.username, basis: 'parent', decision_ref: 'R-1', purposes: ['general'] };
    const citizen = await createTestAccount(server.kapija);
    const admin = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const auditor = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(auditor.account.id, 'auditor', 'test');
    for (const who of [citizen, admin, auditor]) {
      const token = await mint(who.account.id);
      const res = await record(token, child.account.id, body);
      expect([res.status, res.body.error]).toEqual([403, 'identity.registrar_required']);
      const list = await api().get(`/admin/api/registrar/accounts/${child.account.id}/mandates`).set('authorization', `Bearer ${token}`);
      expect(list.status).toBe(403);
    }
    const officer = await registrar();
    const low = await record(await mint(officer.account.id, SUBSTANTIAL), child.account.id, body);
    expect(low.status).toBe(401);
    expect(low.headers['www-authenticate']).toContain('insufficient_user_authentication');
    expect((await api().post(`/admin/api/registrar/accounts/${child.account.id}/mandates`).send(body)).status).toBe(401);
    // A change needs a recent sign-in; reading does not.
    const stale = await mint(officer.account.id, HIGH, Math.floor(Date.now() / 1000) - 3600);
    const refused = await record(stale, child.account.id, body);
    expect([refused.status, refused.body.error]).toEqual([401, 'admin.reauthenticate']);
    expect((await api().get(`/admin/api/registrar/accounts/${child.account.id}/mandates`).set('authorization', `Bearer ${stale}`)).status).toBe(200);
    // Nothing was recorded by any of them.
    expect(await server.kapija.mandates.listForPrincipal(child.account.id)).toEqual([]);
    expect(await ledger(child.account.id)).toEqual([]);
    // The registrar role alone does not open the rest of the admin API.
    expect((await api().get('/admin/api/audit').set('authorization', `Bearer ${officer.token}`)).status).toBe(403);
  });

  test('never naming the registrar, never a voluntary mandate: the citizens\' own mandates are not the registrar\'s to end', async () => {
    const officer = await registrar();
    const child = await createTestAccount(server.kapija, { identity: 'none' });
    const parent = await createTestAccount(server.kapija);
    const base = { basis: 'parent', decision_ref: 'R-2', purposes: ['general'] };
    const asRepresentative = await record(officer.token, child.account.id, { ...base, representative_id: officer.account.id });
    expect([asRepresentative.status, asRepresentative.body.error]).toEqual([403, 'mandate.own_account']);
    const asPrincipal = await record(officer.token, officer.account.id, { ...base, representative_id: parent.account.id });
    expect([asPrincipal.status, asPrincipal.body.error]).toEqual([403, 'mandate.own_account']);
    const voluntary = await record(officer.token, child.account.id, { ...base, basis: 'voluntary', representative_id: parent.account.id });
    expect(voluntary.status).toBe(400);
    const principal = await createTestAccount(server.kapija);
    const own = await server.kapija.mandates.grant(principal.account.id, parent.username, { services: null, purposes: ['tax'] });
    const end = await api().post(`/admin/api/registrar/mandates/${own.id}/withdraw`).set('authorization', `Bearer ${officer.token}`);
    expect([end.status, end.body.error]).toEqual([404, 'mandate.not_found']);
    expect((await server.kapija.mandates.find(own.id))?.withdrawnAt).toBeNull();
    expect(await server.kapija.mandates.listForPrincipal(child.account.id)).toEqual([]);
  });

  test('bad input is a JSON error naming the field, never a 500', async () => {
    const officer = await registrar();
    const child = await createTestAccount(server.kapija, { identity: 'none' });
    const parent = await createTestAccount(server.kapija);
    const unverified = await createTestAccount(server.kapija, { identity: 'none' });
    const ok = { representative_id: parent.account.id, basis: 'parent', decision_ref: 'R-3', purposes: ['health'] };
    const cases: Array<[string, unknown, number, string, string?]> = [
      ['no decision', { ...ok, decision_ref: undefined }, 400, 'request.invalid', 'decision_ref'],
      ['a blank decision', { ...ok, decision_ref: '   ' }, 400, 'request.invalid', 'decision_ref'],
      ['a decision too long', { ...ok, decision_ref: 'x'.repeat(201) }, 400, 'request.invalid', 'decision_ref'],
      ['both ways of naming the representative', { ...ok, representative_username: parent.username }, 400, 'request.invalid', 'representative_id'],
      ['no representative', { ...ok, representative_id: undefined }, 400, 'request.invalid', 'representative_id'],
      ['an unknown purpose', { ...ok, purposes: ['everything'] }, 400, 'mandate.invalid', 'purposes'],
      ['no purpose', { ...ok, purposes: [] }, 400, 'request.invalid', 'purposes'],
      ['purposes not a list', { ...ok, purposes: 'health' }, 400, 'request.invalid', 'purposes'],
      ['an end in the past', { ...ok, valid_until: '2020-01-01' }, 400, 'mandate.invalid', 'valid_until'],
      ['a date that does not exist', { ...ok, valid_until: '2030-13-45' }, 400, 'mandate.invalid', 'valid_until'],
      ['a start that does not exist', { ...ok, valid_from: '2030-02-31x' }, 400, 'request.invalid', 'valid_from'],
      ['more than ten years', { ...ok, valid_until: '2099-01-01' }, 400, 'mandate.invalid', 'valid_until'],
      ['a service id with spaces', { ...ok, services: ['bad id'] }, 400, 'mandate.invalid', 'services'],
      ['an unknown field', { ...ok, voluntary: true }, 400, 'request.invalid'],
      ['a list for a body', [ok], 400, 'request.invalid'],
      ['an unknown representative', { ...ok, representative_id: 'no-such-account' }, 400, 'mandate.representative_invalid'],
      ['an unknown representative by name', { ...ok, representative_id: undefined, representative_username: 'nobody-has-this' }, 400, 'mandate.representative_invalid'],
      ['a representative nobody verified', { ...ok, representative_id: unverified.account.id }, 400, 'mandate.representative_invalid'],
      ['the principal as their own representative', { ...ok, representative_id: child.account.id }, 400, 'mandate.own_account'],
    ];
    for (const [name, body, status, error, field] of cases) {
      const res = await record(officer.token, child.account.id, body);
      expect({ name, status: res.status, error: res.body.error, ...(field ? { field: res.body.details?.field } : {}) }).toEqual({ name, status, error, ...(field ? { field } : {}) });
    }
    // Not JSON at all, an unknown or absurd principal, an absurd mandate id.
    const broken = await api().post(`/admin/api/registrar/accounts/${child.account.id}/mandates`).set('authorization', `Bearer ${officer.token}`).set('content-type', 'application/json').send('{"basis": ');
    expect(broken.status).toBe(400);
    expect(broken.body.error).toBeDefined();
    expect((await record(officer.token, 'no-such-account', ok)).status).toBe(404);
    expect((await record(officer.token, 'x'.repeat(5000), ok)).status).toBe(404);
    expect((await api().get(`/admin/api/registrar/accounts/${'x'.repeat(5000)}/mandates`).set('authorization', `Bearer ${officer.token}`)).status).toBe(404);
    expect((await api().post(`/admin/api/registrar/mandates/${'x'.repeat(5000)}/withdraw`).set('authorization', `Bearer ${officer.token}`)).status).toBe(404);
    expect(await server.kapija.mandates.listForPrincipal(child.account.id)).toEqual([]);
    expect(await ledger(parent.account.id)).toEqual([]);
  });
});
