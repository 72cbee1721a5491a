/**
 * Checkpoints of the audit log: a signed (chain, seq, hash) of a chain's head at some moment, and
 * the sealed Ed25519 keys that sign them. The signing itself is done by the caller (audit/).
 */
import type { Db } from './db.js';

export interface AuditHead {
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
}

export interface AuditCheckpoint extends AuditHead {
  readonly signedAt: number;
  readonly kid: string;
  readonly sig: string;
}

export interface StoredAuditKey {
  readonly kid: string;
  readonly materialEnc: string;
  readonly createdAt: number;
}

export interface AuditCheckpointRepository {
  /** Oldest first. */
  keys(): Promise<StoredAuditKey[]>;
  /** Adds a key unless one with its kid exists. */
  insertKey(key: StoredAuditKey): Promise<void>;
  /** Heads that have no checkpoint yet: of every chain, or (with `since`) of the chains with an entry at or after then. */
  uncheckpointedHeads(opts?: { since?: number }): Promise<AuditHead[]>;
  /** The current head of every chain, or of `chain`. */
  heads(chain?: string): Promise<AuditHead[]>;
  insert(checkpoints: readonly AuditCheckpoint[]): Promise<void>;
  /** The newest `signed_at` of any checkpoint, or undefined. */
  lastSignedAt(): Promise<number | undefined>;
  /** Checkpoints of one chain or every chain, each with the hash the log holds now at its seq (null when the row is gone). */
  withRows(chain?: string): Promise<(AuditCheckpoint & { rowHash: string | null })[]>;
  /** The hash the log holds now at each (chain, seq), and each chain's last seq. */
  rowsAt(heads: readonly AuditHead[]): Promise<{ hashes: Map<string, string>; last: Map<string, number> }>;
}

interface CheckpointRow {
  chain: string;
  seq: number | string;
  hash: string;
  signed_at: number | string;
  kid: string;
  sig: string;
}

const toCheckpoint = (r: CheckpointRow): AuditCheckpoint => ({ chain: r.chain, seq: Number(r.seq), hash: r.hash, signedAt: Number(r.signed_at), kid: r.kid, sig: r.sig });
const toHead = (r: { chain: string; seq: number | string; hash: string }): AuditHead => ({ chain: r.chain, seq: Number(r.seq), hash: r.hash });
const CHUNK = 500;

export function createAuditCheckpointRepository(db: Db): AuditCheckpointRepository {
  /**
   * Each chain's newest row. With `since`, only chains with rows from then on, and the newest among
   * those rows (the head, as it was appended last), found through the index on `at`.
   */
  const headsQuery = (since?: number) => {
    const tops = db('audit_events').select('chain').max({ top: 'seq' }).groupBy('chain');
    if (since !== undefined) tops.where('at', '>=', since);
    return db('audit_events as e')
      .join(tops.as('h'), (j) => j.on('h.chain', 'e.chain').andOn('h.top', 'e.seq'))
      .select('e.chain', 'e.seq', 'e.hash');
  };
  const headOf = (chain: string) => db('audit_events as e').select('e.chain', 'e.seq', 'e.hash').where('e.chain', chain).orderBy('e.seq', 'desc').limit(1);
  return {
    async keys() {
      const rows = (await db('audit_keys').orderBy([{ column: 'created_at' }, { column: 'kid' }])) as { kid: string; material_enc: string; created_at: number | string }[];
      return rows.map((r) => ({ kid: r.kid, materialEnc: r.material_enc, createdAt: Number(r.created_at) }));
    },

    async insertKey(key) {
      await db('audit_keys').insert({ kid: key.kid, material_enc: key.materialEnc, created_at: key.createdAt }).onConflict('kid').ignore();
    },

    async uncheckpointedHeads(opts = {}) {
      const q = headsQuery(opts.since).whereNotExists(db('audit_checkpoints as c').select(db.raw('1')).whereRaw('c.chain = e.chain and c.seq = e.seq'));
      return ((await q) as CheckpointRow[]).map(toHead);
    },

    async heads(chain) {
      const q = chain !== undefined ? headOf(chain) : headsQuery().orderBy('e.chain');
      return ((await q) as CheckpointRow[]).map(toHead);
    },

    async insert(checkpoints) {
      for (let i = 0; i < checkpoints.length; i += CHUNK) {
        const rows = checkpoints.slice(i, i + CHUNK).map((c) => ({ chain: c.chain, seq: c.seq, hash: c.hash, signed_at: c.signedAt, kid: c.kid, sig: c.sig }));
        await db('audit_checkpoints').insert(rows).onConflict(['chain', 'seq']).ignore();
      }
    },

    async lastSignedAt() {
      const row = (await db('audit_checkpoints').max({ at: 'signed_at' }).first()) as { at: number | string | null } | undefined;
      return row?.at === null || row?.at === undefined ? undefined : Number(row.at);
    },

    async withRows(chain) {
      const q = db('audit_checkpoints as c')
        .leftJoin('audit_events as e', (j) => j.on('e.chain', 'c.chain').andOn('e.seq', 'c.seq'))
        .select('c.chain', 'c.seq', 'c.hash', 'c.signed_at', 'c.kid', 'c.sig', 'e.hash as row_hash')
        .orderBy([{ column: 'c.chain' }, { column: 'c.seq' }]);
      if (chain !== undefined) q.where('c.chain', chain);
      return ((await q) as (CheckpointRow & { row_hash: string | null })[]).map((r) => ({ ...toCheckpoint(r), rowHash: r.row_hash }));
    },

    async rowsAt(heads) {
      const hashes = new Map<string, string>();
      const last = new Map<string, number>();
      for (let i = 0; i < heads.length; i += CHUNK) {
        const part = heads.slice(i, i + CHUNK);
        const chains = [...new Set(part.map((h) => h.chain))];
        const rows = (await db('audit_events')
          .select('chain', 'seq', 'hash')
          .where((w) => {
            for (const h of part) w.orWhere((x) => x.where({ chain: h.chain, seq: h.seq }));
          })) as CheckpointRow[];
        for (const r of rows) hashes.set(`${r.chain}\u0000${Number(r.seq)}`, r.hash);
        const tops = (await db('audit_events').select('chain').max({ seq: 'seq' }).whereIn('chain', chains).groupBy('chain')) as { chain: string; seq: number | string }[];
        for (const t of tops) last.set(t.chain, Number(t.seq));
      }
      return { hashes, last };
    },
  };
}
