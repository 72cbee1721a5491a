/**
 * The composition root: builds the repositories (store/index.ts), the engine (oidc/engine.ts) and
 * the routers from one Config and one database handle, and mounts them on a Koa application in
 * order. Nothing here is a module-level singleton, so a test can build a second Kapija with
 * another configuration.
 */
import Koa, { type Context } from 'koa';
import os from 'node:os';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import { ConfigError, type Config } from './config.js';
import { KapijaError } from './errors.js';
import { openStore, migrate, type Db } from './store/db.js';
import { createRepositories, type Repositories } from './store/index.js';
import type { AccountRepository } from './store/accounts.js';
import type { ClientRepository } from './store/clients.js';
import type { OidcPayloadRepository } from './store/oidc-payloads.js';
import type { CredentialRepository } from './store/credentials.js';
import type { AuditLog } from './store/audit.js';
import { createSecretBox } from './security/crypto.js';
import { createCsrf, type Csrf } from './security/csrf.js';
import { resolveMasterKey } from './security/master-key.js';
import { createLogger } from './security/redact.js';
import { createPasswordHasher, type PasswordHasher } from './factors/password/hasher.js';
import { createTotpFactor, type TotpFactor } from './factors/totp/index.js';
import { createRecoveryFactor, type RecoveryFactor } from './factors/recovery/index.js';
import { createWebAuthnFactor, type WebAuthnFactor } from './factors/webauthn/index.js';
import { createFactorRegistry, type Factor, type FactorDeps, type FactorRegistry } from './factors/registry.js';
import { createCertificateSignIn } from './factors/certificate/index.js';
import { createCertificateFactor } from './factors/certificate/factor.js';
import { createWalletVerifier, type WalletVerifier } from './wallet/verifier/service.js';
import { createWalletFactor } from './wallet/verifier/factor.js';
import { createWalletRouter } from './wallet/verifier/router.js';
import { requestSigningKey } from './wallet/verifier/keys.js';
import { TIERS, createThrottle } from './security/rate-limit.js';
import { trustedIssuers, type TrustedIssuer, type WalletFetch } from './wallet/verifier/trusted-issuers.js';
import { createCertificateHandoff } from './factors/certificate/handoff.js';
import { createCardLink } from './factors/certificate/link.js';
import { certificateHost } from './http/certificate-host.js';
import { createCertificateCrlRepository } from './store/certificate-crls.js';
import { createSignInThrottles } from './security/sign-in-throttles.js';
import { accountReadAlong, identityReadAlong, keepIdentityAlong, mandateReadAlong, createAdapterClass, refusalsReadAlong } from './oidc/adapter.js';
import { createFindAccount, createPairwiseSubject } from './oidc/accounts.js';
import { createKeyManager, type KeyManager, type KeySet } from './oidc/keys.js';
import { createEngine, sessionDeviceTouches, type Engine, type EngineDeps } from './oidc/engine.js';
import { createSessionService, type SessionService } from './oidc/sessions.js';
import { createOwnSignIn } from './http/own-sign-in.js';
import { createAccountRouter } from './account/router.js';
import { recordLedger, releaseEntry } from './account/ledger.js';
import { createAccountDeletion } from './account/deletion.js';
import { AUDIT_KEYS_PATH, createAuditCheckpoints, type AuditCheckpoints } from './audit/checkpoints.js';
import { auditKeysEndpoint } from './audit/keys-endpoint.js';
import { createRegistrationAndRecoveryModule, type RegistrationAndRecovery } from './registration/index.js';
import { createEventBus, type EventBus } from './events.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createHealth, operationsEndpoints, type Health } from './observability/health.js';
import { observeRequests } from './observability/request-log.js';
import { createOpenData } from './open-data/index.js';
import type { RequestListener } from 'node:http';
import { createLogoutRetries } from './oidc/logout-retries.js';
import { createInteractionRouter } from './interactions/router.js';
import { createAdministration } from './admin/index.js';
import { createRenderer, type Renderer } from './http/render.js';
import { createErrorResponder } from './http/error-handler.js';
import { authorizationByPost, createEngineRoutes, enginePages } from './http/engine-routes.js';
import { httpsOnly } from './http/https-only.js';
import { bodyParser, csrfProtection, i18n } from './http/middleware.js';
import { createDevicePages } from './interactions/device.js';
import { createTrustedBrowsers } from './interactions/trusted-browser.js';
import type { DevicePages } from './oidc/provider.js';
import { securityHeaders } from './http/headers.js';
import { pinOrigin } from './http/origin.js';
import { staticAssets } from './http/static.js';
import { cookiesPage } from './http/cookies-page.js';
import { contentPages } from './http/content-pages.js';
import { startPage } from './http/start-page.js';
import { createIdentityService, type IdentityService } from './identity/service.js';
import { createMandateService, type MandateService } from './mandates/service.js';
import { representationIntrospection, representedSubject, withRepresentation } from './mandates/represented-account.js';
import { pollPace } from './oidc/poll-pace.js';
import { registerTokenExchange } from './mandates/token-exchange.js';
import { endSessionsAbove, revokeGrantsAbove } from './identity/sessions.js';
import { createActivationRouter } from './identity/activation-router.js';
import { createRegistrarRoles } from './identity/registrar.js';
import { createCredentialKeys } from './wallet/issuer/keys.js';
import { createPidIssuer, type PidIssuer } from './wallet/issuer/service.js';
import { pidEngineConfig, type PidEngineConfig, type PidIssuedNotice } from './wallet/issuer/engine.js';
import { pidIssuerDocuments } from './wallet/issuer/routes.js';
import { STATUS_PATH } from './wallet/issuer/status-list.js';
import { createDeskOffer, deskWallets, offerLink, portalOffer, type CredentialOffer } from './wallet/issuer/offers.js';
import { serviceName } from './i18n/service-name.js';
import { LOCALES } from './i18n/index.js';
import type { Locale } from './config.js';
import { rank } from './assurance/levels.js';
import { createCibaHooks, createCibaRequests, type CibaDeps } from './ciba/service.js';

