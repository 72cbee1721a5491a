/**
 * The composition root: builds every repository, the engine and the routers from one Config and
 * one database handle, and mounts them on a Koa application. Nothing here is a module-level
 * singleton, so a test can build a second Kapija with another configuration.
 */
import Koa, { type Context } from 'koa';
import os from 'node:os';
import mount from 'koa-mount';
import compose from 'koa-compose';
import { koaBody } from 'koa-body';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { KapijaError, isUnavailableError } from './errors.js';
import { openStore, migrate, type Db } from './store/db.js';
import { createAccountRepository, type AccountRepository } from './store/accounts.js';
import { createClientRepository, type ClientRepository } from './store/clients.js';
import { createKeyRepository } from './store/keys.js';
import { createOidcPayloadRepository, type OidcPayloadRepository } from './store/oidc-payloads.js';
import { createSecretBox } from './security/crypto.js';
import { createCsrf } from './security/csrf.js';
import { resolveMasterKey } from './security/master-key.js';
import { createLogger } from './security/redact.js';
import { createPasswordHasher, type PasswordHasher } from './factors/password/hasher.js';
import { createCredentialRepository, type CredentialRepository } from './store/credentials.js';
import { createTotpFactor, type TotpFactor } from './factors/totp/index.js';
import { createRecoveryFactor, type RecoveryFactor } from './factors/recovery/index.js';
import { createWebAuthnFactor, type WebAuthnFactor } from './factors/webauthn/index.js';
import { createSignInThrottles } from './security/sign-in-throttles.js';
import { createWebAuthnMetadataRepository } from './store/webauthn-metadata.js';
import { accountReadAlong, createAdapterClass, refusalsReadAlong } from './oidc/adapter.js';
import { createFindAccount, createPairwiseSubject } from './oidc/accounts.js';
import { createKeyManager, type KeyManager, type KeySet } from './oidc/keys.js';
import { createProvider } from './oidc/provider.js';
import { createSessionService, type SessionService } from './oidc/sessions.js';
import { createOwnSignIn } from './http/own-sign-in.js';
import { createAccountRouter } from './account/router.js';
import { recordLedger, releaseEntry } from './account/ledger.js';
import { createAuditLog, type AuditLog } from './store/audit.js';
import { createAuditCheckpointRepository } from './store/audit-checkpoints.js';
import { AUDIT_KEYS_PATH, createAuditCheckpoints, type AuditCheckpoints } from './audit/checkpoints.js';
import { auditKeysEndpoint } from './audit/keys-endpoint.js';
import { createSelfServiceModule, type SelfService } from './self-service/index.js';
import { createEventBus, type EventBus } from './events.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createHealth, operationsEndpoints, type Health } from './observability/health.js';
import { observeRequests } from './observability/request-log.js';
import { createOpenData } from './open-data/index.js';
import { createOpenDataRepository } from './store/open-data.js';
import type { RequestListener } from 'node:http';
import { createSessionDeviceRepository } from './store/session-devices.js';
import { createConsentRefusalRepository } from './store/consent-refusals.js';
import { createLogoutDeliveryRepository } from './store/logout-deliveries.js';
import { createKnownDeviceRepository } from './store/known-devices.js';
import { createRateLimitRepository } from './store/rate-limits.js';
import { createDatabaseHealth } from './store/health.js';
import { createStoreMetrics } from './store/metrics.js';
import { createLogoutRetries } from './oidc/logout-retries.js';
import { createInteractionRouter } from './interactions/router.js';
import { createAdministration } from './admin/index.js';
import { createRenderer } from './http/render.js';
import { createErrorResponder, prefersHtml } from './http/error-handler.js';
import { bodyParser, csrfProtection, i18n } from './http/middleware.js';
import { securityHeaders } from './http/headers.js';
import { pathAndQuery, pinOrigin } from './http/origin.js';
import { staticAssets } from './http/static.js';
import { cookiesPage } from './http/cookies-page.js';
import { contentPages } from './http/content-pages.js';
import { startPage } from './http/start-page.js';
import type { Translate } from './i18n/index.js';

