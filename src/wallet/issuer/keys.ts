/**
 * The PID issuer's credential-signing keys: ES256 keys of their own (never the engine's ID-token
 * keys), kept in the `keys` table with use `vc`, sealed with the master key like every other key,
 * so every instance on one database signs with the same key.
 *
 * Rotation is simple for now: `rotate()` adds a new key that signs at once; the earlier ones stay
 * published (they verify the credentials and status lists they signed) until `retentionSeconds`
 * after their retirement, which must outlast the longest credential validity.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { KeyRepository, StoredKey } from '../../store/keys.js';
import type { SecretBox } from '../../security/crypto.js';

export const CREDENTIAL_SIGNING_ALG = 'ES256';

export interface CredentialKeys {
  /** Creates the first key when there is none; safe on every instance at once. */
  ensure(): Promise<void>;
  /** The key that signs now (private JWK with its kid). */
  signingKey(): Promise<JWK & { kid: string }>;
  /** The public keys that verify Kapija's credentials and status lists, signing key first. */
  publicJwks(): Promise<{ keys: JWK[] }>;
  /** Adds a key that signs from now on; the others verify until their retention ends. */
  rotate(): Promise<string>;
}

const sealContext = (k: Pick<StoredKey, 'id' | 'use'>) => `key:${k.use}:${k.id}`;
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'] as const;

export function createCredentialKeys(opts: { keys: KeyRepository; box: SecretBox; retentionSeconds: number; now?: () => number }): CredentialKeys {
  const { keys, box, retentionSeconds } = opts;
  const now = opts.now ?? Date.now;
  const generate = async (at: number): Promise<StoredKey> => {
    const { privateKey } = await generateKeyPair(CREDENTIAL_SIGNING_ALG, { extractable: true });
    const id = randomUUID();
    const jwk = { ...(await exportJWK(privateKey)), kid: id, alg: CREDENTIAL_SIGNING_ALG, use: 'sig' };
    const stored = { id, use: 'vc' as const, alg: CREDENTIAL_SIGNING_ALG, createdAt: at, retiredAt: null, expiresAt: null };
    return { ...stored, materialEnc: box.seal(JSON.stringify(jwk), sealContext(stored)) };
  };
  const open = (k: StoredKey) => JSON.parse(box.openString(k.materialEnc, sealContext(k))) as JWK & { kid: string };
  // Opening a sealed key costs two AES-GCM decryptions; the key set is read again when it changed.
  let cached: { version: string; keys: (JWK & { kid: string })[]; signing: JWK & { kid: string } } | undefined;
  const load = async () => {
    const at = now();
    const live = await keys.listLive('vc', at);
    if (!live.length) throw new Error('no credential-signing key: ensure() was not called');
    const version = live.map((k) => `${k.id}:${k.retiredAt ?? ''}`).join(',');
    if (cached?.version === version) return cached;
    const signingRow = live.find((k) => k.retiredAt === null || k.retiredAt > at) ?? live[0]!;
    const opened = live.map(open);
    cached = { version, keys: opened, signing: opened[live.indexOf(signingRow)]! };
    return cached;
  };
  return {
    async ensure() {
      const at = now();
      if ((await keys.listLive('vc', at)).some((k) => k.retiredAt === null)) return;
      const candidate = await generate(at);
      await keys.withLock(async (trx) => {
        if (!(await keys.listLive('vc', at, trx)).some((k) => k.retiredAt === null)) await keys.insert([candidate], trx);
      });
    },
    async signingKey() {
      return (await load()).signing;
    },
    async publicJwks() {
      const { keys: all, signing } = await load();
      const ordered = [signing, ...all.filter((k) => k !== signing)];
      return { keys: ordered.map((k) => Object.fromEntries(PUBLIC_MEMBERS.filter((m) => k[m] !== undefined).map((m) => [m, k[m]])) as JWK) };
    },
    async rotate() {
      const at = now();
      const fresh = await generate(at);
      await keys.withLock(async (trx) => {
        await keys.retireActive('vc', at, at + retentionSeconds * 1000, trx);
        await keys.insert([fresh], trx);
      });
      return fresh.id;
    },
  };
}
