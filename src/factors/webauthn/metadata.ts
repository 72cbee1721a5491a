/**
 * The FIDO Metadata Service (MDS3) BLOB, offline: verified once when an operator imports it
 * (`kapija webauthn mds import FILE`), kept in the database, consulted at each registration.
 *
 * Verification follows FIDO MDS 3.0 §3.1.8 as `@simplewebauthn/server`'s `verifyMDSBlob` does, but
 * against trust anchors passed in rather than its process-wide settings, and with node:crypto:
 * the JWT's x5c chain must lead to one of the roots (each certificate issued and signed by the next,
 * intermediates and root CAs, all within their validity), the leaf must sign the JWT (RS256/384/512,
 * ES256/384/512, PS256/384/512), and the BLOB's serial number must be greater than the one already
 * imported (no roll-back). Certificate revocation lists cannot be fetched on an offline machine and
 * are not checked.
 *
 * Of each entry only what the judgement needs is kept: AAGUID, description, key protection,
 * attestation roots and status reports.
 */
import { X509Certificate, createVerify, constants } from 'node:crypto';
import type { MdsBlob, MdsEntry } from '../../store/webauthn-metadata.js';

export type { MdsBlob, MdsEntry };

export class MdsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MdsError';
  }
}

/** Statuses after which an authenticator model is no longer trusted (FIDO MDS 3.0 §3.1.4). */
const COMPROMISED = new Set([
  'USER_VERIFICATION_BYPASS',
  'ATTESTATION_KEY_COMPROMISE',
  'USER_KEY_REMOTE_COMPROMISE',
  'USER_KEY_PHYSICAL_COMPROMISE',
  'REVOKED',
]);
/** FIDO Authenticator Certification levels L1 and above (security certification, not functional only). */
const CERTIFIED = new Set([
  'FIDO_CERTIFIED_L1',
  'FIDO_CERTIFIED_L1plus',
  'FIDO_CERTIFIED_L2',
  'FIDO_CERTIFIED_L2plus',
  'FIDO_CERTIFIED_L3',
  'FIDO_CERTIFIED_L3plus',
]);
/** Key protection that keeps the private key out of reach of the host's software. */
const HARDWARE = new Set(['hardware', 'secure_element', 'tee']);

/**
 * Whether an authenticator model may count as a hardware key (`hwk`): FIDO certified at L1 or
 * above, its keys protected by hardware (hardware, secure element or TEE, never also `software`),
 * and no status report of a compromise or revocation.
 */
export function hardwareCertified(entry: MdsEntry): boolean {
  const statuses = entry.statusReports.map((r) => r.status);
  if (statuses.some((s) => COMPROMISED.has(s))) return false;
  if (!statuses.some((s) => CERTIFIED.has(s))) return false;
  if (entry.keyProtection.includes('software')) return false;
  return entry.keyProtection.some((k) => HARDWARE.has(k));
}

const withinValidity = (c: X509Certificate, at: Date) => new Date(c.validFrom) <= at && at <= new Date(c.validTo);

/**
 * Whether `chain` (leaf first) leads to one of `anchors`: every certificate issued and signed by the
 * next one, every issuer a CA, all within their validity at `at`. A chain that repeats the anchor
 * as its last element is accepted too.
 */
export function chainLeadsTo(chain: readonly X509Certificate[], anchors: readonly X509Certificate[], at: Date): boolean {
  if (chain.length === 0 || chain.length > 8) return false;
  for (const anchor of anchors) {
    if (!anchor.ca || !withinValidity(anchor, at)) continue;
    const path = chain.at(-1)!.fingerprint256 === anchor.fingerprint256 ? chain.slice(0, -1) : [...chain];
    const full = [...path, anchor];
    let ok = full.every((c) => withinValidity(c, at));
    for (let i = 0; ok && i < full.length - 1; i++) {
      const cert = full[i]!;
      const issuer = full[i + 1]!;
      ok = issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
    }
    if (ok) return true;
  }
  return false;
}

export function parseCertificate(input: string | Buffer): X509Certificate {
  return new X509Certificate(typeof input === 'string' && !input.includes('-----BEGIN') ? Buffer.from(input, 'base64') : input);
}