export interface Kapija {
  readonly app: Koa;
  readonly provider: Provider;
  readonly db: Db;
  readonly config: Config;
  readonly logger: Logger;
  /** Every repository on `db` (store/index.ts). */
  readonly repos: Repositories;
  readonly accounts: AccountRepository;
  readonly clients: ClientRepository;
  readonly payloads: OidcPayloadRepository;
  readonly passwords: PasswordHasher;
  readonly credentials: CredentialRepository;
  readonly totp: TotpFactor;
  readonly recovery: RecoveryFactor;
  readonly webauthn: WebAuthnFactor;
  /** The registered factors (factors/registry.ts). */
  readonly factors: FactorRegistry;
  readonly keys: KeyManager;
  /** The `sub` a service sees for an account: pairwise per sector unless it is registered as public. */
  subjectFor(accountId: string, clientId: string): Promise<string>;
  readonly audit: AuditLog;
  /** Identity proofing: verified identities, levels, activation codes (identity/service.ts). */
  readonly identity: IdentityService;
  /** Who may act for whom (mandates/service.ts). */
  readonly mandates: MandateService;
  /** The PID issuer: issued credentials, revocation, status lists (wallet/issuer/service.ts). */
  readonly pid: PidIssuer;
  /** A registration desk's credential offer with a pre-authorized code (wallet/issuer/offers.ts). */
  pidDeskOffer(input: { accountId: string; clientId: string; registrar: string; ip: string | null }): Promise<{ offer: CredentialOffer; txCode: string; expiresAt: Date }>;
  /** Domain events (sign-ins, factor changes, consents) for the ledger, audit, metrics and statistics. */
  readonly events: EventBus;
  /** Prometheus registry and HTTP timing of this instance. */
  readonly metrics: Metrics;
  /** Readiness: database, migrations, keys. */
  readonly health: Health;
  /** /healthz, /readyz and /metrics alone, for a separate METRICS_PORT. */
  readonly operations: RequestListener;
  /**
   * Adds the next signing keys when they are due, reloads the key set and, when it changed (a new
   * key, one activated or retired), builds a new engine and swaps it in between two requests.
   * Every instance calls this every minute. Resolves to whether the engine was replaced.
   */
  refreshKeys(): Promise<boolean>;
  /** A citizen's sessions: list and end them (with token revocation and back-channel logout). */
  readonly sessions: SessionService;
  /** Registration, recovery, e-mail change (`requestEmailChange`) and security notices. */
  readonly registrationAndRecovery: RegistrationAndRecovery;
  /** Deletes expired protocol rows, keys, links, throttle counters, activation codes, the ID card's hand-offs, wallet presentation requests, answered CIBA requests and the bindings of gone grants to mandates. */
  purge(): Promise<{ payloads: number; keys: number; links: number; rateLimits: number; activationCodes: number; handoffs: number; trustedBrowsers: number; walletPresentations: number; mandateGrants: number; cibaDecisions: number }>;
  /** Signs the head of every audit chain that grew since the last checkpoints (every instance, every minute). */
  checkpointAudit(): Promise<number>;
  /** Tries the back-channel logouts that failed and are due again (every instance, every 15 s). */
  deliverLogouts(): Promise<{ delivered: number; rescheduled: number; abandoned: number }>;
  /** Tries the mail the relay did not take yet and that is due again (every instance, every 15 s). */
  deliverMail(): Promise<{ sent: number; rescheduled: number; abandoned: number }>;
  close(): Promise<void>;
}

export interface StoreHandles {
  db: Db;
  box: ReturnType<typeof createSecretBox>;
  /** Every repository on `db` (store/index.ts). */
  repos: Repositories;
  keys: KeyManager;
  accounts: AccountRepository;
  clients: ClientRepository;
  payloads: OidcPayloadRepository;
  passwords: PasswordHasher;
  credentials: CredentialRepository;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  webauthn: WebAuthnFactor;
  factors: FactorRegistry;
  /** Hash-chained audit log: the administrative trail and every citizen's ledger. */
  audit: AuditLog;
  /** Signed checkpoints and anchors of the audit log's chain heads. */
  checkpoints: AuditCheckpoints;
  /** Identity proofing: verified identities, their levels, activation codes (identity/service.ts). */
  identity: IdentityService;
  /** Who may act for whom (mandates/service.ts). */
  mandates: MandateService;
  /** Wallet sign-in (OpenID4VP verifier); undefined when no issuer of PIDs is trusted. */
  wallet: WalletVerifier | undefined;
  /** Kapija's PID issuer and its credential-signing keys (wallet/issuer/). */
  pid: PidIssuer;
  pidKeys: ReturnType<typeof createCredentialKeys>;
}

