/**
 * Who may administer Kapija: roles granted to accounts. `admin` reads and changes; `auditor` only reads.
 */
import type { Db } from './db.js';

export type Role = 'admin' | 'auditor';
export const ROLES: readonly Role[] = ['admin', 'auditor'];

export interface RoleGrant {
  readonly accountId: string;
  readonly role: Role;
  readonly grantedAt: Date;
  readonly grantedBy: string;
}

export interface RoleRepository {
  /** Grants a role; granting a role the account already has changes nothing and returns false. */
  grant(accountId: string, role: Role, grantedBy: string): Promise<boolean>;
  revoke(accountId: string, role: Role): Promise<boolean>;
  rolesOf(accountId: string): Promise<Role[]>;
  list(): Promise<RoleGrant[]>;
}

interface Row {
  account_id: string;
  role: Role;
  granted_at: number | string;
  granted_by: string;
}

export function createRoleRepository(db: Db, now: () => number = Date.now): RoleRepository {
  return {
    async grant(accountId, role, grantedBy) {
      const inserted = (await db('account_roles')
        .insert({ account_id: accountId, role, granted_at: now(), granted_by: grantedBy })
        .onConflict(['account_id', 'role'])
        .ignore()
        .returning('role')) as unknown[];
      return inserted.length > 0;
    },
    async revoke(accountId, role) {
      return (await db('account_roles').where({ account_id: accountId, role }).delete()) > 0;
    },
    async rolesOf(accountId) {
      const rows = (await db('account_roles').select('role').where({ account_id: accountId })) as Pick<Row, 'role'>[];
      return rows.map((r) => r.role).filter((r) => ROLES.includes(r));
    },
    async list() {
      const rows = (await db('account_roles').orderBy('granted_at')) as Row[];
      return rows.map((r) => ({ accountId: r.account_id, role: r.role, grantedAt: new Date(Number(r.granted_at)), grantedBy: r.granted_by }));
    },
  };
}
