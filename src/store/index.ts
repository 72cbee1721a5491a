/**
 * Every repository, built from one database handle and the secret box: the composition root, the
 * CLI and the tests take them from here instead of building their own from the raw handle.
 */
import type { Knex } from 'knex';
import type { SecretBox } from '../security/crypto.js';
import { createAccountTokenRepository, type AccountTokenRepository } from './account-tokens.js';
import { createAccountRepository, type AccountRepository } from './accounts.js';
import { createActivationCodeRepository, type ActivationCodeRepository } from './activation-codes.js';
import { createAuditCheckpointRepository, type AuditCheckpointRepository } from './audit-checkpoints.js';
import { createCibaDecisionRepository, type CibaDecisionRepository } from './ciba-decisions.js';
import { createCertificateHandoffRepository, type CertificateHandoffRepository } from './certificate-handoffs.js';
import { createAuditLog, withChainRetry, type AuditLog } from './audit.js';
import { createClientRepository, type ClientRepository } from './clients.js';
import { createConsentRefusalRepository, type ConsentRefusalRepository } from './consent-refusals.js';
import { createTrustedBrowserRepository, type TrustedBrowserRepository } from './trusted-browsers.js';
import { createCredentialRepository, type CredentialRepository } from './credentials.js';
import type { Db } from './db.js';
import { createDatabaseHealth, type DatabaseHealth } from './health.js';
import { createIdentityRepository, type IdentityRepository } from './identities.js';
import { createKeyRepository, type KeyRepository } from './keys.js';
import { createKnownDeviceRepository, type KnownDeviceRepository } from './known-devices.js';
import { createLogoutDeliveryRepository, type LogoutDeliveryRepository } from './logout-deliveries.js';
import { createMailQueueRepository, type MailQueueRepository } from './mail-queue.js';
import { createMandateRepository, type MandateRepository } from './mandates.js';
import { createStoreMetrics, type StoreMetrics } from './metrics.js';
import { createOidcPayloadRepository, type OidcPayloadRepository } from './oidc-payloads.js';
import { createOpenDataRepository, type OpenDataRepository } from './open-data.js';
import { createRateLimitRepository, type RateLimitRepository } from './rate-limits.js';
import { createRegistrarRoleRepository, type RegistrarRoleRepository } from './registrar-roles.js';
import { createRoleRepository, type RoleRepository } from './roles.js';
import { createSessionDeviceRepository, type SessionDeviceRepository } from './session-devices.js';
import { createWebAuthnMetadataRepository, type WebAuthnMetadataRepository } from './webauthn-metadata.js';
import { createWalletPresentationRepository, type WalletPresentationRepository } from './wallet-presentations.js';
import { createWalletCredentialRepository, type WalletCredentialRepository } from './wallet-credentials.js';

/** A unit of work: repositories' writes given it commit together or not at all. */
export type Transaction = Knex.Transaction;

export interface Repositories {
  accounts: AccountRepository;
  accountTokens: AccountTokenRepository;
  activationCodes: ActivationCodeRepository;
  audit: AuditLog;
  auditCheckpoints: AuditCheckpointRepository;
  /** Single-use hand-off rows of an ID-card sign-in between the main host and the certificate host. */
  certificateHandoffs: CertificateHandoffRepository;
  clients: ClientRepository;
  credentials: CredentialRepository;
  /** Verified identities (identity proofing). */
  identities: IdentityRepository;
  keys: KeyRepository;
  knownDevices: KnownDeviceRepository;
  logoutDeliveries: LogoutDeliveryRepository;
  mailQueue: MailQueueRepository;
  /** Who may act for whom (mandates/service.ts). */
  mandates: MandateRepository;
  openData: OpenDataRepository;
  payloads: OidcPayloadRepository;
  rateLimits: RateLimitRepository;
  refusals: ConsentRefusalRepository;
  /** The registration desk's role, apart from the administration roles. */
  registrarRoles: RegistrarRoleRepository;
  roles: RoleRepository;
  sessionDevices: SessionDeviceRepository;
  /** Browsers remembered after a two-factor sign-in (the second factor skipped up to substantial). */
  trustedBrowsers: TrustedBrowserRepository;
  webauthnMetadata: WebAuthnMetadataRepository;
  /** Presentation requests of wallet sign-ins (OpenID4VP), shared by every instance. */
  walletPresentations: WalletPresentationRepository;
  /** The PID issuer's registry: issued credentials, status-list indices, used proofs. */
  walletCredentials: WalletCredentialRepository;
  /** The citizen's answers to backchannel authentication requests (CIBA), one per request. */
  cibaDecisions: CibaDecisionRepository;
  /** Readiness of the database: reachable, migrations current. */
  health: DatabaseHealth;
  /** Pool and queue gauges for /metrics. */
  metrics: StoreMetrics;
  /**
   * Runs `work` in one transaction; writes that append to an audit chain are run again on the
   * chain's new head when a concurrent append took their place.
   */
  atomically<T>(work: (trx: Transaction) => Promise<T>): Promise<T>;
}

/**
 * Builds every repository on `db`. `now` is the clock of the repositories whose timing tests move
 * (the back-channel logout retries, verified identities' and activation codes' expiry); the others
 * read the wall clock.
 */
export function createRepositories(db: Db, box: SecretBox, opts: { now?: () => number } = {}): Repositories {
  return {
    accounts: createAccountRepository(db),
    accountTokens: createAccountTokenRepository(db),
    activationCodes: createActivationCodeRepository(db, opts.now),
    audit: createAuditLog(db),
    auditCheckpoints: createAuditCheckpointRepository(db),
    certificateHandoffs: createCertificateHandoffRepository(db, opts.now),
    cibaDecisions: createCibaDecisionRepository(db, opts.now),
    clients: createClientRepository(db, box),
    credentials: createCredentialRepository(db),
    identities: createIdentityRepository(db, box, opts.now),
    keys: createKeyRepository(db),
    knownDevices: createKnownDeviceRepository(db),
    logoutDeliveries: createLogoutDeliveryRepository(db, opts.now),
    mailQueue: createMailQueueRepository(db),
    mandates: createMandateRepository(db, opts.now),
    openData: createOpenDataRepository(db),
    payloads: createOidcPayloadRepository(db),
    rateLimits: createRateLimitRepository(db),
    refusals: createConsentRefusalRepository(db),
    registrarRoles: createRegistrarRoleRepository(db),
    roles: createRoleRepository(db),
    sessionDevices: createSessionDeviceRepository(db),
    trustedBrowsers: createTrustedBrowserRepository(db),
    webauthnMetadata: createWebAuthnMetadataRepository(db),
    walletPresentations: createWalletPresentationRepository(db, opts.now),
    walletCredentials: createWalletCredentialRepository(db, box),
    health: createDatabaseHealth(db),
    metrics: createStoreMetrics(db),
    atomically: (work) => withChainRetry(() => db.transaction(work)),
  };
}
