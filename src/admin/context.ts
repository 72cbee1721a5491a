/**
 * What every administrative resource shares: who acts (Actor), the write check, the audit entry
 * each action appends to the 'admin' chain, and the transaction a change and its entry share.
 */
import type Provider from 'oidc-provider';
import type { AccountDeletion } from '../account/deletion.js';
import { KapijaError } from '../errors.js';
import type { SessionService } from '../oidc/sessions.js';
import type { Account, AccountRepository } from '../store/accounts.js';
import type { AuditLog } from '../store/audit.js';
import type { ClientRepository } from '../store/clients.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { Repositories, Transaction } from '../store/index.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import type { Role, RoleRepository } from '../store/roles.js';

export const ADMIN_CLIENT_ID = 'kapija-admin';
/** The account portal's own client (src/account/). */
export const ACCOUNT_CLIENT_ID = 'kapija-account';
export const ADMIN_SCOPE = 'kapija:admin';
export const ADMIN_CHAIN = 'admin';
/** Changes (console and API) need both factors proven within this many seconds. */
export const ADMIN_REAUTH_SECONDS = 10 * 60;

/** Who is acting, from where. */
export interface Actor {
  readonly accountId: string;
  readonly role: Role;
  readonly ip: string | null;
}

export interface AdminServiceDeps {
  provider: Provider;
  /** A change and its audit entry commit together or not at all (store/index.ts). */
  atomically: Repositories['atomically'];
  accounts: AccountRepository;
  clients: ClientRepository;
  credentials: CredentialRepository;
  /** Which credential types are second factors, and every type a reset removes. */
  factors: Pick<FactorRegistry, 'listed' | 'credentialTypes'>;
  payloads: OidcPayloadRepository;
  sessions: SessionService;
  audit: AuditLog;
  roles: RoleRepository;
  production: boolean;
  /** Pause between back-channel logout retries, in ms. */
  retryDelayMs?: number;
  /**
   * After a factor reset: tells the citizen (in the account's language) and mails the single-use
   * link through which alone a new factor can be enrolled.
   */
  sendReenrolLink?: (accountId: string) => Promise<void>;
  /** Deletes a citizen's account, as the account portal does (account/deletion.ts). */
  deletion: AccountDeletion;
  /** Forgets the browsers a citizen had remembered (interactions/trusted-browser.ts), on a lock. */
  forgetBrowsers?: (accountId: string) => Promise<void>;
}

export const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** The administrative resources' shared helpers, built once per service. */
export interface AdminContext {
  deps: AdminServiceDeps;
  record(actor: Actor, action: string, extra?: { subjectAccountId?: string | null; clientId?: string | null; details?: Record<string, unknown> }, trx?: Transaction): Promise<unknown>;
  /**
   * A change and its audit entry in one transaction: both commit, or neither (an entry that cannot
   * be written undoes the change). Run again on the new head when a concurrent append took its place.
   */
  atomically: Repositories['atomically'];
  requireWrite(actor: Actor): void;
  /** The account, or 404 `admin.citizen.not_found`. */
  getAccount(id: string): Promise<Account>;
}

export function createAdminContext(deps: AdminServiceDeps): AdminContext {
  return {
    deps,
    record: (actor, action, extra = {}, trx) => deps.audit.append({ chain: ADMIN_CHAIN, actor: actor.accountId, action, ip: actor.ip, ...extra }, trx),
    atomically: deps.atomically,
    requireWrite(actor) {
      if (actor.role !== 'admin') throw new KapijaError('admin.read_only', 403);
    },
    async getAccount(id) {
      const a = await deps.accounts.findById(id);
      if (!a) throw new KapijaError('admin.citizen.not_found', 404);
      return a;
    },
  };
}
