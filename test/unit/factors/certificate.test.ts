/**
 * The eID certificate validator against a test PKI made with openssl: the good case and every
 * refusal reason; the CRL checks; the proxy's header and its shared secret.
 */
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { en } from '../../../src/i18n/messages/en.js';
import { levelFor } from '../../../src/oidc/acr.js';
import {
  CERTIFICATE_AMR,
  CERTIFICATE_REFUSALS,
  CLIENT_CERT_HEADER,
  refusalMessageKey,
  CrlError,
  PROXY_SECRET_HEADER,
  createCertificateValidator,
  parseTrustAnchors,
  readForwardedCertificate,
  verifyCrl,
  verifyCrlSignature,
  type CrlSource,
  type TrustAnchors,
  type VerifiedCrl,
} from '../../../src/factors/certificate/index.js';
import { makeTestEidPki, type TestEidPki } from '../../support/test-ca.js';

const DAY = 24 * 3600 * 1000;
let pki: TestEidPki;
let anchors: TrustAnchors;
let crls: VerifiedCrl[];

/** CRLs held in memory, as the store would give them back. */
const source = (list: readonly VerifiedCrl[]): CrlSource => ({
  crlFor: async (issuer) => list.find((c) => c.issuerFingerprint === issuer.fingerprint),
});

beforeAll(async () => {
  pki = makeTestEidPki();
  anchors = parseTrustAnchors(pki.anchorsPem);
  crls = await Promise.all([pki.crls.intermediate, pki.crls.root, pki.crls.revokedIntermediate].map((der) => verifyCrl(der, anchors, new Date())));
});

const validator = (list: readonly VerifiedCrl[] = crls) => createCertificateValidator({ anchors, crls: source(list) });

