/**
 * Registrars: officers at a registration counter who check identity documents and hand out
 * activation codes. `registrar` is kept in account_roles next to `admin` and `auditor`, but it is
 * not an administration role: the console and the admin API's other routes never see it (they read
 * roles through store/roles.ts, which knows only admin and auditor), so a registrar reads no audit
 * and changes no client. A registrar works only when signed in at high (hardware key and a verified
 * identity), and never on their own account (identity/service.ts).
 */
import type { Db } from '../store/db.js';
import type { AuditLog } from '../store/audit.js';
import { withChainRetry } from '../store/audit.js';

export const REGISTRAR_ROLE = 'registrar';

export function createRegistrarRoles(db: Db, audit: AuditLog, now: () => number = Date.now) {
  return {
    async isRegistrar(accountId: string): Promise<boolean> {
      return Boolean(await db('account_roles').where({ account_id: accountId, role: REGISTRAR_ROLE }).first('role'));
    },
    /** Grants the role; false when the account had it already. */
    async grant(accountId: string, grantedBy: string): Promise<boolean> {
      const inserted = (await db('account_roles')
        .insert({ account_id: accountId, role: REGISTRAR_ROLE, granted_at: now(), granted_by: grantedBy })
        .onConflict(['account_id', 'role'])
        .ignore()
        .returning('role')) as unknown[];
      if (inserted.length) await withChainRetry(() => audit.append({ chain: 'admin', actor: grantedBy, action: 'admin.role.granted', subjectAccountId: accountId, details: { role: REGISTRAR_ROLE } }));
      return inserted.length > 0;
    },
    async revoke(accountId: string, by: string): Promise<boolean> {
      const removed = (await db('account_roles').where({ account_id: accountId, role: REGISTRAR_ROLE }).delete()) > 0;
      if (removed) await withChainRetry(() => audit.append({ chain: 'admin', actor: by, action: 'admin.role.revoked', subjectAccountId: accountId, details: { role: REGISTRAR_ROLE } }));
      return removed;
    },
  };
}

export type RegistrarRoles = ReturnType<typeof createRegistrarRoles>;
