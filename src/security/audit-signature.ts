/**
 * The Ed25519 key that signs the audit log's checkpoints and ledger downloads. The private key is
 * kept sealed with the master key, so whoever can write the database but lacks the master key cannot
 * sign; the public key is published as a JWK (RFC 8037) for anyone to verify with.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { SecretBox } from './crypto.js';

export interface AuditPublicJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
  readonly use: 'sig';
  readonly alg: 'EdDSA';
}

export interface AuditSigningKey {
  readonly kid: string;
  readonly jwk: AuditPublicJwk;
  sign(data: Buffer): string;
}

const sealContext = (kid: string) => `audit-key:${kid}`;

function publicJwk(pub: KeyObject): AuditPublicJwk {
  const { x } = pub.export({ format: 'jwk' }) as { x: string };
  // RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
  const kid = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
  return { kty: 'OKP', crv: 'Ed25519', x, kid, use: 'sig', alg: 'EdDSA' };
}

function signingKey(privateKey: KeyObject): AuditSigningKey {
  const jwk = publicJwk(createPublicKey(privateKey));
  return { kid: jwk.kid, jwk, sign: (data) => sign(null, data, privateKey).toString('base64url') };
}

/** A new key, and its private half sealed for storage. */
export function generateAuditKey(box: SecretBox): { key: AuditSigningKey; materialEnc: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const key = signingKey(privateKey);
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { key, materialEnc: box.seal(der, sealContext(key.kid)) };
}

/**
 * Opens a stored key; its kid is recomputed from the key itself, so a row cannot claim another kid.
 * @throws Error when the material was not sealed with this master key for this kid.
 */
export function openAuditKey(box: SecretBox, kid: string, materialEnc: string): AuditSigningKey {
  const key = signingKey(createPrivateKey({ key: box.open(materialEnc, sealContext(kid)), format: 'der', type: 'pkcs8' }));
  if (key.kid !== kid) throw new Error(`audit key ${kid}: material does not match its kid`);
  return key;
}

/** Whether `sig` (base64url) is `jwk`'s signature over `data`; false for anything malformed. */
export function verifyAuditSignature(jwk: { kty?: unknown; crv?: unknown; x?: unknown }, data: Buffer, sig: string): boolean {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || typeof sig !== 'string') return false;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
    return verify(null, data, key, Buffer.from(sig, 'base64url'));
  } catch {
    return false;
  }
}
