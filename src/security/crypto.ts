/**
 * Envelope encryption for secrets at rest (signing keys, cookie keys, client secrets, TOTP keys):
 * each value gets its own random data key (AES-256-GCM), and the data key is wrapped with the master
 * key (AES-256-GCM). The `context` string is bound as additional authenticated data, so a ciphertext
 * copied into another row or column does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual, createHmac, hkdfSync } from 'node:crypto';

const VERSION = 'v1';

export interface SecretBox {
  /** Keyed hash under a subkey derived for `purpose` (e.g. recovery-code lookups): not reversible. */
  mac(purpose: string, data: string): string;
  seal(plaintext: string | Buffer, context: string): string;
  open(sealed: string, context: string): Buffer;
  openString(sealed: string, context: string): string;
}

function gcmEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): { iv: Buffer; ct: Buffer; tag: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ct, tag: cipher.getAuthTag() };
}

function gcmDecrypt(key: Buffer, iv: Buffer, ct: Buffer, tag: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}

const b64 = (b: Buffer) => b.toString('base64url');
const unb64 = (s: string) => Buffer.from(s, 'base64url');

/**
 * @throws Error when the master key is not 32 bytes.
 */
export function createSecretBox(masterKey: Buffer): SecretBox {
  if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
  const kek = Buffer.from(masterKey);
  const subkeys = new Map<string, Buffer>();
  const subkey = (purpose: string) => {
    let k = subkeys.get(purpose);
    if (!k) {
      k = Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), `kapija:${purpose}`, 32));
      subkeys.set(purpose, k);
    }
    return k;
  };
  const box: SecretBox = {
    mac(purpose, data) {
      return createHmac('sha256', subkey(purpose)).update(data, 'utf8').digest('base64url');
    },
    seal(plaintext, context) {
      const aad = Buffer.from(context, 'utf8');
      const dek = randomBytes(32);
      const wrapped = gcmEncrypt(kek, dek, aad);
      const data = gcmEncrypt(dek, Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext, 'utf8'), aad);
      return [VERSION, wrapped.iv, wrapped.ct, wrapped.tag, data.iv, data.ct, data.tag]
        .map((p) => (typeof p === 'string' ? p : b64(p)))
        .join('.');
    },
    open(sealed, context) {
      const parts = sealed.split('.');
      if (parts.length !== 7 || parts[0] !== VERSION) throw new Error('unrecognised ciphertext');
      const [, wiv, wct, wtag, iv, ct, tag] = parts.map((p, i) => (i === 0 ? Buffer.alloc(0) : unb64(p))) as Buffer[];
      const aad = Buffer.from(context, 'utf8');
      const dek = gcmDecrypt(kek, wiv!, wct!, wtag!, aad);
      return gcmDecrypt(dek, iv!, ct!, tag!, aad);
    },
    openString(sealed, context) {
      return box.open(sealed, context).toString('utf8');
    },
  };
  return box;
}

/** Constant-time comparison of two strings of any length (compares their HMACs). */
export function constantTimeEqual(a: string, b: string): boolean {
  const key = randomBytes(32);
  const ha = createHmac('sha256', key).update(a).digest();
  const hb = createHmac('sha256', key).update(b).digest();
  return timingSafeEqual(ha, hb);
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
