/**
 * Single-use hand-off rows of an ID-card sign-in (migrations/20261206100001_certificate_handoffs.ts):
 * a `ticket` that takes one interaction from the main host to the certificate host, and a `return`
 * that brings the outcome back. The caller gives only keyed hashes of the tokens (SecretBox.mac),
 * so a copy of the database yields no working ticket; the outcome is sealed by the caller.
 */
import type { Db } from './db.js';

export type HandoffKind = 'ticket' | 'return';

export interface Handoff {
  readonly kind: HandoffKind;
  readonly interactionUid: string;
  /** The sealed outcome a `return` carries; null for a ticket. */
  readonly outcome: string | null;
  readonly expiresAt: Date;
}

export interface CertificateHandoffRepository {
  create(input: { tokenHash: string; kind: HandoffKind; interactionUid: string; outcome?: string; ttlMs: number }): Promise<void>;
  /**
   * Uses a live row once: it is deleted, and only the request whose delete removed it gets it, so
   * two concurrent uses (on two instances) cannot both win. With `interactionUid`, a row made for
   * another interaction is neither returned nor used.
   */
  consume(tokenHash: string, kind: HandoffKind, interactionUid?: string): Promise<Handoff | undefined>;
  /** Deletes rows expired before `before`. */
  purgeExpired(before?: number): Promise<number>;
}

interface Row {
  token_hash: string;
  kind: HandoffKind;
  interaction_uid: string;
  outcome: string | null;
  created_at: number | string;
  expires_at: number | string;
}

export function createCertificateHandoffRepository(db: Db, now: () => number = Date.now): CertificateHandoffRepository {
  return {
    async create({ tokenHash, kind, interactionUid, outcome, ttlMs }) {
      const at = now();
      const row: Row = { token_hash: tokenHash, kind, interaction_uid: interactionUid, outcome: outcome ?? null, created_at: at, expires_at: at + ttlMs };
      await db('certificate_handoffs').insert(row);
    },
    async consume(tokenHash, kind, interactionUid) {
      const at = now();
      const where = { token_hash: tokenHash, kind, ...(interactionUid !== undefined ? { interaction_uid: interactionUid } : {}) };
      const row = (await db('certificate_handoffs').where(where).where('expires_at', '>', at).first()) as Row | undefined;
      if (!row) return undefined;
      const deleted = await db('certificate_handoffs').where(where).where('expires_at', '>', at).delete();
      if (deleted !== 1) return undefined;
      return { kind: row.kind, interactionUid: row.interaction_uid, outcome: row.outcome, expiresAt: new Date(Number(row.expires_at)) };
    },
    async purgeExpired(before = now()) {
      return db('certificate_handoffs').where('expires_at', '<=', before).delete();
    },
  };
}
