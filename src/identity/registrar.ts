/**
 * Registrars: officers at a registration counter who check identity documents and hand out
 * activation codes. `registrar` is kept in account_roles next to `admin` and `auditor`, but it is
 * not an administration role: the console and the admin API's other routes never see it (they read
 * roles through store/roles.ts, which knows only admin and auditor), so a registrar reads no audit
 * and changes no client. A registrar works only when signed in at high (hardware key and a verified
 * identity), and never on their own account (identity/service.ts).
 */
import type { Repositories } from '../store/index.js';
import { REGISTRAR_ROLE } from '../store/registrar-roles.js';

/** Granting and revoking the role, each with its audit entry in the same transaction. */
export function createRegistrarRoles(repos: Pick<Repositories, 'registrarRoles' | 'activationCodes' | 'audit' | 'atomically'>) {
  const { registrarRoles, activationCodes, audit, atomically } = repos;
  return {
    isRegistrar: (accountId: string) => registrarRoles.isRegistrar(accountId),
    /** Grants the role; false when the account had it already. */
    async grant(accountId: string, grantedBy: string): Promise<boolean> {
      return atomically(async (trx) => {
        const granted = await registrarRoles.grant(accountId, grantedBy, trx);
        if (granted) await audit.append({ chain: 'admin', actor: grantedBy, action: 'admin.role.granted', subjectAccountId: accountId, details: { role: REGISTRAR_ROLE } }, trx);
        return granted;
      });
    },
    async revoke(accountId: string, by: string): Promise<boolean> {
      return atomically(async (trx) => {
        const removed = await registrarRoles.revoke(accountId, trx);
        if (!removed) return false;
        // The codes the registrar handed out and nobody used yet go with the role: a registrar
        // removed (say, for fraud) leaves no proofing behind to be redeemed later.
        const withdrawn = await activationCodes.withdraw({ createdBy: accountId }, trx);
        await audit.append({ chain: 'admin', actor: by, action: 'admin.role.revoked', subjectAccountId: accountId, details: { role: REGISTRAR_ROLE, activation_codes_withdrawn: withdrawn } }, trx);
        return true;
      });
    },
  };
}

export type RegistrarRoles = ReturnType<typeof createRegistrarRoles>;
