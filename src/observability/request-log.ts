/**
 * One JSON log line per request, carrying the request id that `requestId` assigned (and echoed as
 * `x-request-id`), so a citizen's "request id" on an error page finds its line. Downstream code logs
 * through `ctx.state.log`, a child logger bound to the same id. Only bounded, non-personal fields
 * are written: the route name (never the URL, whose query may hold a login_hint or a code), method,
 * status and duration; no headers, no bodies, no address.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { routeOf } from './metrics.js';

export function requestLog(logger: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const started = process.hrtime.bigint();
    const log = logger.child({ requestId: ctx.state.requestId as string | undefined });
    ctx.state.log = log;
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { route: routeOf(ctx), method: ctx.method, status: ctx.status, ms: Math.round(ms * 10) / 10 };
      if (ctx.status >= 500) log.warn(line, 'request');
      else if (ctx.path === '/healthz' || ctx.path === '/readyz' || ctx.path === '/metrics') log.trace(line, 'request');
      else log.info(line, 'request');
    }
  };
}
