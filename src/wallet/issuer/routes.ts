/**
 * The PID issuer's public documents: its SD-JWT VC issuer metadata with the credential-signing
 * keys (`/.well-known/jwt-vc-issuer`) and the Token Status Lists (`/wallet/status/<listId>`).
 */
import type { Context, Next } from 'koa';
import type { PidIssuer } from './service.js';
import { STATUS_LIST_TTL_SECONDS, STATUS_PATH } from './status-list.js';

export const JWT_VC_ISSUER_PATH = '/.well-known/jwt-vc-issuer';
const LIST_ID = /^[0-9a-f-]{36}$/;

export function pidIssuerDocuments(pid: PidIssuer) {
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === JWT_VC_ISSUER_PATH) {
      ctx.set('access-control-allow-origin', '*');
      ctx.set('cache-control', `public, max-age=${STATUS_LIST_TTL_SECONDS}`);
      ctx.body = await pid.issuerMetadata();
      return;
    }
    if (!ctx.path.startsWith(`${STATUS_PATH}/`)) return next();
    const listId = ctx.path.slice(STATUS_PATH.length + 1);
    const token = LIST_ID.test(listId) ? await pid.statusList(listId) : undefined;
    if (!token) {
      ctx.status = 404;
      ctx.body = { error: 'not_found', error_description: 'no such status list' };
      return;
    }
    ctx.set('access-control-allow-origin', '*');
    ctx.set('cache-control', `public, max-age=${STATUS_LIST_TTL_SECONDS}`);
    ctx.type = 'application/statuslist+jwt';
    ctx.body = token;
  };
}
