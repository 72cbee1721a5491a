/**
 * In production, behind the TLS-terminating proxy (TRUST_PROXY), every request is https; plain
 * http is refused clearly rather than failing later on a Secure cookie. A GET or HEAD is sent to
 * the same path on the issuer; the operations endpoints stay reachable for the platform's probes.
 */
import type { Context, Next } from 'koa';
import { pathAndQuery } from './origin.js';

const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

export function httpsOnly(issuer: string) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.secure || PROBES.has(ctx.path)) return next();
    if (ctx.method === 'GET' || ctx.method === 'HEAD') {
      ctx.status = 308;
      ctx.redirect(`${issuer}${pathAndQuery(ctx.originalUrl)}`);
      return;
    }
    ctx.status = 400;
    ctx.body = { error: 'invalid_request', error_description: 'Kapija is only served over https' };
  };
}
