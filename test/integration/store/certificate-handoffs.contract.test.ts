/**
 * The ID-card hand-off's single-use rows on every store (factors/certificate/handoff.ts over
 * store/certificate-handoffs.ts): a ticket and a return token are used once, also by two instances
 * at the same moment; a return token only for its interaction; nothing after expiry; only keyed
 * hashes of the tokens and the sealed outcome are stored.
 */
import { randomBytes } from 'node:crypto';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createCertificateHandoffRepository } from '../../../src/store/certificate-handoffs.js';
import { createCertificateHandoff, outcomeOf, type CertificateHandoff, type CertificateOutcome } from '../../../src/factors/certificate/handoff.js';
import { createSecretBox } from '../../../src/security/crypto.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

const MINUTE = 60 * 1000;
const identity = {
  jmbg: '0101990710008',
  givenName: 'Петар',
  surname: 'Петровић',
  commonName: 'Петар Петровић',
  issuer: 'CN=Test CA',
  serial: '1A2B',
  notBefore: new Date('2026-01-01T00:00:00Z'),
  notAfter: new Date('2031-01-01T00:00:00Z'),
  fingerprint: 'ab'.repeat(32),
};

describe.each(stores())('the ID-card hand-off (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let clock: number;
  let handoff: CertificateHandoff;
  /** A second instance: its own repository and box on the same database and master key. */
  let other: CertificateHandoff;

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    const key = randomBytes(32);
    clock = Date.now();
    handoff = createCertificateHandoff({ repo: createCertificateHandoffRepository(db, () => clock), box: createSecretBox(key) });
    other = createCertificateHandoff({ repo: createCertificateHandoffRepository(db, () => clock), box: createSecretBox(key) });
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  it('a ticket names its interaction once, on whichever instance comes first', async () => {
    const ticket = await handoff.issueTicket('uid-1');
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await other.useTicket(ticket)).toBe('uid-1');
    expect(await handoff.useTicket(ticket)).toBeUndefined();
  });

  it('two instances using one ticket at the same moment: exactly one gets it', async () => {
    const ticket = await handoff.issueTicket('uid-2');
    const got = await Promise.all([handoff.useTicket(ticket), other.useTicket(ticket), handoff.useTicket(ticket), other.useTicket(ticket)]);
    expect(got.filter(Boolean)).toEqual(['uid-2']);
  });

  it('a return token gives the outcome once, only for the interaction it was made for', async () => {
    const outcome = outcomeOf({ ok: true, identity });
    const token = await handoff.issueReturn('uid-3', outcome);
    expect(await other.useReturn(token, 'uid-other')).toBeUndefined();
    expect(await other.useReturn(token, 'uid-3')).toEqual(outcome);
    expect(await handoff.useReturn(token, 'uid-3')).toBeUndefined();
    const refusal: CertificateOutcome = { ok: false, reason: 'revoked' };
    expect(await handoff.useReturn(await handoff.issueReturn('uid-4', refusal), 'uid-4')).toEqual(refusal);
  });

  it('a ticket is not a return token, nor the other way round', async () => {
    const ticket = await handoff.issueTicket('uid-5');
    expect(await handoff.useReturn(ticket, 'uid-5')).toBeUndefined();
    const token = await handoff.issueReturn('uid-5', { ok: false, reason: 'none' });
    expect(await handoff.useTicket(token)).toBeUndefined();
    expect(await handoff.useTicket(ticket)).toBe('uid-5');
  });

  it('nothing after five minutes; expired rows are purged', async () => {
    const ticket = await handoff.issueTicket('uid-6');
    const token = await handoff.issueReturn('uid-6', { ok: false, reason: 'none' });
    clock += 5 * MINUTE + 1;
    expect(await handoff.useTicket(ticket)).toBeUndefined();
    expect(await handoff.useReturn(token, 'uid-6')).toBeUndefined();
    expect(await createCertificateHandoffRepository(db, () => clock).purgeExpired()).toBeGreaterThanOrEqual(2);
    clock = Date.now();
  });

  it('malformed tokens are refused without a lookup; the database holds no token and no identity in clear', async () => {
    expect(await handoff.useTicket('')).toBeUndefined();
    expect(await handoff.useTicket('x'.repeat(5000))).toBeUndefined();
    expect(await handoff.useReturn('../../etc', 'uid-7')).toBeUndefined();
    const ticket = await handoff.issueTicket('uid-7');
    const token = await handoff.issueReturn('uid-7', outcomeOf({ ok: true, identity }));
    const dump = JSON.stringify(await db('certificate_handoffs').select('*'));
    expect(dump).not.toContain(ticket);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(identity.jmbg);
    expect(dump).not.toContain('Петар');
  });
});
