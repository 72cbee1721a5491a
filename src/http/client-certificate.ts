/**
 * The Koa side of certificate sign-in: on the routes it is mounted on, reads the client certificate
 * the TLS proxy forwarded (only with the proxy's secret: factors/certificate/proxy.ts), removes the
 * proxy's headers so that nothing after it reads them unchecked, validates the certificate and
 * leaves the outcome in `ctx.state.clientCertificate`.
 */
import type Koa from 'koa';
import {
  PROXY_SECRET_MIN,
  readForwardedCertificate,
  stripForwardedHeaders,
  type CertificateCheck,
  type CertificateValidator,
} from '../factors/certificate/index.js';

/** What the middleware leaves in `ctx.state.clientCertificate`. */
export type ClientCertificateState =
  /** No certificate came through the proxy (none presented, or headers without the proxy's secret). */
  | { readonly presented: false; readonly forged: boolean }
  | { readonly presented: true; readonly check: CertificateCheck };

/** The middleware; mount it on the certificate sign-in route(s) only. */
export function clientCertificateMiddleware(opts: { proxySecret: string; validator: CertificateValidator }): Koa.Middleware {
  if (opts.proxySecret.length < PROXY_SECRET_MIN) throw new Error(`the proxy secret must be at least ${PROXY_SECRET_MIN} characters`);
  return async (ctx, next) => {
    const forwarded = readForwardedCertificate(ctx.req.headers, opts.proxySecret);
    stripForwardedHeaders(ctx.req.headers);
    const state: ClientCertificateState =
      forwarded.kind === 'certificate'
        ? { presented: true, check: await opts.validator.validate(forwarded.pem) }
        : { presented: false, forged: forwarded.kind === 'unauthenticated' };
    ctx.state.clientCertificate = state;
    await next();
  };
}
