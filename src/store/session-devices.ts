/**
 * Device and place of each sign-in session (user agent and IP as the request carried them).
 */
import type { Db } from './db.js';

export interface SessionDevice {
  readonly sessionUid: string;
  readonly accountId: string;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
}

export interface SessionDeviceRepository {
  /** Records a use of the session; the first use fixes where it started. */
  touch(input: { sessionUid: string; accountId: string; ip: string; userAgent: string }, at?: number): Promise<void>;
  listForAccount(accountId: string): Promise<SessionDevice[]>;
  deleteForAccount(accountId: string): Promise<number>;
}

interface Row {
  session_uid: string;
  account_id: string;
  ip: string | null;
  user_agent: string | null;
  created_at: number | string;
  last_seen_at: number | string;
}

export function createSessionDeviceRepository(db: Db, now: () => number = Date.now): SessionDeviceRepository {
  return {
    async touch(input, at = now()) {
      await db('session_devices')
        .insert({
          session_uid: input.sessionUid,
          account_id: input.accountId,
          ip: input.ip.slice(0, 64),
          user_agent: input.userAgent.slice(0, 300),
          created_at: at,
          last_seen_at: at,
        })
        .onConflict('session_uid')
        .merge({ last_seen_at: at });
    },
    async listForAccount(accountId) {
      const rows = (await db('session_devices').where({ account_id: accountId })) as Row[];
      return rows.map((r) => ({
        sessionUid: r.session_uid,
        accountId: r.account_id,
        ip: r.ip,
        userAgent: r.user_agent,
        createdAt: new Date(Number(r.created_at)),
        lastSeenAt: new Date(Number(r.last_seen_at)),
      }));
    },
    async deleteForAccount(accountId) {
      return db('session_devices').where({ account_id: accountId }).delete();
    },
  };
}
