/**
 * Back-channel logout deliveries waiting for another attempt (`logout_deliveries`); any instance
 * may take the due ones (due-rows.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';
import { claimDueRows } from './due-rows.js';

export interface PendingLogout {
  readonly id: string;
  readonly clientId: string;
  readonly accountId: string;
  readonly sid: string;
  /** Attempts made so far. */
  readonly attempts: number;
}

export interface LogoutDeliveryRepository {
  /** Records a delivery that failed `attempts` times, to be tried again at `nextAt` (ms). */
  add(d: { clientId: string; accountId: string; sid: string; attempts: number; error: string }, nextAt: number): Promise<void>;
  /** Takes up to `limit` due deliveries and hides them from other claims until `leaseUntil` (ms). */
  claimDue(now: number, leaseUntil: number, limit: number): Promise<PendingLogout[]>;
  /** Another failed attempt: count it and set when the next is due. */
  retryAt(id: string, attempts: number, nextAt: number, error: string): Promise<void>;
  /** Delivered, or given up: the row goes. */
  remove(id: string): Promise<void>;
}

interface Row {
  id: string;
  client_id: string;
  account_id: string;
  sid: string;
  attempts: number;
}

const COLUMNS = ['id', 'client_id', 'account_id', 'sid', 'attempts'];
const toPending = (r: Row): PendingLogout => ({ id: r.id, clientId: r.client_id, accountId: r.account_id, sid: r.sid, attempts: Number(r.attempts) });
/** Error texts come from the HTTP exchange (status line, connection error), never from the token. */
const short = (error: string) => error.slice(0, 300);

export function createLogoutDeliveryRepository(db: Db, now: () => number = Date.now): LogoutDeliveryRepository {
  return {
    async add(d, nextAt) {
      await db('logout_deliveries').insert({
        id: randomUUID(),
        client_id: d.clientId,
        account_id: d.accountId,
        sid: d.sid,
        attempts: d.attempts,
        created_at: now(),
        next_at: nextAt,
        last_error: short(d.error),
      });
    },
    async claimDue(at, leaseUntil, limit) {
      return (await claimDueRows<Row>(db, 'logout_deliveries', COLUMNS, at, leaseUntil, limit)).map(toPending);
    },
    async retryAt(id, attempts, nextAt, error) {
      await db('logout_deliveries').where({ id }).update({ attempts, next_at: nextAt, last_error: short(error) });
    },
    async remove(id) {
      await db('logout_deliveries').where({ id }).delete();
    },
  };
}
