/**
 * Validation of the citizen's eID certificate, by Kapija itself (the proxy only proves that the
 * client holds the certificate's private key; `ssl_verify_client optional_no_ca` checks nothing else):
 *
 * 1. it parses (`malformed` otherwise);
 * 2. it chains to the trust anchors: each certificate issued and signed (OpenSSL, through
 *    node:crypto) by a CA of the bundle, up to a self-signed root of the bundle, each issuer allowed
 *    to sign certificates and within its path length (`untrusted`);
 * 3. it and every CA on the path are within their validity at the given clock (`not_yet_valid`,
 *    `expired`);
 * 4. it is an end-entity certificate for signing and client authentication: keyUsage present with
 *    digitalSignature, and extendedKeyUsage, when present, including clientAuth (`wrong_key_usage`);
 * 5. neither it nor an intermediate on the path is revoked, by the stored CRL of its issuer, which
 *    must be there and current (nextUpdate after the clock): no CRL or a stale one fails closed
 *    (`crl_unavailable`, `revoked`);
 * 6. its subject's serialNumber attribute (2.5.4.5) holds a valid JMBG, bare or in the ETSI EN 319
 *    412-1 form `PNORS-<JMBG>` (`no_jmbg`).
 */
import 'reflect-metadata';
import { X509Certificate, createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { isValidJmbg } from '../../assurance/jmbg.js';
import { caMay, fingerprintOf, type TrustAnchor, type TrustAnchors } from './anchors.js';
import { normaliseSerial, type VerifiedCrl } from './crl.js';

export type CertificateRefusal =
  | 'untrusted'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'crl_unavailable'
  | 'wrong_key_usage'
  | 'no_jmbg'
  | 'malformed';

export const CERTIFICATE_REFUSALS: readonly CertificateRefusal[] = Object.freeze([
  'untrusted',
  'expired',
  'not_yet_valid',
  'revoked',
  'crl_unavailable',
  'wrong_key_usage',
  'no_jmbg',
  'malformed',
]);

/** Who the certificate says the citizen is, once every check has passed. */
export interface CertificateIdentity {
  /** From the subject's serialNumber attribute, checked with oidc/jmbg.ts. */
  readonly jmbg: string;
  /** Subject givenName (2.5.4.42), as written in the certificate (the ID card writes Cyrillic). */
  readonly givenName: string | undefined;
  /** Subject surname (2.5.4.4). */
  readonly surname: string | undefined;
  /** Subject commonName (2.5.4.3). */
  readonly commonName: string | undefined;
  /** The issuing CA's distinguished name (RFC 4514 string). */
  readonly issuer: string;
  /** Serial number, upper-case hex without leading zeros. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 of the certificate's DER, lower-case hex. */
  readonly fingerprint: string;
}

export type CertificateCheck =
  | { readonly ok: true; readonly identity: CertificateIdentity }
  | { readonly ok: false; readonly reason: CertificateRefusal };

/** Where the validator finds the current CRL of an issuing CA (store-backed in production). */
export interface CrlSource {
  /** The verified CRL signed by the anchor with this fingerprint, stale or not; undefined when none is stored. */
  crlFor(issuer: TrustAnchor): Promise<VerifiedCrl | undefined>;
}

export interface CertificateValidator {
  /** Validates a certificate (PEM text or DER bytes) at `at` (now by default). Never throws on bad input. */
  validate(certificate: string | Buffer, at?: Date): Promise<CertificateCheck>;
}

const MAX_PATH = 6;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERIAL_NUMBER = '2.5.4.5';
const JMBG_SERIAL = /^(?:PNORS-)?(\d{13})$/;

const refuse = (reason: CertificateRefusal): CertificateCheck => ({ ok: false, reason });

interface Parsed {
  readonly cert: X509Certificate;
  readonly parsed: x509.X509Certificate;
}

function parse(input: string | Buffer): Parsed | undefined {
  try {
    const cert = new X509Certificate(input);
    return { cert, parsed: new x509.X509Certificate(new Uint8Array(cert.raw)) };
  } catch {
    return undefined;
  }
}

/** Whether `issuer` issued and signed `cert` (OpenSSL's name and key-identifier matching, then the signature). */
function signedBy(cert: X509Certificate, issuer: TrustAnchor): boolean {
  try {
    return issuer.cert.ca && caMay(issuer, x509.KeyUsageFlags.keyCertSign) && cert.checkIssued(issuer.cert) && cert.verify(issuer.cert.publicKey);
  } catch {
    return false;
  }
}

/**
 * The path from the leaf up to a self-signed root of the bundle, leaf excluded; undefined when none.
 * Where a CA was re-issued with the same key, the certificate valid at `at` is preferred.
 */
function buildPath(leaf: X509Certificate, anchors: TrustAnchors, at: Date): TrustAnchor[] | undefined {
  const path: TrustAnchor[] = [];
  let current = leaf;
  while (path.length < MAX_PATH) {
    const candidates = anchors.all.filter((a) => !path.includes(a) && signedBy(current, a));
    const issuer = candidates.find((a) => !validityProblem(a.cert, at)) ?? candidates[0];
    if (!issuer) return undefined;
    // basicConstraints pathLenConstraint: how many intermediates may follow this CA towards the leaf.
    const pathLength = issuer.parsed.getExtension(x509.BasicConstraintsExtension)?.pathLength;
    if (pathLength !== undefined && path.length > pathLength) return undefined;
    path.push(issuer);
    if (issuer.selfSigned) return path;
    current = issuer.cert;
  }
  return undefined;
}

function validityProblem(cert: X509Certificate, at: Date): CertificateRefusal | undefined {
  if (at.getTime() < new Date(cert.validFrom).getTime()) return 'not_yet_valid';
  if (at.getTime() > new Date(cert.validTo).getTime()) return 'expired';
  return undefined;
}

function keyUsageAllowsSignIn(leaf: Parsed): boolean {
  if (leaf.cert.ca) return false;
  const ku = leaf.parsed.getExtension(x509.KeyUsagesExtension);
  if (!ku || (ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) return false;
  const eku = leaf.parsed.getExtension(x509.ExtendedKeyUsageExtension);
  return !eku || eku.usages.map(String).includes(CLIENT_AUTH);
}

function jmbgOf(leaf: Parsed): string | undefined {
  const values = leaf.parsed.subjectName.getField(SERIAL_NUMBER);
  if (values.length !== 1) return undefined;
  const jmbg = JMBG_SERIAL.exec(values[0]!.trim())?.[1];
  return jmbg !== undefined && isValidJmbg(jmbg) ? jmbg : undefined;
}

const field = (name: x509.Name, oid: string) => name.getField(oid)[0];

export function createCertificateValidator(opts: { anchors: TrustAnchors; crls: CrlSource; now?: () => Date }): CertificateValidator {
  const now = opts.now ?? (() => new Date());
  return {
    async validate(input, at = now()) {
      try {
        return await check(input, at);
      } catch {
        // An extension or name that @peculiar/x509 or OpenSSL cannot read.
        return refuse('malformed');
      }
    },
  };

  async function check(input: string | Buffer, at: Date): Promise<CertificateCheck> {
    const leaf = parse(input);
    if (!leaf) return refuse('malformed');
    const path = buildPath(leaf.cert, opts.anchors, at);
    if (!path) return refuse('untrusted');
    for (const cert of [leaf.cert, ...path.map((a) => a.cert)]) {
      const problem = validityProblem(cert, at);
      if (problem) return refuse(problem);
    }
    if (!keyUsageAllowsSignIn(leaf)) return refuse('wrong_key_usage');
    // Revocation of the leaf and of every intermediate, each by its issuer's CRL; the root is trusted as configured.
    const subjects = [leaf.cert, ...path.slice(0, -1).map((a) => a.cert)];
    for (const [i, subject] of subjects.entries()) {
      let crl: VerifiedCrl | undefined;
      try {
        crl = await opts.crls.crlFor(path[i]!);
      } catch {
        crl = undefined;
      }
      if (!crl || crl.nextUpdate.getTime() <= at.getTime()) return refuse('crl_unavailable');
      if (crl.revoked.has(normaliseSerial(subject.serialNumber))) return refuse('revoked');
    }
    const jmbg = jmbgOf(leaf);
    if (!jmbg) return refuse('no_jmbg');
    const subject = leaf.parsed.subjectName;
    return {
      ok: true,
      identity: Object.freeze({
        jmbg,
        givenName: field(subject, '2.5.4.42'),
        surname: field(subject, '2.5.4.4'),
        commonName: field(subject, '2.5.4.3'),
        issuer: leaf.parsed.issuer,
        serial: normaliseSerial(leaf.cert.serialNumber),
        notBefore: new Date(leaf.cert.validFrom),
        notAfter: new Date(leaf.cert.validTo),
        fingerprint: createHash('sha256').update(leaf.cert.raw).digest('hex'),
      }),
    };
  }
}

export { fingerprintOf };
