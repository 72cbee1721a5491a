/**
 * Certificate revocation lists (RFC 5280 §5): parsed with @peculiar/x509 (node:crypto has no CRL
 * support) and accepted only when signed by a CA of the trust anchors that may sign CRLs, carrying a
 * nextUpdate, and complete (a delta CRL or one with an unknown critical extension is refused: it
 * could leave revoked certificates out).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { constants, verify as verifySignature } from 'node:crypto';
import { caMay, type TrustAnchor, type TrustAnchors } from './anchors.js';

export class CrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CrlError';
  }
}

export interface VerifiedCrl {
  /** The trust anchor that signed it (SHA-256 fingerprint of its certificate). */
  readonly issuerFingerprint: string;
  /** The issuer's name, for messages. */
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** The CRL number extension, decimal, when present. */
  readonly crlNumber: string | undefined;
  /** Serial numbers of revoked certificates: upper-case hex, no leading zeros. */
  readonly revoked: ReadonlySet<string>;
  readonly der: Buffer;
}

/** Serial numbers compared in one form: upper-case hex without leading zeros. */
export const normaliseSerial = (hex: string) => hex.replace(/[^0-9a-f]/gi, '').toUpperCase().replace(/^0+(?=.)/, '');

const CRL_NUMBER = '2.5.29.20';
const DELTA_CRL_INDICATOR = '2.5.29.27';
const ISSUING_DISTRIBUTION_POINT = '2.5.29.28';
const KNOWN_CRL_EXTENSIONS = new Set([CRL_NUMBER, '2.5.29.35' /* authority key identifier */, ISSUING_DISTRIBUTION_POINT]);

function parseCrl(data: Buffer): { crl: x509.X509Crl; der: Buffer } {
  const pem = data.toString('latin1');
  try {
    const crl = new x509.X509Crl(pem.includes('-----BEGIN X509 CRL-----') ? pem : new Uint8Array(data));
    return { crl, der: Buffer.from(crl.rawData) };
  } catch {
    throw new CrlError('not a certificate revocation list (DER or PEM)');
  }
}

/** Start of the contents and end of the DER element at `offset` (definite lengths only, as DER requires). */
function element(der: Buffer, offset: number): { contents: number; end: number } {
  let length = der[offset + 1];
  let contents = offset + 2;
  if (length === undefined) throw new CrlError('truncated');
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n < 1 || n > 4) throw new CrlError('not DER');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[contents + i] ?? 0);
    contents += n;
  }
  if (contents + length > der.length) throw new CrlError('truncated');
  return { contents, end: contents + length };
}

/** The signed part of a CertificateList: the bytes of its first element, tbsCertList. */
function tbsCertList(der: Buffer): Buffer {
  const outer = element(der, 0);
  return der.subarray(outer.contents, element(der, outer.contents).end);
}

const HASHES: Record<string, string> = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

/**
 * The CRL's signature checked by node:crypto (OpenSSL) with the CA's public key: RSA PKCS#1 v1.5,
 * RSA-PSS or ECDSA over SHA-2. SHA-1 and anything else are refused.
 */
function signedBy(crl: x509.X509Crl, der: Buffer, anchor: TrustAnchor): boolean {
  const alg = crl.signatureAlgorithm as { name: string; hash?: { name: string }; saltLength?: number };
  const hash = alg.hash ? HASHES[alg.hash.name] : undefined;
  if (!hash) return false;
  const signature = Buffer.from(crl.signature);
  const data = tbsCertList(der);
  const key = anchor.cert.publicKey;
  if (alg.name === 'ECDSA' && key.asymmetricKeyType === 'ec') return verifySignature(hash, data, { key, dsaEncoding: 'der' }, signature);
  if (alg.name === 'RSASSA-PKCS1-v1_5' && key.asymmetricKeyType === 'rsa') return verifySignature(hash, data, key, signature);
  if (alg.name === 'RSA-PSS' && (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss')) {
    return verifySignature(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength ?? constants.RSA_PSS_SALTLEN_AUTO }, signature);
  }
  return false;
}

function crlNumber(crl: x509.X509Crl): string | undefined {
  const ext = crl.getExtension(CRL_NUMBER);
  if (!ext) return undefined;
  // INTEGER: tag 0x02, short length, big-endian two's complement (CRL numbers are non-negative).
  const v = new Uint8Array(ext.value);
  if (v[0] !== 0x02 || v[1] === undefined || v[1] > 20 || v.length !== v[1] + 2) return undefined;
  return BigInt(`0x${Buffer.from(v.subarray(2)).toString('hex') || '0'}`).toString(10);
}

/**
 * Verifies a CRL (DER or PEM) against the trust anchors and that it is current at the time `at`:
 * what `kapija certs refresh` requires before storing one.
 * @throws CrlError saying why it cannot be used
 */
export async function verifyCrl(data: Buffer, anchors: TrustAnchors, at: Date): Promise<VerifiedCrl> {
  const crl = await verifyCrlSignature(data, anchors);
  if (crl.nextUpdate.getTime() <= at.getTime()) throw new CrlError(`it expired on ${crl.nextUpdate.toISOString()} (nextUpdate); fetch a current one`);
  return crl;
}

/**
 * Verifies a CRL's signer and completeness but not its freshness: how a stored CRL is read back
 * (the validator then compares its nextUpdate with the time of the sign-in and fails closed).
 * @throws CrlError saying why it cannot be used
 */
export async function verifyCrlSignature(data: Buffer, anchors: TrustAnchors): Promise<VerifiedCrl> {
  const { crl, der } = parseCrl(data);
  for (const ext of crl.extensions) {
    if (ext.type === DELTA_CRL_INDICATOR) throw new CrlError('delta CRLs are not supported: give the full CRL');
    if (ext.critical && !KNOWN_CRL_EXTENSIONS.has(ext.type)) throw new CrlError(`unknown critical CRL extension ${ext.type}`);
  }
  const candidates = anchors.all.filter((a) => a.parsed.subjectName.toString() === crl.issuerName.toString());
  if (candidates.length === 0) throw new CrlError(`issued by "${crl.issuer}", which is not among the trust anchors (CERT_TRUST_ANCHORS)`);
  let signer: TrustAnchor | undefined;
  for (const a of candidates) {
    if (!caMay(a, x509.KeyUsageFlags.cRLSign)) continue;
    let ok: boolean;
    try {
      ok = signedBy(crl, der, a);
    } catch {
      ok = false;
    }
    if (ok) {
      signer = a;
      break;
    }
  }
  if (!signer) throw new CrlError(`its signature does not verify with the certificate of "${crl.issuer}"`);
  const nextUpdate = crl.nextUpdate;
  if (!nextUpdate) throw new CrlError('it has no nextUpdate, so Kapija cannot tell when it goes stale');
  const revoked = new Set<string>();
  for (const entry of crl.entries) revoked.add(normaliseSerial(entry.serialNumber));
  return Object.freeze({
    issuerFingerprint: signer.fingerprint,
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate,
    nextUpdate,
    crlNumber: crlNumber(crl),
    revoked,
    der,
  });
}