/**
 * Wallet sign-in's composition: issuers of PIDs trusted besides WALLET_TRUSTED_ISSUERS (Kapija's own
 * issuer), and the fetch used for jwks_uri and status lists (one serving Kapija's own list in-process).
 */
export interface WalletOptions {
  issuers?: readonly TrustedIssuer[];
  fetch?: WalletFetch;
}

/** How long a grant's binding to a mandate is kept whatever its grant's state (its grant is saved first, in the same request). */
const MANDATE_BINDING_GRACE_MS = 10 * 60 * 1000;

/** Factors registered after the built-in ones (factors/registry.ts), built from the same handles. */
export type ExtraFactors = (deps: FactorDeps & { box: ReturnType<typeof createSecretBox> }) => readonly Factor[];

/** Opens the database and the repositories, without any HTTP. The CLI uses this too. */
export function openHandles(config: Config, opts: { db?: Db; now?: () => number; extraFactors?: ExtraFactors; wallet?: WalletOptions } = {}): StoreHandles {
  const master = resolveMasterKey(config);
  const box = createSecretBox(master.key);
  const db = opts.db ?? openStore(config.database);
  const repos = createRepositories(db, box, opts.now ? { now: opts.now } : {});
  const retentionSeconds = Math.max(config.ttl.session, config.ttl.accessToken) + 3600;
  const { accounts, credentials, audit } = repos;
  const factorDeps: FactorDeps = {
    accounts,
    credentials,
    // Each process hashes on its share of the cores (WEB_CONCURRENCY processes share them).
    passwords: createPasswordHasher(config.argon2, Math.ceil(os.availableParallelism() / Math.max(1, config.webConcurrency))),
    totp: createTotpFactor({ credentials, box, issuerName: 'Kapija' }),
    recovery: createRecoveryFactor({ credentials, box }),
    webauthn: createWebAuthnFactor({ settings: config.webauthn, credentials, accounts, metadata: repos.webauthnMetadata }),
  };
  const identity = createIdentityService({ repos, box, ...(opts.now ? { now: opts.now } : {}) });
  // The ID card (factors/certificate/factor.ts) is offered only when certificate sign-in is configured.
  const signInUrl = config.certificate?.signInUrl;
  const card = signInUrl
    ? [createCertificateFactor({ accounts, identity, handoff: createCertificateHandoff({ repo: repos.certificateHandoffs, box }), signInUrl })]
    : [];
  // Kapija's PID issuer (wallet/issuer/): its credential-signing keys (kept as long as the longest
  // credential they sign may be checked) and the issuing service; the engine's part is pidIssuerFor.
  const pidKeys = createCredentialKeys({ keys: repos.keys, box, retentionSeconds: config.pid.validitySeconds + 24 * 3600, ...(opts.now ? { now: opts.now } : {}) });
  const pid = createPidIssuer({ issuer: config.issuer, issuingAuthority: config.pid.issuingAuthority, validitySeconds: config.pid.validitySeconds, repos, identity, keys: pidKeys, box, ...(opts.now ? { now: opts.now } : {}) });
  // Wallet sign-in (wallet/verifier/) trusts Kapija's own PIDs, their keys and each one's status
  // entry read in-process (from the registry as it is now, so a PID revoked at any instance is
  // refused by every other at once), and the issuers the operator adds. Kapija's own PIDs count as
  // substantial: their holder keys come without a key attestation, so nothing shows they are held in
  // a secure element.
  const walletFetch: WalletFetch = opts.wallet?.fetch ?? ((url, init) => fetch(url, init));
  const ownStatus = `${config.issuer}${STATUS_PATH}/`;
  const ownPid: TrustedIssuer = {
    issuer: config.issuer,
    level: 'substantial',
    jwks: () => pid.publicJwks(),
    status: async (uri, idx) => (uri.startsWith(ownStatus) ? pid.statusOf(uri.slice(ownStatus.length), idx) : 1),
  };
  const walletIssuers = trustedIssuers(config.wallet.trustedIssuers, walletFetch, [ownPid, ...(opts.wallet?.issuers ?? [])]);
  const wallet =
    walletIssuers.size > 0
      ? createWalletVerifier({
          repo: repos.walletPresentations,
          box,
          issuer: config.issuer,
          signingKey: requestSigningKey({ keys: repos.keys, box, issuer: config.issuer }),
          issuers: walletIssuers,
          fetch: walletFetch,
          allowHttp: config.env !== 'production',
          findAccountByVerifiedJmbg: (jmbg) => identity.findAccountByVerifiedJmbg(jmbg),
          ...(opts.now ? { now: opts.now } : {}),
        })
      : undefined;
  const walletFactor = wallet ? [createWalletFactor({ verifier: wallet, issuer: config.issuer })] : [];
  return {
    db,
    box,
    repos,
    keys: createKeyManager({
      keys: repos.keys,
      box,
      retentionSeconds,
      activationDelaySeconds: config.keyRotation.activationDelaySeconds,
      rotateEveryDays: config.keyRotation.everyDays,
      ...(opts.now ? { now: opts.now } : {}),
    }),
    clients: repos.clients,
    payloads: repos.payloads,
    ...factorDeps,
    factors: createFactorRegistry(factorDeps, [...card, ...walletFactor, ...(opts.extraFactors?.({ ...factorDeps, box }) ?? [])]),
    audit,
    checkpoints: createAuditCheckpoints({ audit, repo: repos.auditCheckpoints, box, ...(opts.now ? { now: opts.now } : {}) }),
    identity,
    mandates: createMandateService({
      repos,
      acceptsRepresentation: async (clientId) => (await repos.clients.findMetadata(clientId))?.['kapija_accepts_representation'] === true,
      ...(opts.now ? { now: opts.now } : {}),
    }),
    wallet,
    pid,
    pidKeys,
  };
}

