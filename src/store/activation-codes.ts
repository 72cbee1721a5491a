/**
 * Activation codes (migration identity_proofing): single-use codes a registrar hands out, each
 * carrying a sealed proofing. Only the code's keyed hash is stored.
 */
import type { Db } from './db.js';

export interface ActivationRow {
  codeHash: string;
  accountId: string | null;
  /** The sealed proofing (JSON) the code carries. */
  proofing: string;
  jmbgHash: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  usedBy: string | null;
}

export interface ActivationCodeRepository {
  insert(a: ActivationRow, trx?: Db): Promise<void>;
  find(codeHash: string, trx?: Db): Promise<ActivationRow | undefined>;
  /** Marks the code used by `accountId`; false when another request used it first. */
  use(codeHash: string, accountId: string, trx?: Db): Promise<boolean>;
  /**
   * Withdraws the unused codes bound to `accountId`, carrying `jmbgHash`, or issued by `createdBy`
   * (any of those given): they are marked used (by `withdrawn`) and no longer redeem. How many.
   */
  withdraw(which: { accountId?: string | undefined; jmbgHash?: string | undefined; createdBy?: string | undefined }, trx?: Db): Promise<number>;
  /** Deletes the activation codes bound to the account (the account was deleted). */
  forgetAccount(accountId: string): Promise<void>;
  /** Deletes the codes that expired before `before` (ms); how many. */
  purgeExpired(before: number): Promise<number>;
}

interface Row {
  code_hash: string;
  account_id: string | null;
  proofing: string;
  jmbg_hash: string;
  created_by: string;
  created_at: number | string;
  expires_at: number | string;
  used_at: number | string | null;
  used_by: string | null;
}

/** `used_by` of a code withdrawn before use (its identity revoked, or its registrar's role). */
export const WITHDRAWN = 'withdrawn';

export function createActivationCodeRepository(db: Db, now: () => number = Date.now): ActivationCodeRepository {
  return {
    async insert(a, trx = db) {
      await trx('activation_codes').insert({
        code_hash: a.codeHash,
        account_id: a.accountId,
        proofing: a.proofing,
        jmbg_hash: a.jmbgHash,
        created_by: a.createdBy,
        created_at: a.createdAt,
        expires_at: a.expiresAt,
        used_at: null,
        used_by: null,
      });
    },
    async find(codeHash, trx = db) {
      const r = (await trx('activation_codes').where({ code_hash: codeHash }).first()) as Row | undefined;
      if (!r) return undefined;
      return {
        codeHash: r.code_hash,
        accountId: r.account_id,
        proofing: r.proofing,
        jmbgHash: r.jmbg_hash,
        createdBy: r.created_by,
        createdAt: Number(r.created_at),
        expiresAt: Number(r.expires_at),
        usedAt: r.used_at == null ? null : Number(r.used_at),
        usedBy: r.used_by,
      };
    },
    async use(codeHash, accountId, trx = db) {
      return (await trx('activation_codes').where({ code_hash: codeHash }).whereNull('used_at').update({ used_at: now(), used_by: accountId })) > 0;
    },
    async withdraw(which, trx = db) {
      const given = (['accountId', 'jmbgHash', 'createdBy'] as const).filter((k) => which[k] !== undefined);
      if (given.length === 0) return 0;
      const column = { accountId: 'account_id', jmbgHash: 'jmbg_hash', createdBy: 'created_by' } as const;
      return trx('activation_codes')
        .whereNull('used_at')
        .where((q) => {
          for (const k of given) q.orWhere(column[k], which[k]!);
        })
        .update({ used_at: now(), used_by: WITHDRAWN });
    },
    async forgetAccount(accountId) {
      await db('activation_codes').where({ account_id: accountId }).delete();
    },
    async purgeExpired(before) {
      return db('activation_codes').where('expires_at', '<', before).delete();
    },
  };
}
