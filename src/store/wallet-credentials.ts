/**
 * The PID issuer's registry (migration wallet_credentials): issued credentials, their Token Status
 * List entries and revocations, and the proofs of possession already used.
 */
import { randomUUID } from 'node:crypto';
import { isPostgres, type Db } from './db.js';
import type { SecretBox } from '../security/crypto.js';

/** Entries per status list: 2^17 bits is 16 KiB before compression. */
export const STATUS_LIST_SIZE = 131072;
const INDEX_BITS = 17;

/**
 * A keyed permutation of a list's indices: its n-th credential gets `statusIndex(n)`, so an index
 * tells nothing of when, or after whom, a credential was issued (draft-ietf-oauth-status-list,
 * privacy considerations). A four-round Feistel network over 18 bits (round function: HMAC under a
 * key derived from the master key and the list), walked until it lands below 2^17: a bijection, so
 * two credentials never share an index.
 */
export function statusIndex(box: Pick<SecretBox, 'mac'>, listId: string, n: number): number {
  const half = (INDEX_BITS + 1) / 2;
  const mask = (1 << half) - 1;
  const round = (i: number, x: number) => Buffer.from(box.mac('wallet-status-index', `${listId}|${i}|${x}`), 'base64url').readUInt16BE(0) & mask;
  let v = n;
  do {
    let left = v >>> half;
    let right = v & mask;
    for (let i = 0; i < 4; i += 1) [left, right] = [right, left ^ round(i, right)];
    v = (left << half) | right;
  } while (v >= STATUS_LIST_SIZE);
  return v;
}

const STATUS_LISTS_LOCK_ID = 0x6b617073; // "kaps"

export type IssuanceChannel = 'portal' | 'desk';

export interface IssuedCredential {
  readonly id: string;
  readonly accountId: string;
  readonly identityRef: string;
  readonly level: string;
  readonly clientId: string;
  readonly channel: IssuanceChannel;
  readonly listId: string;
  readonly listIdx: number;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly revokedAt: Date | null;
  readonly revokedReason: string | null;
}

export interface NewIssuedCredential {
  accountId: string;
  identityRef: string;
  level: string;
  clientId: string;
  channel: IssuanceChannel;
  issuedAt: number;
  expiresAt: number;
}

interface Row {
  id: string;
  account_id: string;
  identity_ref: string;
  level: string;
  client_id: string;
  channel: string;
  list_id: string;
  list_idx: number | string;
  issued_at: number | string;
  expires_at: number | string;
  revoked_at: number | string | null;
  revoked_reason: string | null;
}

const fromRow = (r: Row): IssuedCredential => ({
  id: r.id,
  accountId: r.account_id,
  identityRef: r.identity_ref,
  level: r.level,
  clientId: r.client_id,
  channel: r.channel as IssuanceChannel,
  listId: r.list_id,
  listIdx: Number(r.list_idx),
  issuedAt: new Date(Number(r.issued_at)),
  expiresAt: new Date(Number(r.expires_at)),
  revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)),
  revokedReason: r.revoked_reason,
});

export interface WalletCredentialRepository {
  /**
   * Records a credential with the next free index of the current status list (a new list when it
   * is full), through the list's keyed permutation. Inside `trx` the list's row stays locked until the transaction ends, so concurrent
   * issuances on any instance get distinct indices.
   */
  insert(input: NewIssuedCredential, trx: Db): Promise<IssuedCredential>;
  find(id: string, trx?: Db): Promise<IssuedCredential | undefined>;
  /** The account's credentials, newest first. */
  listByAccount(accountId: string): Promise<IssuedCredential[]>;
  /** Marks one credential revoked; false when it was revoked already (or does not exist). */
  revoke(id: string, reason: string, at: number, trx?: Db): Promise<boolean>;
  /** Revokes every live credential of an account; returns the ids revoked. */
  revokeAllOf(accountId: string, reason: string, at: number, trx?: Db): Promise<string[]>;
  /**
   * Whether a status list exists, and the indices revoked in it: those marked revoked, and those
   * whose proofing (`identityRef`) is no longer the account's identity in force.
   */
  revokedIndices(listId: string): Promise<{ size: number; revoked: number[] } | undefined>;
  /** One entry of a list by the same rule as revokedIndices: true revoked, false valid, undefined when no credential has it. */
  isRevoked(listId: string, idx: number): Promise<boolean | undefined>;
  /** Records a proof's keyed hash; false when it was used before. */
  useProof(hash: string, expiresAt: number, now: number): Promise<boolean>;
}