type KapijaOptions = { db?: Db; logger?: Logger; migrate?: boolean; now?: () => number; extraFactors?: ExtraFactors; wallet?: WalletOptions };

/** What the routers share: built once in createKapija, handed to each mount step. */
interface Wiring {
  config: Config;
  logger: Logger;
  handles: StoreHandles;
  events: EventBus;
  render: Renderer;
  csrf: Csrf;
  secureCookies: boolean;
  provider: Provider;
  sessions: SessionService;
  pid: PidIssuer;
  pidDeskOffer: Kapija['pidDeskOffer'];
}

export async function createKapija(config: Config, opts: KapijaOptions = {}): Promise<Kapija> {
  if (config.certificate && !config.certificate.signInUrl) throw new ConfigError('CERT_SIGNIN_URL: required with CERT_TRUST_ANCHORS for signing in with the ID card');
  const logger = opts.logger ?? createLogger(config.logLevel);
  const handles = openHandles(config, opts);
  const { db, repos } = handles;
  if (opts.migrate !== false) await migrate(db);
  await handles.keys.ensure();
  let keySet = await handles.keys.load();
  const events = createEventBus(logger);
  const { pid, wallet } = await pidIssuerFor(config, handles, events, opts.now);

  const secureCookies = config.issuer.startsWith('https://');
  const { render } = createRenderer();
  const errors = createErrorResponder({ render, logger });
  const csrf = createCsrf(keySet.cookieKeys);
  recordLedger(events, handles.audit);
  const metrics = createMetrics({ events, store: repos.metrics, factors: handles.factors });
  const pairwiseSubject = createPairwiseSubject((purpose, data) => handles.box.mac(purpose, data));
  const device = createDevicePages({ render, throttleStorage: repos.rateLimits, box: handles.box });
  const engine = createEngineFor(config, handles, { wallet, logger, events, render, errors, pairwiseSubject, devicePages: device.pages, keys: keySet, observe: (p) => metrics.observeProvider(p), logoutLater: (d, err) => void logoutRetries.later(d, 1, err) });
  const { provider } = engine;
  // Declared after the engine it retries for; the engine reports failures only once requests run.
  const logoutRetries = createLogoutRetries({ provider, store: repos.logoutDeliveries, events, logger, ...(opts.now ? { now: opts.now } : {}) });
  const routes = createEngineRoutes(engine, errors);
  const health = createHealth({ database: repos.health, signingKeys: () => keySet.jwks.keys.length });

  // Behind TRUST_PROXY_HOPS proxies, the client's address is the one the outermost of them appended
  // to X-Forwarded-For; what the client wrote in front of it is its own choice and is ignored.
  const app = new Koa({ proxy: config.trustProxy, maxIpsCount: config.trustProxy ? config.trustProxyHops : 0 });
  app.keys = keySet.cookieKeys;
  app.silent = true;

  app.use(observeRequests(logger, metrics));
  app.use(pinOrigin(config.issuer));
  if (config.env === 'production') app.use(httpsOnly(config.issuer));
  app.use(securityHeaders({ production: config.env === 'production' }));
  app.use(routes.publishedDocuments);
  // The language is negotiated only when a page is rendered (the engine renders one for a browser
  // that asks an API endpoint for HTML).
  app.use(i18n({ fallback: config.defaultLocale, secureCookies }));
  app.use(routes.engineApi);
  app.use(errors.middleware('page'));
  if (config.certificate) {
    // The certificate host's leg of an ID-card sign-in (http/certificate-host.ts), only through the proxy.
    const signIn = createCertificateSignIn(config, createCertificateCrlRepository(db), opts.now ? () => new Date(opts.now!()) : undefined)!;
    app.use(certificateHost({ issuer: config.issuer, proxySecret: signIn.proxySecret, validator: signIn.validator, handoff: createCertificateHandoff({ repo: repos.certificateHandoffs, box: handles.box }) }));
  }
  app.use(staticAssets());
  app.use(cookiesPage({ render, config }));
  app.use(contentPages({ render, contentDir: config.contentDir }));
  app.use(startPage({ render }));

  // With METRICS_PORT, /metrics is served only there (main.ts), not to the public.
  app.use(operationsEndpoints({ health, metrics: config.metricsPort ? undefined : metrics }));
  // Anonymous daily statistics for the public (open data, CC BY 4.0).
  const openData = createOpenData({ events, store: repos.openData, issuer: config.issuer, minCount: config.openData.minCount, ...(opts.now ? { now: opts.now } : {}) });
  app.use(openData.middleware);
  app.use(auditKeysEndpoint(handles.checkpoints));
  app.use(pidIssuerDocuments(pid));

  const sessions = createSessionService({ provider, payloads: handles.payloads, retries: logoutRetries });
  followIdentityChanges(events, handles, sessions, pid);
  const pidDeskOffer: Kapija['pidDeskOffer'] = (input) => createDeskOffer({ issuer: config.issuer, provider, pid, audit: handles.audit }, input);
  const registrationAndRecovery = await mountPages(app, { config, logger, handles, events, render, csrf, secureCookies, provider, sessions, pid, pidDeskOffer });

  // Everything else is the OpenID Connect engine.
  app.use(authorizationByPost);
  // Wrong user codes on the device page are throttled per address before the engine looks one up.
  app.use(device.guard);
  app.use(routes.toEngine);
  const operations = new Koa();
  operations.use(operationsEndpoints({ health, metrics }));

  return {
    app,
    provider,
    db,
    config,
    logger,
    repos,
    accounts: handles.accounts,
    clients: handles.clients,
    payloads: handles.payloads,
    passwords: handles.passwords,
    credentials: handles.credentials,
    totp: handles.totp,
    recovery: handles.recovery,
    webauthn: handles.webauthn,
    factors: handles.factors,
    keys: handles.keys,
    sessions,
    registrationAndRecovery: registrationAndRecovery.service,
    audit: handles.audit,
    identity: handles.identity,
    mandates: handles.mandates,
    pid,
    pidDeskOffer,
    async subjectFor(accountId, clientId) {
      const client = await provider.Client.find(clientId);
      if (!client || client.subjectType !== 'pairwise') return accountId;
      return pairwiseSubject(String(client.metadata()['kapija_sector'] ?? client.sectorIdentifier ?? client.clientId), accountId);
    },
    events,
    metrics,
    health,
    operations: operations.callback(),
    async refreshKeys() {
      await handles.keys.rotateIfDue();
      const next = await handles.keys.load();
      if (next.version === keySet.version) return false;
      // One synchronous step: a request is served wholly with the old keys and engine or the new ones.
      engine.swap(next);
      keySet = next;
      app.keys = next.cookieKeys;
      return true;
    },
    purge: () => purgeExpired(handles, registrationAndRecovery.service, opts.now?.() ?? Date.now()),
    checkpointAudit: () => handles.checkpoints.checkpointChanged(),
    deliverLogouts: () => logoutRetries.deliverDue(),
    deliverMail: () => registrationAndRecovery.mailer.deliverDue(),
    async close() {
      registrationAndRecovery.mailer.close();
      if (!opts.db) await db.destroy();
    },
  };
}

