/**
 * Device and place of each sign-in session (user agent and IP as the request carried them).
 */
import { storedIp } from './audit.js';
import { statement, type Db } from './db.js';

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
  deleteForAccount(accountId: string, trx?: Db): Promise<number>;
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
  // Every session save (each sign-in and single sign-on) touches its row: prepared once per connection.
  const upsert = statement(
    db,
    'session_device_touch',
    `insert into session_devices (session_uid, account_id, ip, user_agent, created_at, last_seen_at) values (?, ?, ?, ?, ?, ?)
     on conflict (session_uid) do update set last_seen_at = excluded.last_seen_at`,
  );
  return {
    async touch(input, at = now()) {
      await upsert([input.sessionUid, input.accountId, storedIp(input.ip), input.userAgent.slice(0, 300), at, at]);
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
    async deleteForAccount(accountId, trx = db) {
      return trx('session_devices').where({ account_id: accountId }).delete();
    },
  };
}
