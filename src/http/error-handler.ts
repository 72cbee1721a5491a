/**
 * The one place an error becomes a response, on Kapija's pages, the admin API and the engine's
 * routes. KapijaError keeps its status and translated message; a database outage is 503; anything
 * else is a generic 500 with a request id, the details going only to the (redacted) log.
 *
 * HTML or JSON follows oidc-provider's rule (lib/shared/error_handler.js,
 * `ctx.accepts('json', 'html') === 'html'`): JSON unless the client prefers HTML, so a program
 * sending `*\/*` or no Accept header gets JSON and a browser (which asks for text/html) the page.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { KapijaError, isUnavailableError, type ErrorCode } from '../errors.js';
import { negotiateLocale, translator, type Translate } from '../i18n/index.js';
import type { Renderer } from './render.js';

/** Whether the client prefers an HTML page to JSON; `*\/*` and no Accept header mean JSON. */
export function prefersHtml(ctx: Context): boolean {
  return ctx.accepts('json', 'html') === 'html';
}

export function toKapijaError(err: unknown): KapijaError {
  if (err instanceof KapijaError) return err;
  if (isUnavailableError(err)) return new KapijaError('service.unavailable', 503, { cause: err });
  const status = (err as { status?: unknown; expose?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500 && (err as { expose?: unknown }).expose) {
    const code: ErrorCode = status === 404 ? 'request.not_found' : status === 413 ? 'request.too_large' : 'request.invalid';
    return new KapijaError(code, status, { cause: err });
  }
  return new KapijaError('server.internal', 500, { cause: err });
}

/**
 * How a route family answers:
 * - `page`: Kapija's own pages, HTML or JSON by the Accept rule;
 * - `api`: the admin API, JSON always, in English unless Accept-Language asks for Serbian, with
 *   the field at fault for a 400; a 5xx is left to the page responder around it;
 * - `engine`: the engine's routes, JSON in the engine's own shape (RFC 6749 §5.2) for what escapes
 *   the engine; a client that prefers HTML gets Kapija's page.
 */
export type ErrorAudience = 'page' | 'api' | 'engine';

export interface EngineErrorOut {
  error: string;
  error_description?: string | undefined;
}

export interface ErrorResponder {
  /** Answers `raw` on `ctx`; throws it on only for `api` and a 5xx (the page responder answers it). */
  respond(ctx: Context, raw: unknown, audience?: ErrorAudience): void;
  /** Middleware answering every error below it, and a route that answered nothing, for `audience`. */
  middleware(audience?: ErrorAudience): (ctx: Context, next: Next) => Promise<void>;
  /** The engine's own error page (oidc-provider's `renderError`): the page, or its JSON by the Accept rule. */
  renderEngineError(ctx: Context, out: EngineErrorOut, err: unknown): void;
}

const UNAVAILABLE_OUT = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable' };

export function createErrorResponder(opts: { render: Renderer; logger: Logger }): ErrorResponder {
  const { render, logger } = opts;

  const page = (ctx: Context, err: KapijaError) => {
    const t = ctx.state.t as Translate;
    const message = t(`error.${err.code}`, { seconds: String(err.details?.retryAfter ?? '') });
    if (!prefersHtml(ctx)) {
      ctx.body = { error: err.code, error_description: message, request_id: ctx.state.requestId };
      return;
    }
    // A way forward the error names (a path on Kapija itself), e.g. the account's security page.
    const help = err.details?.help as { href?: unknown; text?: unknown } | undefined;
    const link = typeof help?.href === 'string' && /^\/(?!\/)/.test(help.href) && typeof help.text === 'string' ? { href: help.href, text: t(help.text as Parameters<Translate>[0]) } : undefined;
    render(ctx, 'error', { title: t('error.title'), message, link, showBack: err.status !== 404 && !link });
    ctx.status = err.status;
  };

  const engine = (ctx: Context, err: KapijaError) => {
    ctx.body = err.status === 503
      ? UNAVAILABLE_OUT
      : err.status >= 500
        ? { error: 'server_error', error_description: 'an unexpected error occurred', request_id: ctx.state.requestId }
        : { error: 'invalid_request', error_description: (ctx.state.t as Translate | undefined)?.(`error.${err.code}`) ?? err.code, request_id: ctx.state.requestId };
  };

  const respond = (ctx: Context, raw: unknown, audience: ErrorAudience = 'page') => {
    if (audience === 'api') return respondApiError(ctx, raw);
    const err = toKapijaError(raw);
    if (err.status >= 500 && !(audience === 'engine' && err.status === 503)) {
      logger.error({ err: raw, requestId: ctx.state.requestId, route: ctx.path }, 'request failed');
    } else if (err.status === 503 && audience === 'engine') {
      logger.warn({ requestId: ctx.state.requestId, route: ctx.path, err: { message: (raw as Error).message } }, 'database unavailable');
    }
    ctx.status = err.status;
    if (err.status === 503) ctx.set('retry-after', '5');
    if (typeof err.details?.retryAfter === 'number') ctx.set('retry-after', String(err.details.retryAfter));
    if (audience === 'engine' && !prefersHtml(ctx)) engine(ctx, err);
    else page(ctx, err);
    return undefined;
  };

  return {
    respond,
    middleware: (audience = 'page') => answerErrors((ctx, raw) => respond(ctx, raw, audience)),
    renderEngineError(ctx, out, err) {
      // oidc-provider's shared error handler renders before it emits `server_error`, so the outage
      // flag its listener sets would come too late for the page: decide here as well.
      const unavailable = isUnavailableError(err) || Boolean(ctx.state.kapijaUnavailable);
      // The authorization endpoint renders even for a client that asked for JSON; answer in kind.
      if (!prefersHtml(ctx)) {
        ctx.type = 'json';
        ctx.body = out;
        return;
      }
      const t = ctx.state.t as Translate;
      const message = unavailable
        ? t('error.service.unavailable')
        : out.error === 'server_error'
          ? t('error.server.internal')
          : t('error.oidc', { error: out.error_description ?? out.error });
      render(ctx, 'error', { title: t('error.title'), message, showBack: true });
    },
  };
}

/** Runs the routes below and hands every error, and a route that answered nothing (404), to `answer`. */
function answerErrors(answer: (ctx: Context, raw: unknown) => void) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new KapijaError('request.not_found', 404);
    } catch (raw) {
      answer(ctx, raw);
    }
  };
}

/**
 * The admin API's answer (audience `api`): JSON whatever the Accept header, in English unless
 * Accept-Language asks for Serbian (the API is read by scripts and their operators; the console's
 * language cookie does not apply), with the field at fault for a 400. A 5xx is thrown on to the
 * page responder around the API, which logs it and answers JSON to a program.
 */
export function respondApiError(ctx: Context, raw: unknown): void {
  const err = toKapijaError(raw);
  if (err.status >= 500) throw raw;
  const locale = negotiateLocale({ acceptLanguage: ctx.get('accept-language'), fallback: 'en' });
  const t: Translate = translator(locale);
  ctx.status = err.status;
  ctx.set('content-language', locale);
  ctx.body = {
    error: err.code,
    error_description: t(`error.${err.code}` as Parameters<Translate>[0]),
    ...(err.details && err.status === 400 ? { details: err.details } : {}),
    request_id: ctx.state.requestId,
  };
}

/** The admin API's error middleware (see respondApiError). */
export const apiErrors = answerErrors(respondApiError);