/**
 * What follows a change of a citizen's identity or account: a revoked (or lowered) identity ends at
 * once every session and grant above what it now supports, and the PIDs that rest on it; a deleted
 * account's verified identity, mandates and PIDs go with the rest of its personal data.
 */
function followIdentityChanges(events: EventBus, handles: StoreHandles, sessions: SessionService, pid: PidIssuer): void {
  events.on('account.deleted', (e) => handles.identity.forget(e.accountId));
  events.on('account.deleted', (e) => handles.mandates.forget(e.accountId));
  handles.identity.onLevelDropped(async (accountId, level) => {
    await endSessionsAbove(sessions, accountId, level);
    await revokeGrantsAbove(handles.payloads, accountId, level);
    // A PID rests on the identity: revoking (or lowering below substantial) the proofing revokes it.
    if (level === 'none' || rank(level) < rank('substantial')) await pid.revokeAll(accountId, 'system', level === 'none' ? 'identity_revoked' : 'identity_lowered');
  });
  events.on('account.deleted', (e) => pid.revokeAll(e.accountId, 'system', 'account_deleted').then(() => undefined));
  // A PID carries the attributes of one proofing: proofed again or corrected, it is outdated.
  handles.identity.onChanged(async (accountId) => void (await pid.revokeAll(accountId, 'system', 'identity_changed')));
}

/** Deletes what has expired or can no longer be used, in every store (Kapija.purge). */
async function purgeExpired(handles: StoreHandles, registration: { purgeExpired(): Promise<number> }, at: number): ReturnType<Kapija['purge']> {
  const { repos } = handles;
  const [payloads, keys, links, rateLimits, activationCodes, handoffs, trustedBrowsers, walletPresentations, mandateGrants, cibaDecisions] = await Promise.all([
    handles.payloads.purgeExpired(),
    handles.keys.purge(),
    registration.purgeExpired(),
    repos.rateLimits.purgeExpired(),
    // An expired activation code is refused anyway; its keyed hash need not be kept.
    repos.activationCodes.purgeExpired(at),
    repos.certificateHandoffs.purgeExpired(),
    repos.trustedBrowsers.purgeExpired(),
    repos.walletPresentations.purgeExpired(),
    // A grant's binding to its mandate once the grant is gone (the mandates stay, for the record);
    // a binding younger than the grace is kept, as its grant may still be on its way to the store.
    repos.mandates.purgeUnusable(at - MANDATE_BINDING_GRACE_MS, at),
    repos.cibaDecisions.purgeExpired(),
  ]);
  return { payloads, keys, links, rateLimits, activationCodes, handoffs, trustedBrowsers, walletPresentations, mandateGrants, cibaDecisions };
}

