/**
 * The devices (browsers) each citizen has signed in from, as keyed hashes of the long-lived
 * `kapija.device` cookie, so a sign-in from a new one can be announced to the citizen.
 */
import { isPostgres, type Db } from './db.js';
import { ACCOUNT_COLUMNS, toAccount, type Account, type AccountRow } from './accounts.js';

export interface KnownDeviceRepository {
  /**
   * Records a sign-in from `deviceHash`. Returns whether the device was new to the account and
   * whether the account had any known device before (the first sign-in ever is not "new"), and the
   * account's row read along (what a new-device notice is addressed with): on PostgreSQL always, on
   * SQLite when the device is new to an account that had others; absent for an unknown account.
   */
  remember(accountId: string, deviceHash: string): Promise<{ isNew: boolean; hadOthers: boolean; account?: Account }>;
  count(accountId: string): Promise<number>;
  /**
   * Whether the account with this (normalised) username has signed in from `deviceHash`: one query
   * whether or not the name exists.
   */
  isKnownFor(username: string, deviceHash: string): Promise<boolean>;
}

/**
 * PostgreSQL records a sign-in in one statement: the account's devices as they were (the insert's
 * own row is not visible to the statement's other parts), the upsert of this one, and the account.
 */
const REMEMBER_PG = `
with prior as (
  select count(*) as n, coalesce(bool_or(device_hash = ?), false) as known from known_devices where account_id = ?
), upsert as (
  insert into known_devices (account_id, device_hash, first_seen_at, last_seen_at) values (?, ?, ?, ?)
  on conflict (account_id, device_hash) do update set last_seen_at = excluded.last_seen_at
)
select prior.n, prior.known, ${ACCOUNT_COLUMNS.map((c) => `a.${c}`).join(', ')} from prior left join accounts a on a.id = ?`;

type RememberedRow = { n: number | string; known: boolean } & { [K in keyof AccountRow]: AccountRow[K] | null };

export function createKnownDeviceRepository(db: Db, now: () => number = Date.now): KnownDeviceRepository {
  const pg = isPostgres(db);
  return {
    async remember(accountId, deviceHash) {
      const at = now();
      if (pg) {
        const { rows } = (await db.raw(REMEMBER_PG, [deviceHash, accountId, accountId, deviceHash, at, at, accountId])) as { rows: RememberedRow[] };
        const prior = rows[0]!;
        const account = prior.id === null ? undefined : toAccount(prior as AccountRow);
        return { ...(prior.known ? { isNew: false, hadOthers: true } : { isNew: true, hadOthers: Number(prior.n) > 0 }), ...(account ? { account } : {}) };
      }
      return db.transaction(async (trx) => {
        const existing = await trx('known_devices').where({ account_id: accountId, device_hash: deviceHash }).first();
        if (existing) {
          await trx('known_devices').where({ account_id: accountId, device_hash: deviceHash }).update({ last_seen_at: at });
          return { isNew: false, hadOthers: true };
        }
        const others = (await trx('known_devices').where({ account_id: accountId }).count({ n: '*' }).first()) as { n: number | string } | undefined;
        await trx('known_devices')
          .insert({ account_id: accountId, device_hash: deviceHash, first_seen_at: at, last_seen_at: at })
          .onConflict(['account_id', 'device_hash'])
          .ignore();
        const hadOthers = Number(others?.n ?? 0) > 0;
        const row = hadOthers ? ((await trx('accounts').where({ id: accountId }).first(ACCOUNT_COLUMNS)) as AccountRow | undefined) : undefined;
        return { isNew: true, hadOthers, ...(row ? { account: toAccount(row) } : {}) };
      });
    },
    async count(accountId) {
      const row = (await db('known_devices').where({ account_id: accountId }).count({ n: '*' }).first()) as { n: number | string } | undefined;
      return Number(row?.n ?? 0);
    },
    async isKnownFor(username, deviceHash) {
      const row = await db('known_devices')
        .join('accounts', 'accounts.id', 'known_devices.account_id')
        .where({ 'accounts.username': username, 'known_devices.device_hash': deviceHash })
        .first('known_devices.account_id');
      return row !== undefined;
    },
  };
}
