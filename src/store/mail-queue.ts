/**
 * Mail waiting for another attempt (`mail_queue`): the sealed message, its kind, attempts and when
 * the next is due. Any instance may take the due ones (due-rows.ts).
 */
import { isPostgres, type Db } from './db.js';
import type { AccountTokenRow } from './account-tokens.js';
import { claimDueRows } from './due-rows.js';

export interface QueuedMail {
  readonly id: string;
  readonly kind: string;
  /** Sealed with the master key, bound to `mail:<id>`. */
  readonly message: string;
  /** Attempts made so far. */
  readonly attempts: number;
}

export interface MailQueueRepository {
  /**
   * `accountId`: the account the message is about, when there is one (its mail goes with it).
   * `link`: the single-use link the message carries, written with it (one statement on PostgreSQL,
   * one transaction on SQLite): neither is stored without the other.
   */
  add(m: { id: string; kind: string; message: string; accountId?: string | undefined }, nextAt: number, link?: AccountTokenRow): Promise<void>;
  claimDue(now: number, leaseUntil: number, limit: number): Promise<QueuedMail[]>;
  retryAt(id: string, attempts: number, nextAt: number, error: string): Promise<void>;
  remove(id: string): Promise<void>;
  /** Deletes every waiting message about an account; how many. */
  removeForAccount(accountId: string, trx?: Db): Promise<number>;
}

const COLUMNS = ['id', 'kind', 'message', 'attempts'];

export function createMailQueueRepository(db: Db, now: () => number = Date.now): MailQueueRepository {
  const pg = isPostgres(db);
  return {
    async add(m, nextAt, link) {
      const row = { id: m.id, kind: m.kind, message: m.message, account_id: m.accountId ?? null, attempts: 0, created_at: now(), next_at: nextAt };
      if (!link) {
        await db('mail_queue').insert(row);
      } else if (pg) {
        await db('mail_queue').with('link', db('account_tokens').insert(link)).insert(row);
      } else {
        await db.transaction(async (trx) => {
          await trx('account_tokens').insert(link);
          await trx('mail_queue').insert(row);
        });
      }
    },
    async claimDue(at, leaseUntil, limit) {
      const rows = await claimDueRows<QueuedMail>(db, 'mail_queue', COLUMNS, at, leaseUntil, limit);
      return rows.map((r) => ({ ...r, attempts: Number(r.attempts) }));
    },
    async retryAt(id, attempts, nextAt, error) {
      await db('mail_queue').where({ id }).update({ attempts, next_at: nextAt, last_error: error.slice(0, 100) });
    },
    async remove(id) {
      await db('mail_queue').where({ id }).delete();
    },
    async removeForAccount(accountId, trx = db) {
      return trx('mail_queue').where({ account_id: accountId }).delete();
    },
  };
}