/**
 * The PID issuer's engine side (wallet/issuer/): its credential-signing keys created on first
 * start, and the engine's OpenID4VCI configuration. The c_nonce secret is derived from the master key: the same on every
 * instance, stable across restarts.
 */
async function pidIssuerFor(config: Config, handles: StoreHandles, events: EventBus, now?: () => number): Promise<{ pid: PidIssuer; wallet: PidEngineConfig }> {
  await handles.pidKeys.ensure();
  const { pid } = handles;
  const nonceSecret = Buffer.from(handles.box.mac('openid4vci-c-nonce', config.issuer), 'base64url');
  // Every issuance is told to the citizen by mail (notices/), with the wallet's name in each language.
  const onIssued: PidIssuedNotice = async ({ accountId, client, channel }) => {
    const names = Object.fromEntries(LOCALES.map((l) => [l, serviceName(client.metadata(), l, client.clientId)])) as Record<Locale, string>;
    await events.emit('wallet.pid_issued', { accountId, clientId: client.clientId, channel, walletNames: names });
  };
  return { pid, wallet: pidEngineConfig({ issuer: config.issuer, pid, nonceSecret, onIssued, ...(now ? { now } : {}) }) };
}

/** The engine, configured with Kapija's storage, accounts, ledger and pages. */
function createEngineFor(
  config: Config,
  handles: StoreHandles,
  d: {
    wallet: PidEngineConfig;
    logger: Logger;
    events: EventBus;
    render: Renderer;
    errors: ReturnType<typeof createErrorResponder>;
    pairwiseSubject: (sector: string, accountId: string) => string;
    devicePages: DevicePages;
    keys: KeySet;
    observe: (engine: Provider) => void;
    logoutLater: (delivery: { clientId: string; accountId: string; sid: string }, err: unknown) => void;
  },
): Engine {
  const { repos } = handles;
  /** The request's client's subject for an account, never substituted (the representative's own, in `act`). */
  const ownSubject = async (ctx: KoaContextWithOIDC, accountId: string, of?: { clientId: string; subjectType?: string; sectorIdentifier?: string; metadata(): Record<string, unknown> }) => {
    const client = of ?? ctx.oidc.client!;
    return client.subjectType === 'pairwise' ? d.pairwiseSubject(String(client.metadata()['kapija_sector'] ?? client.sectorIdentifier ?? client.clientId), accountId) : accountId;
  };
  /** An account's verified identity, from the row read with its token, session or account in this request when there was one. */
  const identityOf = async (accountId: string) => {
    const along = identityReadAlong(accountId);
    if (!along) return handles.identity.find(accountId);
    return along.row === null ? undefined : repos.identities.fromRow(along.row);
  };
  /**
   * An account that no token or session of the request read along (the resume after a sign-in, a
   * CIBA or device approval) is read with its verified identity, for the request's identity checks.
   */
  const accountWithIdentity = {
    findById: async (id: string) => {
      const found = await handles.accounts.findByIdWithIdentity(id);
      if (found) keepIdentityAlong(id, found.identityRow);
      return found?.account;
    },
  };
  return createEngine({
    config,
    wallet: d.wallet,
    logger: d.logger,
    keys: d.keys,
    adapter: createAdapterClass(handles.payloads, handles.clients, sessionDeviceTouches()),
    // A token made under a mandate answers for the principal, with the representative in `act` (mandates/represented-account.ts).
    findAccount: withRepresentation(
      createFindAccount(accountWithIdentity, accountReadAlong, async (accountId, clientId) => refusalsReadAlong(accountId, clientId) ?? repos.refusals.list(accountId, clientId), identityOf),
      { mandates: handles.mandates, subjectFor: ownSubject },
    ),
    findGrant: async (accountId, clientId) => {
      const { grant, refused } = await handles.payloads.latestGrant(accountId, clientId);
      return grant && { id: grant.id, payload: grant.payload as Record<string, unknown>, refused };
    },
    identityLevel: async (accountId) => (await identityOf(accountId))?.level ?? 'none',
    representationGrant: async (grantId, clientId) => mandateReadAlong(grantId) ?? Boolean(await handles.mandates.representationOf(grantId, clientId)),
    introspecting: activeAccountIntrospection(handles.accounts, representationIntrospection({ mandates: handles.mandates, subjectFor: ownSubject })),
    // Under a mandate, the engine's `sub` is the principal's (mandates/represented-account.ts).
    pairwiseSubject: (sector, accountId) => d.pairwiseSubject(sector, representedSubject(accountId)),
    // A release not yet in the ledger is written here, not by a listener, so that its failure
    // reaches the response (a listener's failure is only logged). Userinfo and introspection
    // releases of many citizens are written in groups, each request waiting for its group's commit.
    onRelease: async (release) => {
      if (!release.recorded) await handles.audit.appendGrouped(releaseEntry(release));
      await d.events.emit('data.released', { ...release, recorded: true });
    },
    releaseRecord: releaseEntry,
    // CIBA: who a login_hint names, and each request in the citizen's ledger (ciba/service.ts).
    ciba: createCibaHooks({ ...cibaDeps(handles), events: d.events, throttleStorage: repos.rateLimits }),
    pages: { ...enginePages(d.render, d.errors), device: d.devicePages },
    onBuilt: (engine) => {
      d.observe(engine);
      // RFC 8693 token exchange for services that accept representation (mandates/token-exchange.ts).
      registerTokenExchange(engine, { mandates: handles.mandates, subjectFor: ownSubject, activeAccount: async (id) => (await handles.accounts.findById(id))?.status === 'active' });
      // CIBA and device polls at the announced interval, across instances (oidc/poll-pace.ts).
      engine.use(pollPace({ storage: repos.rateLimits, box: handles.box }));
    },
    // RP-initiated logout: the engine delivers back-channel logout itself; what fails is retried later.
    onBackchannelError: d.logoutLater,
  });
}