export function createWalletCredentialRepository(db: Db, box: Pick<SecretBox, 'mac'>): WalletCredentialRepository {
  // Revoked, or issued from a proofing no longer in force (revoked, replaced or gone) even if
  // revoking it with the proofing never ran (a failure or a crash after the proofing changed).
  const REVOKED_SQL = `(c.revoked_at is not null or v.account_id is null or v.revoked_at is not null or c.identity_ref <> c.account_id || '@' || ${isPostgres(db) ? 'v.verified_at::text' : 'v.verified_at'})`;
  const revokedEntries = (q: ReturnType<Db>) => q.leftJoin('verified_identities as v', 'v.account_id', 'c.account_id').whereRaw(REVOKED_SQL);
  const takeIndex = async (trx: Db, at: number): Promise<{ listId: string; idx: number }> => {
    const open = async () => (await trx('wallet_status_lists').where('next_idx', '<', trx.ref('size')).orderBy('created_at', 'asc').first()) as { id: string } | undefined;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      let current = await open();
      if (!current && isPostgres(db)) {
        // Instances finding no open list at once start one, not one each.
        await trx.raw('select pg_advisory_xact_lock(?)', [STATUS_LISTS_LOCK_ID]);
        current = await open();
      }
      if (!current) {
        const id = randomUUID();
        await trx('wallet_status_lists').insert({ id, size: STATUS_LIST_SIZE, next_idx: 1, created_at: at });
        return { listId: id, idx: statusIndex(box, id, 0) };
      }
      // The update locks the row: the index read back is this transaction's alone.
      const updated = await trx('wallet_status_lists').where({ id: current.id }).andWhere('next_idx', '<', trx.ref('size')).increment('next_idx', 1);
      if (!updated) continue;
      const row = (await trx('wallet_status_lists').where({ id: current.id }).first('next_idx')) as { next_idx: number | string };
      return { listId: current.id, idx: statusIndex(box, current.id, Number(row.next_idx) - 1) };
    }
    throw new Error('no status list index could be taken');
  };
  return {
    async insert(input, trx) {
      const { listId, idx } = await takeIndex(trx, input.issuedAt);
      const row: Row = {
        id: randomUUID(),
        account_id: input.accountId,
        identity_ref: input.identityRef,
        level: input.level,
        client_id: input.clientId,
        channel: input.channel,
        list_id: listId,
        list_idx: idx,
        issued_at: input.issuedAt,
        expires_at: input.expiresAt,
        revoked_at: null,
        revoked_reason: null,
      };
      await trx('wallet_credentials').insert(row);
      return fromRow(row);
    },
    async find(id, trx = db) {
      const row = (await trx('wallet_credentials').where({ id }).first()) as Row | undefined;
      return row && fromRow(row);
    },
    async listByAccount(accountId) {
      const rows = (await db('wallet_credentials').where({ account_id: accountId }).orderBy([{ column: 'issued_at', order: 'desc' }, { column: 'id', order: 'asc' }])) as Row[];
      return rows.map(fromRow);
    },
    async revoke(id, reason, at, trx = db) {
      const n = await trx('wallet_credentials').where({ id }).whereNull('revoked_at').update({ revoked_at: at, revoked_reason: reason.slice(0, 40) });
      return n > 0;
    },
    async revokeAllOf(accountId, reason, at, trx = db) {
      const live = (await trx('wallet_credentials').where({ account_id: accountId }).whereNull('revoked_at').select('id')) as { id: string }[];
      if (!live.length) return [];
      await trx('wallet_credentials').whereIn('id', live.map((r) => r.id)).whereNull('revoked_at').update({ revoked_at: at, revoked_reason: reason.slice(0, 40) });
      return live.map((r) => r.id);
    },
    async revokedIndices(listId) {
      const list = (await db('wallet_status_lists').where({ id: listId }).first('size')) as { size: number | string } | undefined;
      if (!list) return undefined;
      const rows = (await revokedEntries(db('wallet_credentials as c').where('c.list_id', listId)).select('c.list_idx')) as { list_idx: number | string }[];
      return { size: Number(list.size), revoked: rows.map((r) => Number(r.list_idx)) };
    },
    async isRevoked(listId, idx) {
      const entry = (await db('wallet_credentials as c')
        .leftJoin('verified_identities as v', 'v.account_id', 'c.account_id')
        .where({ 'c.list_id': listId, 'c.list_idx': idx })
        .first('c.id', db.raw(`case when ${REVOKED_SQL} then 1 else 0 end as revoked`, []))) as { id: string; revoked: number | string } | undefined;
      return entry ? Number(entry.revoked) === 1 : undefined;
    },

    async useProof(hash, expiresAt, now) {
      await db('wallet_used_proofs').where('expires_at', '<=', now).delete();
      try {
        await db('wallet_used_proofs').insert({ proof_hash: hash, expires_at: expiresAt });
        return true;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return false;
        throw err;
      }
    },
  };
}
