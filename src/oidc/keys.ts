/**
 * Signing and cookie keys: created on first start, stored sealed in the database (so every instance
 * on one PostgreSQL shares them), rotated on a schedule (`rotateIfDue`, every KEY_ROTATION_DAYS) or at
 * once in an emergency (`kapija keys rotate`). A rotated-out signing key stays in JWKS until every
 * token it can have signed has expired, then it is deleted.
 *
 * A scheduled key activates `activationDelaySeconds` after its created_at: until then it is published
 * in JWKS (after the active key of its algorithm, so nothing signs with it) for relying parties to
 * fetch, and the key it replaces keeps signing. A key with no active sibling of its algorithm signs at
 * once (the first key, or an emergency rotation that retired the others).
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
  /** Identifies the set and its order: a different version means the engine must be rebuilt. */
  readonly version: string;
}

export interface KeyManager {
  /** Creates the first signing and cookie keys if there are none; idempotent across instances. */
  ensure(): Promise<void>;
  load(): Promise<KeySet>;
  /** Emergency: adds a new signing key per algorithm that signs at once; the previous ones are published until `retentionSeconds` from now. */
  rotateSigning(): Promise<string[]>;
  /**
   * Adds the next signing keys when the newest is `rotateEveryDays` old; they sign after the
   * activation delay, when the current ones retire. Safe to call from every instance at once.
   */
  rotateIfDue(): Promise<boolean>;
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
  /** Seconds a scheduled key is published before it signs (default 0). */
  activationDelaySeconds?: number;
  /** Age of the newest signing key at which `rotateIfDue` adds the next (default 90 days). */
  rotateEveryDays?: number;
  now?: () => number;
}): KeyManager {
  const { keys, box, retentionSeconds } = opts;
  const now = opts.now ?? Date.now;
  const delayMs = (opts.activationDelaySeconds ?? 0) * 1000;
  const periodMs = (opts.rotateEveryDays ?? 90) * 24 * 3600 * 1000;
  const newest = (sig: readonly StoredKey[]) => Math.max(-Infinity, ...sig.map((k) => k.createdAt));

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
      // Signing keys first (newest first), so oidc-provider signs with them; then keys published
      // ahead of their activation; then retired ones, which only verify.
      const current = sig.filter((k) => k.retiredAt === null || k.retiredAt > at);
      const activated = (k: StoredKey) => k.createdAt + delayMs <= at;
      const hasActivated = (alg: string | null) => current.some((k) => k.alg === alg && activated(k));
      const signing = current.filter((k) => activated(k) || !hasActivated(k.alg));
      const ordered = [
        ...signing,
        ...current.filter((k) => !signing.includes(k)),
        ...sig.filter((k) => !current.includes(k)),
      ];
      const cookieKeys = cookie.map((k) => box.openString(k.materialEnc, sealContext(k)));
      return {
        jwks: { keys: ordered.map((k) => JSON.parse(box.openString(k.materialEnc, sealContext(k))) as JWK) },
        cookieKeys,
        version: [...ordered.map((k) => k.id), '|', ...cookie.map((k) => k.id)].join(','),
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

    async rotateIfDue() {
      const at = now();
      if (at < newest(await keys.listLive('sig', at)) + periodMs) return false;
      const fresh = await newSigningKeys(at);
      return keys.withLock(async (trx) => {
        // Another instance may have rotated while this one generated keys.
        if (at < newest(await keys.listLive('sig', at, trx)) + periodMs) return false;
        await keys.retireActive('sig', at + delayMs, at + delayMs + retentionSeconds * 1000, trx);
        await keys.insert(fresh, trx);
        return true;
      });
    },

    async purge() {
      return keys.deleteExpired(now());
    },
  };
}
