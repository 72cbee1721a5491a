/**
 * The devices (browsers) each citizen has signed in from, as keyed hashes of the long-lived
 * `kapija.device` cookie, so a sign-in from a new one can be announced to the citizen.
 */
import type { Db } from './db.js';

export interface KnownDeviceRepository {
  /**
   * Records a sign-in from `deviceHash`. Returns whether the device was new to the account and
   * whether the account had any known device before (the first sign-in ever is not "new").
   */
  remember(accountId: string, deviceHash: string): Promise<{ isNew: boolean; hadOthers: boolean }>;
  count(accountId: string): Promise<number>;
  /**
   * Whether the account with this (normalised) username has signed in from `deviceHash`: one query
   * whether or not the name exists.
   */
  isKnownFor(username: string, deviceHash: string): Promise<boolean>;
}

export function createKnownDeviceRepository(db: Db, now: () => number = Date.now): KnownDeviceRepository {
  return {
    async remember(accountId, deviceHash) {
      const at = now();
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
        return { isNew: true, hadOthers: Number(others?.n ?? 0) > 0 };
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
