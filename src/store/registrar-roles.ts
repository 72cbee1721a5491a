/**
 * The `registrar` role in account_roles, kept apart from roles.ts (which knows only the
 * administration roles, admin and auditor) so that the console and the admin API never see it.
 */
import type { Db } from './db.js';

export const REGISTRAR_ROLE = 'registrar';

export interface RegistrarRoleRepository {
  isRegistrar(accountId: string): Promise<boolean>;
  /** Grants the role; false when the account had it already. */
  grant(accountId: string, grantedBy: string, trx?: Db): Promise<boolean>;
  /** Takes the role away; false when the account did not have it. */
  revoke(accountId: string, trx?: Db): Promise<boolean>;
}

export function createRegistrarRoleRepository(db: Db, now: () => number = Date.now): RegistrarRoleRepository {
  return {
    async isRegistrar(accountId) {
      return Boolean(await db('account_roles').where({ account_id: accountId, role: REGISTRAR_ROLE }).first('role'));
    },
    async grant(accountId, grantedBy, trx = db) {
      const inserted = (await trx('account_roles')
        .insert({ account_id: accountId, role: REGISTRAR_ROLE, granted_at: now(), granted_by: grantedBy })
        .onConflict(['account_id', 'role'])
        .ignore()
        .returning('role')) as unknown[];
      return inserted.length > 0;
    },
    async revoke(accountId, trx = db) {
      return (await trx('account_roles').where({ account_id: accountId, role: REGISTRAR_ROLE }).delete()) > 0;
    },
  };
}
