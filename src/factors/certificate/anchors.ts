/**
 * The trust anchors of certificate sign-in: the operator's PEM bundle (CERT_TRUST_ANCHORS) of the
 * eID roots and their intermediates. Only what is in this bundle can issue a certificate Kapija
 * accepts or sign a CRL Kapija stores; certificates the client sends along are never used to build a
 * path (nginx forwards only the client's own certificate anyway).
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import * as x509 from '@peculiar/x509';

export class TrustAnchorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrustAnchorError';
  }
}

export interface TrustAnchor {
  /** Node's view: signatures (OpenSSL), validity, issuer/subject matching. */
  readonly cert: X509Certificate;
  /** The parsed structure: extensions and names that node:crypto does not expose. */
  readonly parsed: x509.X509Certificate;
  /** SHA-256 of the DER, lower-case hex: how a stored CRL names the CA that signed it. */
  readonly fingerprint: string;
  readonly selfSigned: boolean;
}

export interface TrustAnchors {
  readonly all: readonly TrustAnchor[];
  byFingerprint(fingerprint: string): TrustAnchor | undefined;
}

/** SHA-256 of a certificate's DER, lower-case hex without separators. */
export const fingerprintOf = (cert: X509Certificate) => cert.fingerprint256.replace(/:/g, '').toLowerCase();

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Parses a PEM bundle. Every certificate in it must be a CA (basicConstraints CA:TRUE) and at least
 * one must be a self-signed root.
 * @throws TrustAnchorError naming what is wrong
 */
export function parseTrustAnchors(pem: string): TrustAnchors {
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new TrustAnchorError('holds no PEM certificate');
  const all: TrustAnchor[] = [];
  for (const [i, block] of blocks.entries()) {
    let cert: X509Certificate;
    let parsed: x509.X509Certificate;
    try {
      cert = new X509Certificate(block);
      parsed = new x509.X509Certificate(block);
    } catch {
      throw new TrustAnchorError(`certificate ${i + 1} of the bundle cannot be parsed`);
    }
    if (!cert.ca) throw new TrustAnchorError(`certificate ${i + 1} of the bundle (${parsed.subject}) is not a CA`);
    const fingerprint = fingerprintOf(cert);
    if (all.some((a) => a.fingerprint === fingerprint)) continue;
    all.push({ cert, parsed, fingerprint, selfSigned: cert.checkIssued(cert) && cert.verify(cert.publicKey) });
  }
  if (!all.some((a) => a.selfSigned)) throw new TrustAnchorError('holds no self-signed root certificate');
  const index = new Map(all.map((a) => [a.fingerprint, a]));
  return Object.freeze({ all: Object.freeze(all), byFingerprint: (f: string) => index.get(f.toLowerCase()) });
}

/** Reads and parses the bundle file named by CERT_TRUST_ANCHORS. */
export function loadTrustAnchors(file: string): TrustAnchors {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TrustAnchorError(`cannot read "${file}": ${(err as Error).message.split('\n')[0]}`);
  }
  return parseTrustAnchors(pem);
}

/** Whether a CA's keyUsage (when present) allows `flag` (keyCertSign or cRLSign). */
export function caMay(anchor: TrustAnchor, flag: x509.KeyUsageFlags): boolean {
  const ku = anchor.parsed.getExtension(x509.KeyUsagesExtension);
  return !ku || (ku.usages & flag) !== 0;
}
