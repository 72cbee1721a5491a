/**
 * What every request passes through first: a request id (a fresh UUID; an incoming header is never
 * trusted), echoed as `x-request-id` so a citizen's "request id" on an error page finds its log line;
 * one JSON log line; and the latency histogram. One middleware with one timer does all three.
 *
 * Only bounded, non-personal fields are logged: the route name (never the URL, whose query may hold
 * a login_hint or a code), method, status and duration; no headers, no bodies, no address. Since the
 * line is built here from those fields alone, it is written by a child logger without the redaction
 * pass, which would otherwise cost more than the rest of the line (about 12 µs of 15 µs per line).
 */
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { routeOf, type Metrics } from './metrics.js';

const OPERATIONS = new Set(['/healthz', '/readyz', '/metrics']);

export function observeRequests(parent: Logger, metrics: Pick<Metrics, 'observeRequest'>) {
  const logger = parent.child({}, { redact: { paths: [] } });
  return async (ctx: Context, next: Next): Promise<void> => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('x-request-id', requestId);
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const route = routeOf(ctx);
      metrics.observeRequest(route, ctx.method, ctx.status, ms / 1000);
      const line = { requestId, route, method: ctx.method, status: ctx.status, ms: Math.round(ms * 10) / 10 };
      if (ctx.status >= 500) logger.warn(line, 'request');
      else if (OPERATIONS.has(ctx.path)) logger.trace(line, 'request');
      else logger.info(line, 'request');
    }
  };
}