export interface Kapija {
  readonly app: Koa;
  readonly provider: Provider;
  readonly db: Db;
  readonly config: Config;
  readonly logger: Logger;
  readonly accounts: AccountRepository;
  readonly clients: ClientRepository;
  readonly payloads: OidcPayloadRepository;
  readonly passwords: PasswordHasher;
  readonly credentials: CredentialRepository;
  readonly totp: TotpFactor;
  readonly recovery: RecoveryFactor;
  readonly webauthn: WebAuthnFactor;
  readonly keys: KeyManager;
  /** The `sub` a service sees for an account: pairwise per sector unless it is registered as public. */
  subjectFor(accountId: string, clientId: string): Promise<string>;
  readonly audit: AuditLog;
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
  readonly selfService: SelfService;
  /** Deletes expired protocol rows, keys, links and throttle counters. */
  purge(): Promise<{ payloads: number; keys: number; links: number; rateLimits: number }>;
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
  keys: KeyManager;
  accounts: AccountRepository;
  clients: ClientRepository;
  payloads: OidcPayloadRepository;
  passwords: PasswordHasher;
  credentials: CredentialRepository;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  webauthn: WebAuthnFactor;
  /** Hash-chained audit log: the administrative trail and every citizen's ledger. */
  audit: AuditLog;
  /** Signed checkpoints and anchors of the audit log's chain heads. */
  checkpoints: AuditCheckpoints;
}

/** Opens the database and the repositories, without any HTTP. The CLI uses this too. */
export function openHandles(config: Config, opts: { db?: Db; now?: () => number } = {}): StoreHandles {
  const master = resolveMasterKey(config);
  const box = createSecretBox(master.key);
  const db = opts.db ?? openStore(config.database);
  const retentionSeconds = Math.max(config.ttl.session, config.ttl.accessToken) + 3600;
  const accounts = createAccountRepository(db);
  const credentials = createCredentialRepository(db);
  const audit = createAuditLog(db);
  return {
    db,
    box,
    keys: createKeyManager({
      keys: createKeyRepository(db),
      box,
      retentionSeconds,
      activationDelaySeconds: config.keyRotation.activationDelaySeconds,
      rotateEveryDays: config.keyRotation.everyDays,
      ...(opts.now ? { now: opts.now } : {}),
    }),
    accounts,
    clients: createClientRepository(db, box),
    payloads: createOidcPayloadRepository(db),
    // Each process hashes on its share of the cores (WEB_CONCURRENCY processes share them).
    passwords: createPasswordHasher(config.argon2, Math.ceil(os.availableParallelism() / Math.max(1, config.webConcurrency))),
    credentials,
    totp: createTotpFactor({ credentials, box, issuerName: 'Kapija' }),
    recovery: createRecoveryFactor({ credentials, box }),
    webauthn: createWebAuthnFactor({ settings: config.webauthn, credentials, accounts, metadata: createWebAuthnMetadataRepository(db) }),
    audit,
    checkpoints: createAuditCheckpoints({ audit, repo: createAuditCheckpointRepository(db), box, ...(opts.now ? { now: opts.now } : {}) }),
  };
}

