/**
 * Administration: the admin API (/admin/api, bearer tokens) and the console (/admin, server-rendered,
 * signed in through Kapija itself as the first-party client `kapija-admin`).
 */
import compose from 'koa-compose';
import type Koa from 'koa';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { AccountDeletion } from '../account/deletion.js';
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
import type { ClientRepository } from '../store/clients.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { Repositories } from '../store/index.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import { API_PREFIX, createAdminApi } from './api.js';
import { createAdminConsole } from './console.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { IdentityService } from '../identity/service.js';
import type { RegistrarRoles } from '../identity/registrar.js';
import { createRegistrarDesk } from './registrar-desk.js';
import type { DeskPidOffers } from './registrar-wallet.js';
import type { MandateService } from '../mandates/service.js';
import { ADMIN_CLIENT_ID, createAdminService } from './service.js';

export interface AdministrationDeps {
  provider: Provider;
  config: Config;
  repos: Repositories;
  box: SecretBox;
  accounts: AccountRepository;
  clients: ClientRepository;
  credentials: CredentialRepository;
  payloads: OidcPayloadRepository;
  sessions: SessionService;
  render: Renderer;
  csrf: Csrf;
  secureCookies: boolean;
  /** Mails a citizen whose factors were reset the link to enrol a new one. */
  sendReenrolLink: (accountId: string) => Promise<void>;
  /** Deletes a citizen's account (account/deletion.ts, shared with the portal). */
  deletion: AccountDeletion;
  /** Forgets a citizen's remembered browsers (on an administrator's lock). */
  forgetBrowsers?: (accountId: string) => Promise<void>;
  factors: FactorRegistry;
  /** Identity proofing and the registrar role, for the registrars' routes and desk. */
  identity?: IdentityService;
  registrars?: RegistrarRoles;
  /** Mandates: registrars record legal representation at the desk (registrar-mandates.ts). */
  mandates?: MandateService;
  /** Kapija's PID offered at the desk (registrar-wallet.ts). */
  pidOffers?: DeskPidOffers;
}

/** Console sessions end after 15 minutes without use. */
const CONSOLE_IDLE_SECONDS = 15 * 60;

export async function createAdministration(d: AdministrationDeps): Promise<{ middleware: Koa.Middleware }> {
  const { audit, roles } = d.repos;
  const service = createAdminService({
    provider: d.provider,
    atomically: d.repos.atomically,
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
    deletion: d.deletion,
    ...(d.forgetBrowsers ? { forgetBrowsers: d.forgetBrowsers } : {}),
  });
  const registrar = d.identity && d.registrars ? { provider: d.provider, accounts: d.accounts, identity: d.identity, registrars: d.registrars, ...(d.mandates ? { mandates: d.mandates } : {}) } : undefined;
  const api = createAdminApi({ provider: d.provider, accounts: d.accounts, roles, service, issuer: d.config.issuer, minAcr: d.config.adminMinAcr, registrar });
  const identity = d.identity;
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
    ...(identity ? { identityLevel: (accountId: string) => identity.levelOf(accountId) } : {}),
  });
  await signIn.ensureClient();
  const consoleRouter = createAdminConsole({ service, signIn, roles, accounts: d.accounts, factors: d.factors, render: d.render, minAcr: ACR[d.config.adminMinAcr], lowered: d.config.env === 'development' && d.config.adminMinAcr !== 'high' });

  const apiMiddleware = compose<Context>([api.routes() as Koa.Middleware, api.allowedMethods({ throw: true, methodNotAllowed: () => new KapijaError('request.invalid', 405) }) as Koa.Middleware]);
  // The registration desk (/admin/desk) has its own check: the registrar role, signed in at high.
  const desk = registrar ? createRegistrarDesk({ signIn, accounts: d.accounts, identity: registrar.identity, registrars: registrar.registrars, render: d.render, ...(d.mandates ? { mandates: d.mandates } : {}), ...(d.pidOffers ? { pidOffers: d.pidOffers } : {}) }) : undefined;
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
