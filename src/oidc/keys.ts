/**
 * Signing and cookie keys: created on first start, stored sealed in the database (so every instance
 * on one PostgreSQL shares them), rotated by `kapija keys rotate`. A rotated-out signing key stays in
 * JWKS until every token it can have signed has expired, then it is deleted.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { KeyRepository, StoredKey } from '../store/keys.js';
import type { SecretBox } from '../security/crypto.js';

/** Algorithms Kapija signs with; RS256 first, as OpenID Connect requires it by default. */
export const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
type SigningAlg = (typeof SIGNING_ALGS)[number];

export interface KeySet {
  /** Private JWKs for oidc-provider's `jwks`, the newest key of each algorithm first. */
  readonly jwks: { keys: JWK[] };
  /** Cookie signing keys, newest first (Koa keygrip verifies with any, signs with the first). */
  readonly cookieKeys: string[];
}

export interface KeyManager {
  /** Creates the first signing and cookie keys if there are none; idempotent across instances. */
  ensure(): Promise<void>;
  load(): Promise<KeySet>;
  /** Adds a new signing key per algorithm; the previous ones are published until `retentionSeconds` from now. */
  rotateSigning(): Promise<string[]>;
  /** Removes keys whose retention has passed. */
  purge(): Promise<number>;
}

const sealContext = (k: Pick<StoredKey, 'id' | 'use'>) => `key:${k.use}:${k.id}`;

async function generateSigningKey(alg: SigningAlg): Promise<{ id: string; jwk: JWK }> {
  const { privateKey } =
    alg === 'RS256'
      ? await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
      : alg === 'ES256'
        ? await generateKeyPair('ES256', { extractable: true })
        : await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const id = randomUUID();
  const jwk = { ...(await exportJWK(privateKey)), kid: id, alg, use: 'sig' };
  return { id, jwk };
}

export function createKeyManager(opts: {
  keys: KeyRepository;
  box: SecretBox;
  /** How long a rotated-out signing key stays published: the longest lifetime of anything it signed. */
  retentionSeconds: number;
  now?: () => number;
}): KeyManager {
  const { keys, box, retentionSeconds } = opts;
  const now = opts.now ?? Date.now;

  const newSigningKeys = async (at: number): Promise<StoredKey[]> =>
    Promise.all(
      SIGNING_ALGS.map(async (alg) => {
        const { id, jwk } = await generateSigningKey(alg);
        const stored = { id, use: 'sig' as const, alg, createdAt: at, retiredAt: null, expiresAt: null };
        return { ...stored, materialEnc: box.seal(JSON.stringify(jwk), sealContext(stored)) };
      }),
    );

  const newCookieKey = (at: number): StoredKey => {
    const stored = { id: randomUUID(), use: 'cookie' as const, alg: null, createdAt: at, retiredAt: null, expiresAt: null };
    return { ...stored, materialEnc: box.seal(randomBytes(32).toString('base64url'), sealContext(stored)) };
  };

  return {
    async ensure() {
      // Key generation happens outside the lock (RSA takes a moment); only the check-and-insert is locked.
      const at = now();
      const live = await Promise.all([keys.listLive('sig', at), keys.listLive('cookie', at)]);
      if (live[0].some((k) => k.retiredAt === null) && live[1].length > 0) return;
      const candidates = { sig: await newSigningKeys(at), cookie: newCookieKey(at) };
      await keys.withLock(async (trx) => {
        const [sig, cookie] = await Promise.all([keys.listLive('sig', at, trx), keys.listLive('cookie', at, trx)]);
        if (!sig.some((k) => k.retiredAt === null)) await keys.insert(candidates.sig, trx);
        if (cookie.length === 0) await keys.insert([candidates.cookie], trx);
      });
    },

    async load() {
      const at = now();
      const [sig, cookie] = await Promise.all([keys.listLive('sig', at), keys.listLive('cookie', at)]);
      // Active keys first (newest first), so oidc-provider signs with them; retired ones only verify.
      const ordered = [...sig.filter((k) => k.retiredAt === null), ...sig.filter((k) => k.retiredAt !== null)];
      return {
        jwks: { keys: ordered.map((k) => JSON.parse(box.openString(k.materialEnc, sealContext(k))) as JWK) },
        cookieKeys: cookie.map((k) => box.openString(k.materialEnc, sealContext(k))),
      };
    },

    async rotateSigning() {
      const at = now();
      const fresh = await newSigningKeys(at);
      await keys.withLock(async (trx) => {
        await keys.retireActive('sig', at, at + retentionSeconds * 1000, trx);
        await keys.insert(fresh, trx);
      });
      return fresh.map((k) => k.id);
    },

    async purge() {
      return keys.deleteExpired(now());
    },
  };
}
