/**
 * Administration: the admin API (/admin/api, bearer tokens) and the console (/admin, server-rendered,
 * signed in through Kapija itself as the first-party client `kapija-admin`).
 */
import compose from 'koa-compose';
import type Koa from 'koa';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../config.js';
import { KapijaError } from '../errors.js';
import { createOwnSignIn } from '../http/own-sign-in.js';
import { bodyParser, csrfProtection } from '../http/middleware.js';
import type { Renderer } from '../http/render.js';
import { ACR } from '../oidc/acr.js';
import type { SessionService } from '../oidc/sessions.js';
import type { Csrf } from '../security/csrf.js';
import type { SecretBox } from '../security/crypto.js';
import type { AccountRepository } from '../store/accounts.js';
import { createAuditLog } from '../store/audit.js';
import type { ClientRepository } from '../store/clients.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { Db } from '../store/db.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import { createRoleRepository } from '../store/roles.js';
import { API_PREFIX, createAdminApi } from './api.js';
import { createAdminConsole } from './console.js';
import { ADMIN_CLIENT_ID, createAdminService } from './service.js';
import type { IdentityService } from '../identity/service.js';
import { createRegistrarRoles } from '../identity/registrar.js';
import { createRegistrarDesk } from './registrar-desk.js';

export interface AdministrationDeps {
  provider: Provider;
  config: Config;
  db: Db;
  box: SecretBox;
  accounts: AccountRepository;
  clients: ClientRepository;
  credentials: CredentialRepository;
  factors: FactorRegistry;
  payloads: OidcPayloadRepository;
  sessions: SessionService;
  render: Renderer;
  csrf: Csrf;
  secureCookies: boolean;
  /** Mails a citizen whose factors were reset the link to enrol a new one. */
  sendReenrolLink: (accountId: string) => Promise<void>;
  /** Identity proofing, for the registrars' routes (registrar-api.ts). */
  identity?: IdentityService;
}

/** Console sessions end after 15 minutes without use. */
const CONSOLE_IDLE_SECONDS = 15 * 60;

export async function createAdministration(d: AdministrationDeps): Promise<{ middleware: Koa.Middleware }> {
  const audit = createAuditLog(d.db);
  const roles = createRoleRepository(d.db);
  const service = createAdminService({
    provider: d.provider,
    db: d.db,
    accounts: d.accounts,
    clients: d.clients,
    credentials: d.credentials,
    factors: d.factors,
    payloads: d.payloads,
    sessions: d.sessions,
    audit,
    roles,
    production: d.config.env === 'production',
    sendReenrolLink: d.sendReenrolLink,
  });
  const registrar = d.identity ? { provider: d.provider, accounts: d.accounts, identity: d.identity, registrars: createRegistrarRoles(d.db, audit) } : undefined;
  const api = createAdminApi({ provider: d.provider, accounts: d.accounts, roles, service, issuer: d.config.issuer, minAcr: d.config.adminMinAcr, registrar });
  const signIn = createOwnSignIn({
    provider: d.provider,
    clients: d.clients,
    payloads: d.payloads,
    box: d.box,
    issuer: d.config.issuer,
    clientId: ADMIN_CLIENT_ID,
    clientName: 'Kapija',
    base: '/admin',
    cookieName: 'kapija.admin',
    idleSeconds: CONSOLE_IDLE_SECONDS,
    secureCookies: d.secureCookies,
  });
  await signIn.ensureClient();
  const consoleRouter = createAdminConsole({ service, signIn, roles, accounts: d.accounts, render: d.render, minAcr: ACR[d.config.adminMinAcr], lowered: d.config.env === 'development' && d.config.adminMinAcr !== 'high' });

  const apiMiddleware = compose<Context>([api.routes() as Koa.Middleware, api.allowedMethods({ throw: true, methodNotAllowed: () => new KapijaError('request.invalid', 405) }) as Koa.Middleware]);
  // The registration desk (/admin/desk) has its own check: the registrar role, signed in at high.
  const desk = registrar ? createRegistrarDesk({ signIn, accounts: d.accounts, identity: registrar.identity, registrars: registrar.registrars, render: d.render }) : undefined;
  const consoleMiddleware = compose<Context>([
    bodyParser(),
    csrfProtection(d.csrf, { secureCookies: d.secureCookies }),
    ...(desk ? [desk.routes() as Koa.Middleware] : []),
    consoleRouter.routes() as Koa.Middleware,
    consoleRouter.allowedMethods({ throw: true, methodNotAllowed: () => new KapijaError('request.invalid', 405) }) as Koa.Middleware,
  ]);
  return {
    middleware: (ctx, next) => (ctx.path === API_PREFIX || ctx.path.startsWith(`${API_PREFIX}/`) ? apiMiddleware(ctx, next) : consoleMiddleware(ctx, next)),
  };
}