export async function createKapija(config: Config, opts: { db?: Db; logger?: Logger; migrate?: boolean; now?: () => number } = {}): Promise<Kapija> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const handles = openHandles(config, opts);
  const { db } = handles;
  if (opts.migrate !== false) await migrate(db);
  await handles.keys.ensure();
  let keySet = await handles.keys.load();

  const secureCookies = config.issuer.startsWith('https://');
  const { render } = createRenderer();
  const errors = createErrorResponder({ render, logger });
  const csrf = createCsrf(keySet.cookieKeys);

  const pairwiseSubject = createPairwiseSubject((purpose, data) => handles.box.mac(purpose, data));
  /** Kapija's own form pages under `prefix`: small parsed bodies, CSRF on every change, the router. */
  const formPages = (prefix: string, router: { routes(): unknown; allowedMethods(o: object): unknown }) =>
    underPath(
      prefix,
      compose<Context>([
        bodyParser(),
        csrfProtection(csrf, { secureCookies }),
        router.routes() as Koa.Middleware,
        router.allowedMethods({ throw: true, methodNotAllowed: () => new KapijaError('request.invalid', 405) }) as Koa.Middleware,
      ]) as Koa.Middleware,
    );
  const events = createEventBus(logger);
  recordLedger(events, handles.audit);
  const sessionDevices = createSessionDeviceRepository(db);
  const refusals = createConsentRefusalRepository(db);
  const recentlySeen = new Map<string, { ip: string; userAgent: string; at: number }>();
  const pageState = (ctx: Context) => ctx.state as { t: Translate; requestId: string };
  // oidc-provider takes its keys at construction: a new key set means a new engine (refreshKeys).
  const createEngine = (keys: KeySet) => withLogoutRetries(createProvider({
    config,
    logger,
    keys,
    adapter: createAdapterClass(handles.payloads, handles.clients),
    findAccount: createFindAccount(handles.accounts, accountReadAlong, async (accountId, clientId) => refusalsReadAlong(accountId, clientId) ?? refusals.list(accountId, clientId)),
    findGrantId: (accountId, clientId) => handles.payloads.latestGrantId(accountId, clientId),
    findRefusals: (accountId, clientId) => refusals.list(accountId, clientId),
    pairwiseSubject,
    // A release not yet in the ledger is written here, not by a listener, so that its failure
    // reaches the response (a listener's failure is only logged).
    onRelease: async (release) => {
      if (!release.recorded) await handles.audit.append(releaseEntry(release));
      await events.emit('data.released', { ...release, recorded: true });
    },
    releaseRecord: releaseEntry,
    onSessionSaved: (session, request) => {
      // oidc-provider saves the session on every request that uses it; "last seen" is kept to the
      // minute, so a session seen again from the same device within a minute costs no write.
      const at = Date.now();
      const seen = recentlySeen.get(session.uid);
      if (seen && seen.ip === request.ip && seen.userAgent === request.userAgent && at - seen.at < 60_000) return Promise.resolve();
      if (recentlySeen.size >= 10_000) recentlySeen.clear();
      recentlySeen.set(session.uid, { ...request, at });
      return sessionDevices.touch({ sessionUid: session.uid, accountId: session.accountId, ...request });
    },
    pages: {
      error: (ctx, out, err) => errors.renderEngineError(ctx, out, err),
      logout(ctx, form) {
        render(ctx, 'logout', { title: pageState(ctx).t('logout.title'), form });
      },
      logoutDone(ctx, clientName) {
        render(ctx, 'logout-done', { title: pageState(ctx).t('logout.done.title'), clientName });
      },
    },
  }));
  // RP-initiated logout: the engine delivers back-channel logout itself; what fails is retried later.
  const withLogoutRetries = (p: Provider) =>
    p.on('backchannel.error', (_ctx: unknown, err: unknown, client: { clientId: string }, accountId: string, sid: string) => {
      void logoutRetries.later({ clientId: client.clientId, accountId, sid: sid ?? '' }, 1, err);
    });
  const metrics = createMetrics({ events, store: createStoreMetrics(db) });
  let engine = createEngine(keySet);
  metrics.observeProvider(engine);
  let mountedEngine = mount(engine);
  /** A stable handle that always reaches the current engine; everything but the mount uses it. */
  const provider = delegateTo(() => engine);
  const logoutRetries = createLogoutRetries({ provider, store: createLogoutDeliveryRepository(db, opts.now), events, logger, ...(opts.now ? { now: opts.now } : {}) });
  // The engine answers its own errors, except a database failure while it saves the session after
  // the route (e.g. the sign-out form): a program gets the engine's JSON shape for it too.
  const toEngine = async (ctx: Context, next: Koa.Next) => {
    try {
      await mountedEngine(ctx, next);
    } catch (err) {
      if (!isUnavailableError(err) || prefersHtml(ctx)) throw err;
      errors.respond(ctx, err, 'engine');
    }
  };
  /**
   * The engine's machine-to-machine endpoints answer their own errors; what escapes the engine
   * (a database outage, a bug) is answered in JSON here, without Kapija's page middleware.
   */
  const toEngineApi = async (ctx: Context) => {
    try {
      await toEngine(ctx, () => Promise.resolve());
    } catch (err) {
      errors.respond(ctx, err, 'engine');
    }
  };
  const published = new Map<string, { type: string; body: string }>();
  const health = createHealth({ database: createDatabaseHealth(db), signingKeys: () => keySet.jwks.keys.length });

  // Behind TRUST_PROXY_HOPS proxies, the client's address is the one the outermost of them appended
  // to X-Forwarded-For; what the client wrote in front of it is its own choice and is ignored.
  const app = new Koa({ proxy: config.trustProxy, maxIpsCount: config.trustProxy ? config.trustProxyHops : 0 });
  app.keys = keySet.cookieKeys;
  app.silent = true;

  app.use(observeRequests(logger, metrics));
  app.use(pinOrigin(config.issuer));
  if (config.env === 'production') {
    // Behind the TLS-terminating proxy (TRUST_PROXY) every request is https; plain http is refused
    // clearly rather than failing later on a Secure cookie.
    app.use(async (ctx, next) => {
      if (ctx.secure || ['/healthz', '/readyz', '/metrics'].includes(ctx.path)) return next();
      if (ctx.method === 'GET' || ctx.method === 'HEAD') {
        ctx.status = 308;
        ctx.redirect(`${config.issuer}${pathAndQuery(ctx.originalUrl)}`);
        return;
      }
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'Kapija is only served over https' };
    });
  }
  app.use(securityHeaders({ production: config.env === 'production' }));
  // The engine's machine-to-machine endpoints go straight to it: none of Kapija's pages, assets,
  // open data or administration lives under these paths, and they answer in JSON on their own.
  // Discovery and JWKS change only with the engine (its keys): its answer is kept until the next
  // one, for the plain GETs services make (a browser's cross-origin request still reaches the engine).
  app.use(async (ctx, next) => {
    if (ctx.method !== 'GET' || !PUBLISHED_PATHS.has(ctx.path) || ctx.querystring || ctx.get('origin')) return next();
    const kept = published.get(ctx.path);
    if (kept) {
      // The engine's own headers for these documents; nothing before this middleware sets Vary.
      ctx.set('vary', 'Origin');
      ctx.set('access-control-allow-origin', '*');
      ctx.set('content-type', kept.type);
      ctx.body = kept.body;
      return;
    }
    const servedBy = engine;
    await next();
    if (ctx.status === 200 && servedBy === engine && ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body)) {
      const type = ctx.response.get('content-type');
      ctx.body = JSON.stringify(ctx.body);
      ctx.type = type;
      published.set(ctx.path, { type, body: ctx.body as string });
    }
  });
  // The language is negotiated only when a page is rendered (the engine renders one for a browser
  // that asks an API endpoint for HTML).
  app.use(i18n({ fallback: config.defaultLocale, secureCookies }));
  app.use((ctx, next) => (ENGINE_API_PATHS.has(ctx.path) ? toEngineApi(ctx) : next()));
  app.use(errors.middleware('page'));
  app.use(staticAssets());
  app.use(cookiesPage({ render, config }));
  app.use(contentPages({ render, contentDir: config.contentDir }));
  app.use(startPage({ render }));

  // With METRICS_PORT, /metrics is served only there (main.ts), not to the public.
  app.use(operationsEndpoints({ health, metrics: config.metricsPort ? undefined : metrics }));
  // Anonymous daily statistics for the public (open data, CC BY 4.0).
  const openData = createOpenData({
    events,
    store: createOpenDataRepository(db),
    issuer: config.issuer,
    minCount: config.openData.minCount,
    ...(opts.now ? { now: opts.now } : {}),
  });
  app.use(openData.middleware);
  app.use(auditKeysEndpoint(handles.checkpoints));

  // Kapija's own pages: parsed bodies and CSRF on every form.
  const knownDevices = createKnownDeviceRepository(db);
  const rateLimitCounters = createRateLimitRepository(db);
  const throttles = createSignInThrottles({ storage: rateLimitCounters, box: handles.box, isKnownDevice: (username, device) => knownDevices.isKnownFor(username, device) });
  const interactions = createInteractionRouter({
    provider,
    accounts: handles.accounts,
    credentials: handles.credentials,
    passwords: handles.passwords,
    totp: handles.totp,
    recovery: handles.recovery,
    webauthn: handles.webauthn,
    throttles,
    box: handles.box,
    render,
    defaultLocale: config.defaultLocale,
    requireSecondFactor: config.requireSecondFactor,
    events,
    refusals,
    factorReset: {
      useLink: (token, accountId) => selfService.service.useReenrolLink(token, accountId),
      ensureLink: (accountId) => selfService.service.ensureReenrolLink(accountId),
    },
  });
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
  });
  await portalSignIn.ensureClient();
  const sessionService = createSessionService({ provider, payloads: handles.payloads, retries: logoutRetries });
  // Registration, recovery, e-mail verification and "this wasn't me" (their own paths, CSRF on every form).
  const selfService = createSelfServiceModule({
    ...handles,
    config,
    logger,
    provider,
    sessions: sessionService,
    throttleStorage: rateLimitCounters,
    events,
    render,
    csrf,
    secureCookies,
  });
  app.use(selfService.middleware);
  const account = createAccountRouter({
    provider,
    signIn: portalSignIn,
    accounts: handles.accounts,
    credentials: handles.credentials,
    payloads: handles.payloads,
    refusals,
    devices: sessionDevices,
    sessions: sessionService,
    totp: handles.totp,
    recovery: handles.recovery,
    webauthn: handles.webauthn,
    box: handles.box,
    events,
    audit: handles.audit,
    checkpoints: handles.checkpoints,
    auditKeysUrl: `${config.issuer}${AUDIT_KEYS_PATH}`,
    render,
    passwords: handles.passwords,
    requestEmailChange: (accountId, email, locale) => selfService.service.requestEmailChange(accountId, email, locale),
    forgetLinks: (accountId) => selfService.service.forget(accountId),
    reauthSeconds: config.reauthSeconds,
    secureCookies,
  });
  app.use(formPages('/account', account));

  // Administration: the admin API (/admin/api, bearer tokens) and the console (/admin).
  const administration = await createAdministration({
    ...handles,
    config,
    provider,
    sessions: sessionService,
    render,
    csrf,
    secureCookies,
    sendReenrolLink: (accountId) => selfService.service.sendReenrolLink(accountId),
  });
  app.use(underPath('/admin', administration.middleware));

  // Everything else is the OpenID Connect engine.
  app.use(authorizationByPost);
  app.use(toEngine);
  const operations = new Koa();
  operations.use(operationsEndpoints({ health, metrics }));

  const kapija: Kapija = {
    app,
    provider,
    db,
    config,
    logger,
    accounts: handles.accounts,
    clients: handles.clients,
    payloads: handles.payloads,
    passwords: handles.passwords,
    credentials: handles.credentials,
    totp: handles.totp,
    recovery: handles.recovery,
    webauthn: handles.webauthn,
    keys: handles.keys,
    sessions: sessionService,
    selfService: selfService.service,
    audit: handles.audit,
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
      const rebuilt = createEngine(next);
      metrics.observeProvider(rebuilt);
      // One synchronous step: a request is served wholly by the old engine or by the new one.
      keySet = next;
      engine = rebuilt;
      published.clear();
      mountedEngine = mount(rebuilt);
      app.keys = next.cookieKeys;
      return true;
    },
    async purge() {
      const [payloads, keys, links, rateLimits] = await Promise.all([
        handles.payloads.purgeExpired(),
        handles.keys.purge(),
        selfService.service.purgeExpired(),
        rateLimitCounters.purgeExpired(),
      ]);
      return { payloads, keys, links, rateLimits };
    },
    checkpointAudit: () => handles.checkpoints.checkpointChanged(),
    deliverLogouts: () => logoutRetries.deliverDue(),
    deliverMail: () => selfService.mailer.deliverDue(),
    async close() {
      selfService.mailer.close();
      if (!opts.db) await db.destroy();
    },
  };
  return kapija;
}