describe('certificate validation', () => {
  test('the citizen’s certificate gives the identity in its subject', async () => {
    const result = await validator().validate(pki.citizen.pem);
    const cert = new X509Certificate(pki.citizen.pem);
    expect(result).toEqual({
      ok: true,
      identity: {
        jmbg: pki.citizen.jmbg,
        givenName: 'Петар',
        surname: 'Петровић',
        commonName: `Петар Петровић ${pki.citizen.jmbg}`,
        issuer: 'C=RS, O=Kapija Test, CN=Kapija Test eID Citizens CA',
        serial: cert.serialNumber.replace(/^0+/, ''),
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
        fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
      },
    });
  });

  test('DER is accepted as well as PEM', async () => {
    const der = Buffer.from(new X509Certificate(pki.citizen.pem).raw);
    expect(await validator().validate(der)).toMatchObject({ ok: true, identity: { jmbg: pki.citizen.jmbg } });
  });

  test.each([
    ['foreign', 'untrusted'],
    ['revoked', 'revoked'],
    ['expired', 'expired'],
    ['notYetValid', 'not_yet_valid'],
    ['wrongKeyUsage', 'wrong_key_usage'],
    ['noJmbg', 'no_jmbg'],
    ['badJmbg', 'no_jmbg'],
  ] as const)('%s → %s', async (which, reason) => {
    expect(await validator().validate(pki[which].pem)).toEqual({ ok: false, reason });
  });

  test('a certificate under an intermediate the root has revoked is revoked', async () => {
    expect(await validator().validate(pki.underRevokedIntermediate.pem)).toEqual({ ok: false, reason: 'revoked' });
  });

  test.each([
    ['garbage', 'not a certificate'],
    ['empty', ''],
    ['truncated PEM', () => pki.citizen.pem.slice(0, 300)],
  ] as const)('%s → malformed', async (_, input) => {
    expect(await validator().validate(typeof input === 'function' ? input() : input)).toEqual({ ok: false, reason: 'malformed' });
  });

  test('a certificate with any byte changed never throws and never names another citizen', async () => {
    const der = Buffer.from(new X509Certificate(pki.citizen.pem).raw);
    const v = validator();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
        const mutated = Buffer.from(der);
        mutated[at]! ^= xor;
        const result = await v.validate(mutated);
        // Only a change outside the signed part could still pass, and then it names the same citizen.
        if (result.ok) expect([result.identity.jmbg, result.identity.givenName, result.identity.surname]).toEqual([pki.citizen.jmbg, 'Петар', 'Петровић']);
      }),
      { numRuns: 300 },
    );
  });

  test('a CA certificate presented as a citizen’s is refused for its key usage', async () => {
    expect(await validator().validate(pki.intermediate.pem)).toEqual({ ok: false, reason: 'wrong_key_usage' });
  });

  test('only the trust anchors build the path: the root alone does not trust what the intermediate issued', async () => {
    const rootOnly = parseTrustAnchors(pki.root.pem);
    const v = createCertificateValidator({ anchors: rootOnly, crls: source([]) });
    expect(await v.validate(pki.citizen.pem)).toEqual({ ok: false, reason: 'untrusted' });
  });

  test('no CRL of the issuing CA: fail closed', async () => {
    const onlyRoot = crls.filter((c) => c.issuer.includes('Root'));
    expect(await validator(onlyRoot).validate(pki.citizen.pem)).toEqual({ ok: false, reason: 'crl_unavailable' });
  });

  test('no CRL of the root, which would list a revoked intermediate: fail closed', async () => {
    const onlyIntermediate = crls.filter((c) => c.issuer.includes('Citizens CA'));
    expect(await validator(onlyIntermediate).validate(pki.citizen.pem)).toEqual({ ok: false, reason: 'crl_unavailable' });
  });

  test('a CRL past its nextUpdate: fail closed while the certificate itself is still valid', async () => {
    const inter = crls[0]!;
    const afterNextUpdate = new Date(inter.nextUpdate.getTime() + 1000);
    expect(afterNextUpdate.getTime()).toBeLessThan(new Date(new X509Certificate(pki.citizen.pem).validTo).getTime());
    expect(await validator().validate(pki.citizen.pem, afterNextUpdate)).toEqual({ ok: false, reason: 'crl_unavailable' });
    expect(await validator().validate(pki.citizen.pem, new Date(inter.nextUpdate.getTime() - 1000))).toMatchObject({ ok: true });
  });

  test('a CRL source that fails is a missing CRL', async () => {
    const failing: CrlSource = { crlFor: async () => Promise.reject(new Error('database down')) };
    const v = createCertificateValidator({ anchors, crls: failing });
    expect(await v.validate(pki.citizen.pem)).toEqual({ ok: false, reason: 'crl_unavailable' });
  });

  test('the clock decides validity: the good certificate is expired after its notAfter', async () => {
    const notAfter = new Date(new X509Certificate(pki.citizen.pem).validTo);
    expect(await validator().validate(pki.citizen.pem, new Date(notAfter.getTime() + DAY))).toEqual({ ok: false, reason: 'expired' });
  });
});

describe('CRL verification', () => {
  test('the intermediate’s CRL lists the revoked certificate and names its signer', async () => {
    const crl = await verifyCrl(pki.crls.intermediate, anchors, new Date());
    const inter = anchors.all.find((a) => a.parsed.subject.includes('Citizens CA'))!;
    expect(crl.issuerFingerprint).toBe(inter.fingerprint);
    expect(crl.revoked.has(new X509Certificate(pki.revoked.pem).serialNumber.replace(/^0+/, ''))).toBe(true);
    expect(crl.revoked.size).toBe(1);
    expect(crl.crlNumber).toBe('1');
  });

  test('PEM is accepted as well as DER', async () => {
    const pem = `-----BEGIN X509 CRL-----\n${pki.crls.root.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END X509 CRL-----\n`;
    expect((await verifyCrl(Buffer.from(pem), anchors, new Date())).revoked.size).toBe(1);
  });

  test('a CRL of a CA outside the trust anchors is refused', async () => {
    await expect(verifyCrl(pki.crls.foreign, anchors, new Date())).rejects.toThrow(/not among the trust anchors/);
  });

  test('a CRL whose signature does not verify is refused', async () => {
    const tampered = Buffer.from(pki.crls.intermediate);
    tampered[tampered.length - 5]! ^= 0x01;
    await expect(verifyCrlSignature(tampered, anchors)).rejects.toThrow(CrlError);
  });

  test('a CRL with a revoked entry removed (the signed bytes changed) is refused', async () => {
    const der = Buffer.from(pki.crls.intermediate);
    const serial = Buffer.from(new X509Certificate(pki.revoked.pem).serialNumber, 'hex');
    const at = der.indexOf(serial);
    expect(at).toBeGreaterThan(0);
    der[at]! ^= 0xff;
    await expect(verifyCrlSignature(der, anchors)).rejects.toThrow(/signature does not verify/);
  });

  test('an expired CRL is refused for storing', async () => {
    const crl = await verifyCrlSignature(pki.crls.intermediate, anchors);
    await expect(verifyCrl(pki.crls.intermediate, anchors, new Date(crl.nextUpdate.getTime() + 1))).rejects.toThrow(/expired on/);
  });

  test('something that is not a CRL is refused', async () => {
    await expect(verifyCrl(Buffer.from(pki.citizen.pem), anchors, new Date())).rejects.toThrow(/not a certificate revocation list/);
  });
});

