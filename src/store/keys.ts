/**
 * Key material (signing keys, cookie keys, credential-signing keys), sealed with the master key.
 */
import type { Db } from './db.js';
import { isPostgres } from './db.js';

/** `sig`: the engine's signing keys; `cookie`: cookie keys; `wallet`: the key that signs wallet sign-in's presentation requests; `vc`: the PID issuer's credential-signing keys. */
export type KeyUse = 'sig' | 'cookie' | 'wallet' | 'vc';

export interface StoredKey {
  readonly id: string;
  readonly use: KeyUse;
  readonly alg: string | null;
  readonly materialEnc: string;
  readonly createdAt: number;
  readonly retiredAt: number | null;
  readonly expiresAt: number | null;
}

export interface KeyRepository {
  /** Keys of one use that are still published (not past expires_at), newest first. */
  listLive(use: KeyUse, now: number, trx?: Db): Promise<StoredKey[]>;
  insert(keys: readonly StoredKey[], trx?: Db): Promise<void>;
  /** Retires, as of `retiredAt`, every key of `use` not retired by then; it stays published until `expiresAt`. */
  retireActive(use: KeyUse, retiredAt: number, expiresAt: number, trx?: Db): Promise<number>;
  deleteExpired(now: number): Promise<number>;
  /**
   * Runs `fn` while holding a cluster-wide lock on key creation, so that instances starting together
   * on one PostgreSQL create one key set, not one each.
   */
  withLock<T>(fn: (trx: Db) => Promise<T>): Promise<T>;
}

interface Row {
  id: string;
  use: KeyUse;
  alg: string | null;
  material_enc: string;
  created_at: number | string;
  retired_at: number | string | null;
  expires_at: number | string | null;
}

const num = (v: number | string | null) => (v === null ? null : Number(v));
const KEYS_LOCK_ID = 0x6b61706a; // "kapj"

export function createKeyRepository(db: Db): KeyRepository {
  return {
    async listLive(use, now, trx = db) {
      const rows = (await trx('keys')
        .where({ use })
        .andWhere((w) => w.whereNull('expires_at').orWhere('expires_at', '>', now))
        .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'asc' }])) as Row[];
      return rows.map((r) => ({
        id: r.id,
        use: r.use,
        alg: r.alg,
        materialEnc: r.material_enc,
        createdAt: Number(r.created_at),
        retiredAt: num(r.retired_at),
        expiresAt: num(r.expires_at),
      }));
    },
    async insert(keys, trx = db) {
      if (keys.length === 0) return;
      await trx('keys').insert(
        keys.map((k) => ({
          id: k.id,
          use: k.use,
          alg: k.alg,
          material_enc: k.materialEnc,
          created_at: k.createdAt,
          retired_at: k.retiredAt,
          expires_at: k.expiresAt,
        })),
      );
    },
    async retireActive(use, retiredAt, expiresAt, trx = db) {
      return trx('keys')
        .where({ use })
        .andWhere((w) => w.whereNull('retired_at').orWhere('retired_at', '>', retiredAt))
        .update({ retired_at: retiredAt, expires_at: expiresAt });
    },
    async deleteExpired(now) {
      return db('keys').whereNotNull('expires_at').andWhere('expires_at', '<=', now).delete();
    },
    async withLock(fn) {
      return db.transaction(async (trx) => {
        if (isPostgres(db)) await trx.raw('select pg_advisory_xact_lock(?)', [KEYS_LOCK_ID]);
        return fn(trx);
      });
    },
  };
}