/** The engine's published documents, the same for every request until the keys change. */
const PUBLISHED_PATHS = new Set(['/.well-known/openid-configuration', '/jwks']);

/** oidc-provider's default routes that serve clients and resource servers, not browsers. */
const ENGINE_API_PATHS = new Set(['/token', '/token/introspection', '/token/revocation', '/me', '/jwks', '/.well-known/openid-configuration', '/request']);

const parseAuthorizationForm = koaBody({ urlencoded: true, json: false, multipart: false, text: false, formLimit: '64kb', patchNode: false });

/**
 * OIDC Core 3.1.2.1: the authorization endpoint takes a form-encoded POST like a GET. The engine
 * serves POST only with SameSite=None cookies (a cross-site POST must carry its session), so the
 * form's parameters are handed to it as the GET request's query instead: the same checks, and a
 * request from another site simply finds no session and asks the citizen to sign in.
 */
async function authorizationByPost(ctx: Context, next: Koa.Next): Promise<void> {
  if (ctx.method !== 'POST' || ctx.path !== '/auth') return next();
  if (!ctx.is('application/x-www-form-urlencoded')) throw new KapijaError('request.invalid', 415);
  try {
    await parseAuthorizationForm(ctx, () => Promise.resolve());
  } catch (err) {
    const status = (err as { status?: number }).status;
    throw new KapijaError(status === 413 ? 'request.too_large' : 'request.invalid', status === 413 ? 413 : 400, { cause: err });
  }
  const form = (ctx.request as { body?: Record<string, string | string[]> }).body ?? {};
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) for (const one of Array.isArray(value) ? value : [value]) query.append(key, one);
  ctx.method = 'GET';
  ctx.querystring = query.toString();
  return next();
}

/**
 * A Provider-typed handle whose every property is read from the current engine (methods bound to
 * it; model classes such as `Grant` and `Client` returned as they are).
 */
function delegateTo(current: () => Provider): Provider {
  const isClass = (v: unknown) => typeof v === 'function' && /^class\b/.test(Function.prototype.toString.call(v));
  return new Proxy({} as Provider, {
    get(_target, key) {
      const target = current();
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' && !isClass(value) ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    set: (_target, key, value) => Reflect.set(current(), key, value),
    has: (_target, key) => Reflect.has(current(), key),
  });
}

/** Runs `middleware` for requests under `prefix` only. */
function underPath(prefix: string, middleware: Koa.Middleware): Koa.Middleware {
  return (ctx, next) => (ctx.path === prefix || ctx.path.startsWith(`${prefix}/`) ? middleware(ctx, next) : next());
}
