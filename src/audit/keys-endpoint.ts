/**
 * GET /.well-known/kapija-audit-keys: the public keys of the audit log (a JWKS), for checking
 * anchors and downloaded ledgers without trusting Kapija's database.
 */
import type Koa from 'koa';
import { AUDIT_KEYS_PATH, type AuditCheckpoints } from './checkpoints.js';

export function auditKeysEndpoint(checkpoints: AuditCheckpoints): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.path !== AUDIT_KEYS_PATH || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    ctx.set('cache-control', 'public, max-age=300');
    ctx.set('access-control-allow-origin', '*');
    ctx.type = 'application/jwk-set+json';
    ctx.body = await checkpoints.jwks();
  };
}
