/**
 * The certificate host's leg of an ID-card sign-in (CERT_SIGNIN_URL, served by nginx with
 * `ssl_verify_client optional_no_ca` and proxied to Kapija): `GET /eid/sign-in?ticket=…`.
 *
 * Reached only through the proxy: a request without the proxy's secret (the main host, or Kapija's
 * port directly) is refused before anything is read or used, so the ticket of a request that went
 * the wrong way is not spent. Then the ticket is used once (it names the interaction), the
 * certificate the proxy forwarded is validated (http/client-certificate.ts), and the outcome — the
 * identity, or the refusal — is kept under a single-use return token; the browser goes back to the
 * main host's `/interaction/<uid>/certificate/identify?return=…`, where only the browser holding that
 * interaction's cookies can use it (factors/certificate/handoff.ts).
 */
import type Koa from 'koa';
import compose from 'koa-compose';
import { KapijaError } from '../errors.js';
import { constantTimeEqual } from '../security/crypto.js';
import { PROXY_SECRET_HEADER, type CertificateValidator } from '../factors/certificate/index.js';
import { CERTIFICATE_HOST_PATH, outcomeOf, type CertificateHandoff } from '../factors/certificate/handoff.js';
import { clientCertificateMiddleware, type ClientCertificateState } from './client-certificate.js';

export function certificateHost(opts: { issuer: string; proxySecret: string; validator: CertificateValidator; handoff: CertificateHandoff }): Koa.Middleware {
  const readCertificate = clientCertificateMiddleware(opts);
  const leg = compose([
    async (ctx: Koa.Context, next: Koa.Next) => {
      if (ctx.method !== 'GET') throw new KapijaError('request.invalid', 405);
      const secret = ctx.req.headers[PROXY_SECRET_HEADER];
      if (typeof secret !== 'string' || !constantTimeEqual(secret, opts.proxySecret)) throw new KapijaError('certificate.no_proxy', 403);
      ctx.set('cache-control', 'no-store');
      await next();
    },
    readCertificate,
    async (ctx: Koa.Context) => {
      const ticket = typeof ctx.query.ticket === 'string' ? ctx.query.ticket : '';
      const uid = await opts.handoff.useTicket(ticket);
      if (!uid) throw new KapijaError('certificate.ticket_invalid', 400);
      const state = ctx.state.clientCertificate as ClientCertificateState;
      const token = await opts.handoff.issueReturn(uid, outcomeOf(state.presented ? state.check : undefined));
      ctx.status = 303;
      // Back to the portal for a card being linked to a signed-in account (factors/certificate/link.ts), else to the sign-in.
      const to = uid.startsWith('portal:') ? '/account/identity/card' : `/interaction/${encodeURIComponent(uid)}/certificate/identify`;
      ctx.redirect(`${opts.issuer}${to}?return=${encodeURIComponent(token)}`);
    },
  ]);
  return (ctx, next) => (ctx.path === CERTIFICATE_HOST_PATH ? leg(ctx, next) : next());
}