/**
 * Introspection answers inactive for a token whose account is no longer active (locked, disabled,
 * deleted), as userinfo and the refresh grant already do (oidc/accounts.ts): grants that belong to
 * no browser session (CIBA approvals, token exchanges) outlive the sessions a lock ends, and a
 * resource server must not go on accepting their tokens.
 */
function activeAccountIntrospection(accounts: Pick<AccountRepository, 'findById'>, next: NonNullable<EngineDeps['introspecting']>): NonNullable<EngineDeps['introspecting']> {
  return async (ctx, token) => {
    if (token.accountId) {
      const account = accountReadAlong(token.accountId)?.account ?? (await accounts.findById(token.accountId));
      if (!account || account.status !== 'active') return false;
    }
    return next(ctx, token);
  };
}

/** What CIBA's engine hooks and the portal's requests page share. */
function cibaDeps(handles: StoreHandles): CibaDeps {
  return {
    accounts: handles.accounts,
    identity: handles.identity,
    payloads: handles.payloads,
    decisions: handles.repos.cibaDecisions,
    refusals: handles.repos.refusals,
    audit: handles.audit,
    box: handles.box,
  };
}

/**
 * Kapija's own pages, in mount order: the sign-in interaction, registration and recovery, the
 * account portal and the administration. Each takes parsed bodies and CSRF on every form.
 */
async function mountPages(app: Koa, w: Wiring): Promise<ReturnType<typeof createRegistrationAndRecoveryModule>> {
  const { config, handles, provider, render, secureCookies } = w;
  const { repos } = handles;
  /** Kapija's own form pages under `prefix`: small parsed bodies, CSRF on every change, the router. */
  const formPages = (prefix: string, router: { routes(): unknown; allowedMethods(o: object): unknown }) =>
    underPath(
      prefix,
      compose<Context>([
        bodyParser(),
        csrfProtection(w.csrf, { secureCookies }),
        router.routes() as Koa.Middleware,
        router.allowedMethods({ throw: true, methodNotAllowed: () => new KapijaError('request.invalid', 405) }) as Koa.Middleware,
      ]) as Koa.Middleware,
    );

  const throttles = createSignInThrottles({ storage: repos.rateLimits, box: handles.box, isKnownDevice: (username, device) => repos.knownDevices.isKnownFor(username, device) });
  const trustedBrowsers = createTrustedBrowsers({ repo: repos.trustedBrowsers, box: handles.box, secureCookies });
  // A remembered browser stands for a second factor: a new password or factor, or "this wasn't me", forgets them all.
  const forgetBrowsers = ({ accountId }: { accountId: string }) => repos.trustedBrowsers.revokeAll(accountId).then(() => undefined);
  for (const event of ['account.password_changed', 'factor.enrolled', 'factor.removed', 'account.secured'] as const) w.events.on(event, forgetBrowsers);
  const interactions = createInteractionRouter({
    trustedBrowsers,
    provider,
    accounts: handles.accounts,
    factors: handles.factors,
    throttles,
    box: handles.box,
    render,
    defaultLocale: config.defaultLocale,
    requireSecondFactor: config.requireSecondFactor,
    events: w.events,
    refusals: repos.refusals,
    identity: handles.identity,
    mandates: handles.mandates,
    factorReset: {
      useLink: (token, accountId) => registrationAndRecovery.service.useReenrolLink(token, accountId),
      ensureLink: (accountId) => registrationAndRecovery.service.ensureReenrolLink(accountId),
    },
  });
  if (handles.wallet) app.use(walletPages(handles.wallet, w));
  app.use(formPages('/interaction', interactions));

  // The citizen's account portal, signed in through Kapija itself.
  const portalSignIn = createOwnSignIn({
    provider,
    clients: handles.clients,
    payloads: handles.payloads,
    box: handles.box,
    issuer: config.issuer,
    clientId: 'kapija-account',
    clientName: 'Kapija',
    base: '/account',
    cookieName: 'kapija.account',
    idleSeconds: config.portalIdleSeconds,
    secureCookies,
    identityLevel: (accountId) => handles.identity.levelOf(accountId),
  });
  await portalSignIn.ensureClient();
  // Registration, recovery, e-mail verification and "this wasn't me" (their own paths, CSRF on every form).
  const registrationAndRecovery = createRegistrationAndRecoveryModule({
    ...handles,
    config,
    logger: w.logger,
    provider,
    sessions: w.sessions,
    throttleStorage: repos.rateLimits,
    events: w.events,
    render,
    csrf: w.csrf,
    secureCookies,
  });
  app.use(registrationAndRecovery.middleware);
  // Activation codes from a registration counter or a letter (identity/activation-router.ts).
  app.use(formPages('/activate', createActivationRouter({ accounts: handles.accounts, passwords: handles.passwords, identity: handles.identity, factors: handles.factors, render, box: handles.box, throttleStorage: repos.rateLimits })));
  // Requests from services (CIBA) the citizen answers on the portal; a deleted account's are refused.
  const cibaRequests = createCibaRequests({ ...cibaDeps(handles), provider, logger: w.logger });
  w.events.on('account.deleted', (e) => cibaRequests.refuseAll(e.accountId));
  const deletion = createAccountDeletion({ repos, sessions: w.sessions, payloads: handles.payloads, events: w.events, factors: handles.factors });
  const account = createAccountRouter({
    provider,
    signIn: portalSignIn,
    accounts: handles.accounts,
    credentials: handles.credentials,
    payloads: handles.payloads,
    refusals: repos.refusals,
    devices: repos.sessionDevices,
    trustedBrowsers: repos.trustedBrowsers,
    sessions: w.sessions,
    factors: handles.factors,
    totp: handles.totp,
    webauthn: handles.webauthn,
    box: handles.box,
    events: w.events,
    audit: handles.audit,
    checkpoints: handles.checkpoints,
    auditKeysUrl: `${config.issuer}${AUDIT_KEYS_PATH}`,
    render,
    passwords: handles.passwords,
    requestEmailChange: (accountId, email, locale) => registrationAndRecovery.service.requestEmailChange(accountId, email, locale),
    deletion,
    reauthSeconds: config.reauthSeconds,
    secureCookies,
    identity: handles.identity,
    mandates: handles.mandates,
    clients: handles.clients,
    wallet: {
      eligibility: (accountId) => w.pid.eligibility(accountId),
      list: (accountId) => w.pid.list(accountId),
      revokeOwn: (accountId, id) => w.pid.revokeOwn(accountId, id),
      offer: () => offerLink(portalOffer(config.issuer)),
    },
    ciba: cibaRequests,
    secondFactorThrottle: throttles.secondFactor,
    ...(config.certificate?.signInUrl
      ? { cardLink: createCardLink({ handoff: createCertificateHandoff({ repo: repos.certificateHandoffs, box: handles.box }), identity: handles.identity, signInUrl: config.certificate.signInUrl }) }
      : {}),
  });
  app.use(formPages('/account', account));

  // Administration: the admin API (/admin/api, bearer tokens) and the console (/admin).
  const administration = await createAdministration({
    ...handles,
    config,
    provider,
    sessions: w.sessions,
    render,
    csrf: w.csrf,
    secureCookies,
    sendReenrolLink: (accountId) => registrationAndRecovery.service.sendReenrolLink(accountId),
    deletion,
    forgetBrowsers: async (accountId) => {
      await repos.trustedBrowsers.revokeAll(accountId);
    },
    registrars: createRegistrarRoles(handles.repos),
    mandates: handles.mandates,
    pidOffers: {
      wallets: async (ctx) =>
        (await deskWallets(handles.clients)).map((c) => ({ clientId: c.clientId, name: serviceName(c.metadata, ctx.state.locale as Locale, String(c.metadata['client_name'] ?? c.clientId)) })),
      create: async (input) => {
        const made = await w.pidDeskOffer(input);
        return { ...(await offerLink(made.offer)), txCode: made.txCode, expiresAt: made.expiresAt };
      },
    },
  });
  app.use(underPath('/admin', administration.middleware));
  return registrationAndRecovery;
}

