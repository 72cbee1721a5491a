import { buildVerifiedClaims, requestedInnerClaims } from '../../../src/identity/verified-claims.js';
import type { VerifiedIdentity } from '../../../src/store/identities.js';

const identity = (over: Partial<VerifiedIdentity> = {}): VerifiedIdentity => ({
  accountId: 'a',
  level: 'substantial',
  proofedLevel: 'substantial',
  method: 'in_person',
  verifier: 'officer-1',
  office: 'Office',
  evidence: { type: 'document', documentType: 'passport', issuingCountry: 'RS', documentNumberHash: 'h', time: Date.UTC(2026, 0, 2), expiry: '2030-01-01' },
  attributes: { givenNameCyrl: 'Ана', familyNameCyrl: 'Анић', givenNameLatn: 'Ana', familyNameLatn: 'Anić', birthdate: '1990-01-01', jmbg: '0101990710008' },
  verifiedAt: new Date(Date.UTC(2026, 0, 2, 10)),
  expiresAt: null,
  revokedAt: null,
  revokedReason: null,
  ...over,
});
const all = () => true;

describe('verified_claims', () => {
  test('only the claims asked for, in the script asked for; verification elements only when asked', () => {
    const out = buildVerifiedClaims({ identity: identity(), request: { verification: { trust_framework: null, assurance_level: null }, claims: { given_name: null, 'family_name#sr-Latn': null } }, grantedScope: 'openid profile', allowed: all, rejected: [] });
    expect(out).toEqual({ verification: { trust_framework: 'rs_eid', assurance_level: 'substantial' }, claims: { given_name: 'Ана', 'family_name#sr-Latn': 'Anić' } });
  });

  test('the evidence names the document, never its number', () => {
    const out = buildVerifiedClaims({ identity: identity(), request: { verification: { evidence: null }, claims: { birthdate: null } }, grantedScope: 'profile', allowed: all, rejected: [] });
    expect(out?.verification).toEqual({ trust_framework: 'rs_eid', evidence: [{ type: 'document', check_details: [{ check_method: 'vpip' }], time: '2026-01-02T00:00:00Z', document_details: { type: 'passport', issuer: { country_code: 'RS' }, date_of_expiry: '2030-01-01' } }] });
    expect(JSON.stringify(out)).not.toContain('"h"');
  });

  test('a certificate is an electronic_signature evidence', () => {
    const out = buildVerifiedClaims({ identity: identity({ method: 'certificate', evidence: { type: 'certificate', certificateIssuer: 'CN=MUP CA', certificateSerial: '1F', time: 0 } }), request: { verification: { evidence: null }, claims: { given_name: null } }, grantedScope: 'profile', allowed: all, rejected: [] });
    expect((out?.verification as { evidence: unknown[] }).evidence[0]).toEqual({ type: 'electronic_signature', signature_type: 'qes_eidas', issuer: 'CN=MUP CA', serial_number: '1F', created_at: '1970-01-01T00:00:00Z' });
  });

  test('nothing without scope, with a refusal, after revocation, or when no claim is left', () => {
    const request = { claims: { given_name: null, jmbg: null } };
    expect(buildVerifiedClaims({ identity: identity(), request, grantedScope: 'openid', allowed: all, rejected: [] })).toBeUndefined();
    expect(buildVerifiedClaims({ identity: identity(), request, grantedScope: 'profile', allowed: all, rejected: ['given_name'] })).toBeUndefined();
    expect(buildVerifiedClaims({ identity: identity(), request, grantedScope: 'profile jmbg', allowed: (c) => c !== 'jmbg', rejected: [] })?.claims).toEqual({ given_name: 'Ана' });
    expect(buildVerifiedClaims({ identity: identity({ level: 'none' }), request, grantedScope: 'profile jmbg', allowed: all, rejected: [] })).toBeUndefined();
    expect(buildVerifiedClaims({ identity: identity(), request: { verification: {} }, grantedScope: 'profile', allowed: all, rejected: [] })).toBeUndefined();
    expect(buildVerifiedClaims({ identity: identity(), request: { claims: { email: null, nonsense: null } }, grantedScope: 'profile email', allowed: all, rejected: [] })).toBeUndefined();
  });

  test('an array of requests is answered as one', () => {
    const out = buildVerifiedClaims({ identity: identity(), request: [{ claims: { given_name: null } }, { claims: { jmbg: null } }], grantedScope: 'profile jmbg', allowed: all, rejected: [] });
    expect(out?.claims).toEqual({ given_name: 'Ана', jmbg: '0101990710008' });
    expect(requestedInnerClaims([{ claims: { a: null } }, { claims: { b: null } }, 'x'])).toEqual(['a', 'b']);
  });
});
