/**
 * Registration, recovery and security notices, assembled for the composition root: the service
 * (also used by the account portal: `requestEmailChange`), its notice listeners on the event bus
 * (notices/), and the middleware serving `/register` and `/verify-email` (registration/) and
 * `/recover`, `/not-me` and `/enrol-factor` (recovery/) with body parsing and CSRF.
 */
import type Koa from 'koa';
import type { Context } from 'koa';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { KapijaError } from '../errors.js';
import type { Repositories } from '../store/index.js';
import type { AccountRepository } from '../store/accounts.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import type { TotpFactor } from '../factors/totp/index.js';
import type { RecoveryFactor } from '../factors/recovery/index.js';
import type { SessionService } from '../oidc/sessions.js';
import type { SecretBox } from '../security/crypto.js';
import type { Csrf } from '../security/csrf.js';
import { createThrottle, type ThrottleStorage } from '../security/rate-limit.js';
import type { EventBus } from '../events.js';
import type { Renderer } from '../http/render.js';
import { bodyParser, csrfProtection } from '../http/middleware.js';
import { createMailer } from '../mail/mailer.js';
import { createQueuedMailer, type QueuedMailer } from '../mail/queue.js';
import { createMailTemplates } from '../mail/templates.js';
import { createRegistrationAndRecovery, type RegistrationAndRecovery } from './service.js';
import { createRegistrationRouter } from './router.js';
import { createPageKit } from './pages.js';
import { createRecoveryRouter } from '../recovery/router.js';

export type { RegistrationAndRecovery };

const PATHS = ['/register', '/verify-email', '/recover', '/not-me', '/enrol-factor'];

export function createRegistrationAndRecoveryModule(deps: {
  config: Config;
  repos: Repositories;
  logger: Logger;
  provider: Provider;
  accounts: AccountRepository;
  credentials: CredentialRepository;
  payloads: OidcPayloadRepository;
  passwords: PasswordHasher;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  sessions: SessionService;
  box: SecretBox;
  /** Where the mail and link throttles keep their counters. */
  throttleStorage: ThrottleStorage;
  events: EventBus;
  render: Renderer;
  csrf: Csrf;
  secureCookies: boolean;
}): { service: RegistrationAndRecovery; mailer: QueuedMailer; middleware: Koa.Middleware } {
  const mailer = createQueuedMailer({ mailer: createMailer({ config: deps.config, logger: deps.logger }), store: deps.repos.mailQueue, box: deps.box, logger: deps.logger });
  const service = createRegistrationAndRecovery({
    config: deps.config,
    accounts: deps.accounts,
    tokens: deps.repos.accountTokens,
    credentials: deps.credentials,
    devices: deps.repos.knownDevices,
    payloads: deps.payloads,
    passwords: deps.passwords,
    sessions: deps.sessions,
    box: deps.box,
    mailer,
    templates: createMailTemplates(),
    events: deps.events,
    logger: deps.logger,
  });
  service.listen();
  const pageDeps = {
    service,
    provider: deps.provider,
    render: deps.render,
    credentials: deps.credentials,
    totp: deps.totp,
    recovery: deps.recovery,
    throttles: {
      mail: createThrottle(deps.throttleStorage, { scope: 'self-service-mail', box: deps.box }),
      link: createThrottle(deps.throttleStorage, { scope: 'self-service-link', box: deps.box }),
    },
  };
  const kit = createPageKit(pageDeps);
  const routers = [createRegistrationRouter(pageDeps, kit), createRecoveryRouter(pageDeps, kit)];
  const chain = compose<Context>([
    bodyParser(),
    csrfProtection(deps.csrf, { secureCookies: deps.secureCookies }),
    ...routers.flatMap((router) => [
      router.routes() as Koa.Middleware,
      router.allowedMethods({ throw: true, methodNotAllowed: () => new KapijaError('request.invalid', 405) }) as Koa.Middleware,
    ]),
  ]) as Koa.Middleware;
  const middleware: Koa.Middleware = (ctx, next) =>
    PATHS.some((p) => ctx.path === p || ctx.path.startsWith(`${p}/`)) ? chain(ctx, next) : next();
  return { service, mailer, middleware };
}