/**
 * Wallet sign-in's routes (wallet/verifier/router.ts): the wallet's request and response endpoints
 * under /wallet (JSON bodies and forms parsed, no CSRF: the wallet has no cookie), and the wallet
 * page of a sign-in and its polling under /interaction/:uid/wallet (GET only).
 */
function walletPages(verifier: WalletVerifier, w: Wiring): Koa.Middleware {
  const router = createWalletRouter({
    verifier,
    render: w.render,
    // 100 unreadable answers an hour from one address, then an hour's wait (the address tier of the sign-in throttles).
    throttle: createThrottle(w.handles.repos.rateLimits, { scope: 'wallet-response', box: w.handles.box, tiers: TIERS.filter((tier) => tier.by.length === 1 && tier.by[0] === 'ip') }),
    async interactionOf(ctx) {
      try {
        return (await w.provider.interactionDetails(ctx.req, ctx.res)).uid;
      } catch (err) {
        if ((err as { name?: string }).name === 'SessionNotFound') throw new KapijaError('interaction.expired', 400);
        throw err;
      }
    },
  });
  const routes = compose<Context>([bodyParser(), router.routes() as Koa.Middleware]) as Koa.Middleware;
  const pages = router.routes() as Koa.Middleware;
  return (ctx, next) => {
    // Only its own two paths: other routes under /wallet (the PID issuer's) parse their own bodies.
    if (/^\/wallet\/(request|response)\/[^/]+$/.test(ctx.path)) return routes(ctx, next);
    if (ctx.method === 'GET' && /^\/interaction\/[^/]+\/wallet(\/status)?$/.test(ctx.path)) return pages(ctx, next);
    return next();
  };
}

/** Runs `middleware` for requests under `prefix` only. */
function underPath(prefix: string, middleware: Koa.Middleware): Koa.Middleware {
  return (ctx, next) => (ctx.path === prefix || ctx.path.startsWith(`${prefix}/`) ? middleware(ctx, next) : next());
}
