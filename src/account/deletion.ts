/**
 * Deleting a citizen's account, the one way both the account portal (the citizen) and the
 * administration take. Everything that is the account's in Kapija's own tables goes in one
 * transaction: its mailed links and queued mail, its factors, known devices and refused claims,
 * and the account row itself, erased to a tombstone (the id stays for the audit chain). What the
 * engine holds (sessions, grants and their tokens) is ended after that commit: ending a session
 * tells services by back-channel logout, which is no part of a database transaction, and once the
 * account is erased no session or link of it signs anyone in again.
 */
import type { EventBus } from '../events.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { SessionService } from '../oidc/sessions.js';
import type { Repositories, Transaction } from '../store/index.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';

export type AccountDeletionRepositories = Pick<Repositories, 'atomically' | 'accounts' | 'accountTokens' | 'mailQueue' | 'credentials' | 'sessionDevices' | 'refusals' | 'trustedBrowsers'>;

export interface AccountDeletion {
  /**
   * Deletes the account. `alongside` runs in the same transaction (e.g. the administrator's audit
   * entry): if it fails, nothing is deleted.
   */
  delete(accountId: string, opts?: { alongside?: (trx: Transaction) => Promise<unknown> }): Promise<void>;
}

export function createAccountDeletion(deps: { repos: AccountDeletionRepositories; sessions: Pick<SessionService, 'endAllForAccount'>; payloads: Pick<OidcPayloadRepository, 'revokeGrants'>; events: EventBus; factors: Pick<FactorRegistry, 'credentialTypes'> }): AccountDeletion {
  const { repos } = deps;
  return {
    async delete(accountId, opts = {}) {
      await repos.atomically(async (trx) => {
        await repos.accountTokens.revokeAllOfAccount(accountId, trx);
        await repos.mailQueue.removeForAccount(accountId, trx);
        for (const type of deps.factors.credentialTypes()) await repos.credentials.removeType(accountId, type, trx);
        await repos.sessionDevices.deleteForAccount(accountId, trx);
        await repos.trustedBrowsers.revokeAll(accountId, trx);
        await repos.refusals.forget(accountId, undefined, trx);
        await repos.accounts.erase(accountId, trx);
        await opts.alongside?.(trx);
      });
      await deps.sessions.endAllForAccount(accountId);
      await deps.payloads.revokeGrants(accountId);
      await deps.events.emit('account.deleted', { accountId });
    },
  };
}