/** PEM certificates from a text holding one or more of them. */
export function pemCertificates(text: string): X509Certificate[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
}

const JWS_ALGS: Record<string, { hash: string; pss?: boolean; ec?: boolean }> = {
  RS256: { hash: 'sha256' },
  RS384: { hash: 'sha384' },
  RS512: { hash: 'sha512' },
  PS256: { hash: 'sha256', pss: true },
  PS384: { hash: 'sha384', pss: true },
  PS512: { hash: 'sha512', pss: true },
  ES256: { hash: 'sha256', ec: true },
  ES384: { hash: 'sha384', ec: true },
  ES512: { hash: 'sha512', ec: true },
};

function b64urlJson(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new MdsError(`the BLOB's ${what} is not JSON`);
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function toEntry(raw: unknown): MdsEntry | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const e = raw as { aaguid?: unknown; metadataStatement?: Record<string, unknown>; statusReports?: unknown };
  if (typeof e.aaguid !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(e.aaguid)) return undefined;
  const statement = e.metadataStatement ?? {};
  const reports = Array.isArray(e.statusReports) ? (e.statusReports as unknown[]) : [];
  return {
    aaguid: e.aaguid.toLowerCase(),
    description: typeof statement['description'] === 'string' ? statement['description'].slice(0, 200) : '',
    keyProtection: strings(statement['keyProtection']),
    attestationRootCertificates: strings(statement['attestationRootCertificates']),
    statusReports: reports.flatMap((r) => {
      const rep = r as { status?: unknown; effectiveDate?: unknown };
      if (typeof rep?.status !== 'string') return [];
      return [{ status: rep.status, ...(typeof rep.effectiveDate === 'string' ? { effectiveDate: rep.effectiveDate } : {}) }];
    }),
  };
}

/**
 * Verifies an MDS BLOB (a compact JWS) against `roots` and returns its FIDO2 entries.
 * @throws MdsError saying what is wrong
 */
export function verifyMdsBlob(jwt: string, roots: readonly X509Certificate[], at: Date = new Date()): MdsBlob {
  const parts = jwt.trim().split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw new MdsError('the file is not a JWT (header.payload.signature)');
  const [h, p, s] = parts as [string, string, string];
  const header = b64urlJson(h, 'header');
  const alg = typeof header['alg'] === 'string' ? JWS_ALGS[header['alg']] : undefined;
  if (!alg) throw new MdsError(`the BLOB's signature algorithm ${JSON.stringify(header['alg'])} is not supported`);
  const x5c = strings(header['x5c']);
  if (x5c.length === 0) throw new MdsError('the BLOB names no certificate (x5c)');
  let chain: X509Certificate[];
  try {
    chain = x5c.map((c) => parseCertificate(c));
  } catch {
    throw new MdsError('a certificate of the BLOB (x5c) cannot be read');
  }
  if (!chainLeadsTo(chain, roots, at)) throw new MdsError('the BLOB\'s certificate chain does not lead to the FIDO root certificate');
  const verifier = createVerify(alg.hash);
  verifier.update(`${h}.${p}`);
  const signature = Buffer.from(s, 'base64url');
  const key = chain[0]!.publicKey;
  let valid: boolean;
  try {
    valid = verifier.verify(
      alg.ec ? { key, dsaEncoding: 'ieee-p1363' } : alg.pss ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : key,
      signature,
    );
  } catch {
    valid = false;
  }
  if (!valid) throw new MdsError('the BLOB\'s signature is not valid');
  const payload = b64urlJson(p, 'payload');
  const no = payload['no'];
  if (typeof no !== 'number' || !Number.isSafeInteger(no) || no < 0) throw new MdsError('the BLOB has no serial number (no)');
  const nextUpdate = typeof payload['nextUpdate'] === 'string' ? payload['nextUpdate'] : '';
  if (!/^\d{4}-\d{2}-\d{2}$/.test(nextUpdate)) throw new MdsError('the BLOB has no nextUpdate date');
  const entries = (Array.isArray(payload['entries']) ? (payload['entries'] as unknown[]) : []).map(toEntry).filter((e): e is MdsEntry => !!e);
  return { no, nextUpdate, entries };
}