describe('trust anchors', () => {
  test('a bundle without a root, or with an end-entity certificate, is refused', () => {
    expect(() => parseTrustAnchors(pki.intermediate.pem)).toThrow(/no self-signed root/);
    expect(() => parseTrustAnchors(`${pki.root.pem}${pki.citizen.pem}`)).toThrow(/is not a CA/);
    expect(() => parseTrustAnchors('nothing')).toThrow(/no PEM certificate/);
  });
});

describe('the proxy’s header', () => {
  const secret = 'a-proxy-secret-of-at-least-32-characters';
  const escaped = () => encodeURIComponent(pki.citizen.pem);

  test('with the proxy’s secret the forwarded PEM is read back', () => {
    expect(readForwardedCertificate({ [CLIENT_CERT_HEADER]: escaped(), [PROXY_SECRET_HEADER]: secret }, secret)).toEqual({ kind: 'certificate', pem: pki.citizen.pem });
  });

  test('without it, or with a wrong one, the header is ignored', () => {
    expect(readForwardedCertificate({ [CLIENT_CERT_HEADER]: escaped() }, secret)).toEqual({ kind: 'unauthenticated' });
    expect(readForwardedCertificate({ [CLIENT_CERT_HEADER]: escaped(), [PROXY_SECRET_HEADER]: `${secret}x` }, secret)).toEqual({ kind: 'unauthenticated' });
    expect(readForwardedCertificate({ [CLIENT_CERT_HEADER]: escaped(), [PROXY_SECRET_HEADER]: [secret, secret] }, secret)).toEqual({ kind: 'unauthenticated' });
  });

  test('no certificate presented: nothing, or an empty value from the proxy', () => {
    expect(readForwardedCertificate({}, secret)).toEqual({ kind: 'none' });
    expect(readForwardedCertificate({ [PROXY_SECRET_HEADER]: secret }, secret)).toEqual({ kind: 'none' });
    expect(readForwardedCertificate({ [PROXY_SECRET_HEADER]: secret, [CLIENT_CERT_HEADER]: '' }, secret)).toEqual({ kind: 'none' });
  });

  test('a value that does not URL-decode is passed on as malformed (empty)', () => {
    expect(readForwardedCertificate({ [PROXY_SECRET_HEADER]: secret, [CLIENT_CERT_HEADER]: '%E0%A4%A' }, secret)).toEqual({ kind: 'certificate', pem: '' });
  });
});

test('every refusal, and no certificate at all, has the citizen’s explanation in the catalogue', () => {
  const keys = [...CERTIFICATE_REFUSALS, 'none' as const].map(refusalMessageKey);
  expect(keys.filter((k) => !(k in en))).toEqual([]);
  expect(new Set(keys.map((k) => (en as Record<string, string>)[k])).size).toBe(keys.length);
});

test('a certificate sign-in proves the card and its PIN, which is eIDAS high', () => {
  expect(CERTIFICATE_AMR).toEqual(['sc', 'pin']);
  expect(levelFor(CERTIFICATE_AMR)).toBe('high');
});
