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

/** A use of a session from a device: the first fixes where it started, each later one when it was last seen. */
export interface SessionDeviceTouch {
  readonly sessionUid: string;
  readonly accountId: string;
  readonly ip: string;
  readonly userAgent: string;
}

const TOUCH_INTO = 'insert into session_devices (session_uid, account_id, ip, user_agent, created_at, last_seen_at)';
const TOUCH_CONFLICT = 'on conflict (session_uid) do update set last_seen_at = excluded.last_seen_at';

/**
 * The touch as an insert taking {@link touchValues}. With `when` (PostgreSQL, inside a larger
 * statement: see OidcPayloadRepository.saveAll), the row is written only if that condition holds.
 */
export function touchSql(when?: string): string {
  if (!when) return `${TOUCH_INTO} values (?, ?, ?, ?, ?, ?) ${TOUCH_CONFLICT}`;
  return `${TOUCH_INTO} select ?::text, ?::text, ?::text, ?::text, ?::bigint, ?::bigint where ${when} ${TOUCH_CONFLICT}`;
}

/** The values of {@link touchSql}, in order. */
export function touchValues(input: SessionDeviceTouch, at: number): (string | number | null)[] {
  return [input.sessionUid, input.accountId, storedIp(input.ip), input.userAgent.slice(0, 300), at, at];
}

export interface SessionDeviceRepository {
  /**
   * Records a use of the session on its own. A session saved by the engine is touched in the same
   * step as its save instead (OidcPayloadRepository.saveAll).
   */
  touch(input: SessionDeviceTouch, at?: number): Promise<void>;
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
  const upsert = statement(db, 'session_device_touch', touchSql());
  return {
    async touch(input, at = now()) {
      await upsert(touchValues(input, at));
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
