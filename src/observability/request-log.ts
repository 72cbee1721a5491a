/**
 * One JSON log line per request, carrying the request id that `requestId` assigned (and echoed as
 * `x-request-id`), so a citizen's "request id" on an error page finds its line. Only bounded, non-personal fields
 * are written: the route name (never the URL, whose query may hold a login_hint or a code), method,
 * status and duration; no headers, no bodies, no address.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { routeOf } from './metrics.js';

export function requestLog(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { requestId: ctx.state.requestId as string | undefined, route: routeOf(ctx), method: ctx.method, status: ctx.status, ms: Math.round(ms * 10) / 10 };
      if (ctx.status >= 500) logger.warn(line, 'request');
      else if (ctx.path === '/healthz' || ctx.path === '/readyz' || ctx.path === '/metrics') logger.trace(line, 'request');
      else logger.info(line, 'request');
    }
  };
}
