/**
 * Turns every error on Kapija's own routes into a clear page or JSON body: KapijaError keeps its
 * status and translated message; a database outage is 503; anything else is a generic 500 with a
 * request id, the details going only to the (redacted) log.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { KapijaError, isUnavailableError, type ErrorCode } from '../errors.js';
import type { Renderer } from './render.js';
import type { Translate } from '../i18n/index.js';

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

export function errorHandler(opts: { render: Renderer; logger: Logger }) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new KapijaError('request.not_found', 404);
    } catch (raw) {
      const err = toKapijaError(raw);
      if (err.status >= 500) {
        opts.logger.error({ err: raw, requestId: ctx.state.requestId, route: ctx.path }, 'request failed');
      }
      const t = ctx.state.t as Translate;
      const message = t(`error.${err.code}`, { seconds: String(err.details?.retryAfter ?? '') });
      ctx.status = err.status;
      if (err.status === 503) ctx.set('retry-after', '5');
      if (typeof err.details?.retryAfter === 'number') ctx.set('retry-after', String(err.details.retryAfter));
      if (ctx.accepts('html', 'json') === 'json') {
        ctx.body = { error: err.code, error_description: message, request_id: ctx.state.requestId };
      } else {
        // A way forward the error names (a path on Kapija itself), e.g. the account's security page.
        const help = err.details?.help as { href?: unknown; text?: unknown } | undefined;
        const link = typeof help?.href === 'string' && /^\/(?!\/)/.test(help.href) && typeof help.text === 'string' ? { href: help.href, text: t(help.text as Parameters<Translate>[0]) } : undefined;
        opts.render(ctx, 'error', { title: t('error.title'), message, link, showBack: err.status !== 404 && !link });
        ctx.status = err.status;
      }
    }
  };
}
