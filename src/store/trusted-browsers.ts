/**
 * Browsers a citizen asked to be remembered (`trusted_browsers`): per account, a keyed hash of the
 * browser's random cookie, what the browser said it was, and when it stops being remembered.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';

export interface TrustedBrowser {
  id: string;
  accountId: string;
  userAgent: string | null;
  createdAt: Date;
  lastUsedAt: Date | undefined;
  expiresAt: Date;
}

interface Row {
  id: string;
  account_id: string;
  token_hash: string;
  user_agent: string | null;
  created_at: number | string;
  last_used_at: number | string | null;
  expires_at: number | string;
}

export interface TrustedBrowserRepository {
  /** Remembers a browser for an account until `expiresAt` (only the keyed hash of its cookie is given). */
  add(input: { accountId: string; tokenHash: string; userAgent: string | null; expiresAt: Date }): Promise<TrustedBrowser>;
  /** The live record of this cookie's hash for this account, marked as used now; undefined otherwise. */
  use(accountId: string, tokenHash: string): Promise<TrustedBrowser | undefined>;
  /** The account's live trusted browsers, newest first. */
  listForAccount(accountId: string): Promise<TrustedBrowser[]>;
  /** Forgets one browser of the account; false when it was not the account's. */
  revoke(accountId: string, id: string): Promise<boolean>;
  /** Forgets every browser of the account (in `trx` when given); how many. */
  revokeAll(accountId: string, trx?: Db): Promise<number>;
  /** Deletes the records that expired before `at`. */
  purgeExpired(at?: number): Promise<number>;
}

const toBrowser = (r: Row): TrustedBrowser => ({
  id: r.id,
  accountId: r.account_id,
  userAgent: r.user_agent,
  createdAt: new Date(Number(r.created_at)),
  lastUsedAt: r.last_used_at === null ? undefined : new Date(Number(r.last_used_at)),
  expiresAt: new Date(Number(r.expires_at)),
});

export function createTrustedBrowserRepository(db: Db, now: () => number = Date.now): TrustedBrowserRepository {
  return {
    async add(input) {
      const row: Row = {
        id: randomUUID(),
        account_id: input.accountId,
        token_hash: input.tokenHash,
        user_agent: input.userAgent ? input.userAgent.slice(0, 300) : null,
        created_at: now(),
        last_used_at: null,
        expires_at: input.expiresAt.getTime(),
      };
      await db('trusted_browsers').insert(row);
      return toBrowser(row);
    },
    async use(accountId, tokenHash) {
      const at = now();
      const row = (await db('trusted_browsers').where({ account_id: accountId, token_hash: tokenHash }).andWhere('expires_at', '>', at).first()) as Row | undefined;
      if (!row) return undefined;
      await db('trusted_browsers').where({ id: row.id }).update({ last_used_at: at });
      return toBrowser({ ...row, last_used_at: at });
    },
    async listForAccount(accountId) {
      const rows = (await db('trusted_browsers').where({ account_id: accountId }).andWhere('expires_at', '>', now()).orderBy('created_at', 'desc')) as Row[];
      return rows.map(toBrowser);
    },
    async revoke(accountId, id) {
      return (await db('trusted_browsers').where({ account_id: accountId, id }).delete()) > 0;
    },
    async revokeAll(accountId, trx = db) {
      return trx('trusted_browsers').where({ account_id: accountId }).delete();
    },
    async purgeExpired(at = now()) {
      return db('trusted_browsers').where('expires_at', '<=', at).delete();
    },
  };
}
