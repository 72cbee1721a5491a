/**
 * The ID card factor's account resolution, with the hand-off and identity proofing in memory: the
 * account of the verified JMBG, else a new account proofed at high from the certificate (Latin names
 * transliterated, date of birth from the JMBG); no re-proofing at high; a return token only for its
 * interaction; a refusal explained.
 */
import { KapijaError } from '../../../src/errors.js';
import { birthdateOfJmbg, createCertificateFactor, type CertificateProofing } from '../../../src/factors/certificate/factor.js';
import type { CertificateHandoff, CertificateOutcome } from '../../../src/factors/certificate/handoff.js';
import type { ProofingInput } from '../../../src/identity/service.js';
import type { IdentityLevel } from '../../../src/identity/levels.js';
import type { AccountRepository, NewAccount } from '../../../src/store/accounts.js';

const JMBG = '0101990710008';
const identity = { jmbg: JMBG, givenName: 'Петар', surname: 'Петровић', commonName: 'Петар Петровић', issuer: 'CN=Test CA', serial: '1A2B', notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2031-01-02T00:00:00.000Z', fingerprint: 'ab' };

function setup() {
  const outcomes = new Map<string, { uid: string; outcome: CertificateOutcome }>();
  const handoff: CertificateHandoff = {
    issueTicket: async () => 'ticket',
    useTicket: async () => undefined,
    issueReturn: async (uid, outcome) => {
      const token = `token-${outcomes.size}`;
      outcomes.set(token, { uid, outcome });
      return token;
    },
    useReturn: async (token, uid) => {
      const got = outcomes.get(token);
      if (!got || got.uid !== uid) return undefined;
      outcomes.delete(token);
      return got.outcome;
    },
  };
  const created: Array<NewAccount & { id: string }> = [];
  const accounts = {
    create: async (input: NewAccount, hash: string | null) => {
      expect(hash).toBeNull();
      const account = { ...input, id: `acc-${created.length + 1}` };
      created.push(account);
      return account;
    },
    erase: async () => undefined,
  } as unknown as AccountRepository;
  const proofings: Array<{ accountId: string; input: ProofingInput }> = [];
  const levels = new Map<string, { jmbg: string; level: IdentityLevel }>();
  const proofing: CertificateProofing = {
    findAccountByVerifiedJmbg: async (jmbg) => [...levels].find(([, v]) => v.jmbg === jmbg)?.[0],
    find: async (accountId) => levels.get(accountId),
    recordProofing: async (accountId, input) => {
      proofings.push({ accountId, input });
      levels.set(accountId, { jmbg: input.attributes.jmbg!, level: input.level });
    },
  };
  const factor = createCertificateFactor({ accounts, identity: proofing, handoff, signInUrl: 'https://eid.kapija.example' });
  const identify = async (outcome: CertificateOutcome, uid = 'uid-1', at = uid) => factor.first!.identify({ body: { return: await handoff.issueReturn(uid, outcome) }, interaction: at, ip: '192.0.2.1' });
  return { factor, created, proofings, levels, identify };
}

test('the date of birth a JMBG begins with', () => {
  expect(birthdateOfJmbg('0101990710008')).toBe('1990-01-01');
  expect(birthdateOfJmbg('3112005800009')).toBe('2005-12-31');
});

test('first use: a new account (random user name, no password) proofed at high from the certificate, Latin names transliterated', async () => {
  const s = setup();
  const proof = await s.identify({ ok: true, identity });
  expect(proof).toEqual({ accountId: 'acc-1', amr: ['sc', 'pin'] });
  expect(s.created[0]).toMatchObject({ username: expect.stringMatching(/^eid-[0-9a-f]{16}$/), givenName: 'Петар', familyName: 'Петровић', birthdate: '1990-01-01', status: 'active' });
  expect(s.proofings).toEqual([
    {
      accountId: 'acc-1',
      input: {
        method: 'certificate',
        level: 'high',
        verifier: 'CN=Test CA',
        evidence: { type: 'certificate', certificateIssuer: 'CN=Test CA', certificateSerial: '1A2B', expiry: '2031-01-02' },
        attributes: { givenNameCyrl: 'Петар', familyNameCyrl: 'Петровић', givenNameLatn: 'Petar', familyNameLatn: 'Petrović', birthdate: '1990-01-01', jmbg: JMBG },
      },
    },
  ]);
});

test('later uses: the same account, not proofed again; an identity below high with the same JMBG is raised', async () => {
  const s = setup();
  await s.identify({ ok: true, identity });
  expect((await s.identify({ ok: true, identity })).accountId).toBe('acc-1');
  expect(s.proofings).toHaveLength(1);
  s.levels.set('counter', { jmbg: '0202980710000', level: 'substantial' });
  expect((await s.identify({ ok: true, identity: { ...identity, jmbg: '0202980710000' } })).accountId).toBe('counter');
  expect(s.proofings.at(-1)).toMatchObject({ accountId: 'counter', input: { level: 'high', method: 'certificate' } });
  expect(s.created).toHaveLength(1);
});

test('a refusal is explained; a return token of another interaction or none is refused', async () => {
  const s = setup();
  await expect(s.identify({ ok: false, reason: 'revoked' })).rejects.toMatchObject({ code: 'certificate.refused', status: 401, details: { reason: 'revoked', refusal: true } });
  await expect(s.identify({ ok: true, identity }, 'uid-1', 'uid-2')).rejects.toMatchObject({ code: 'certificate.return_invalid', status: 401 });
  await expect(s.factor.first!.identify({ body: {}, interaction: 'uid-1' })).rejects.toBeInstanceOf(KapijaError);
  await expect(s.factor.first!.identify({ body: { return: 'token-0' } })).rejects.toMatchObject({ code: 'certificate.return_invalid' });
  expect(s.created).toHaveLength(0);
});

test('the button leads to the certificate host with the ticket', async () => {
  const s = setup();
  expect(s.factor.first!.redirect!.origin).toBe('https://eid.kapija.example');
  expect(await s.factor.first!.redirect!.start('uid-1')).toBe('https://eid.kapija.example/eid/sign-in?ticket=ticket');
  expect(s.factor).toMatchObject({ id: 'certificate', step: 'first', storesCredentials: false, listed: false });
});
