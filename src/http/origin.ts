/**
 * Kapija's own origin is ISSUER, whatever a request says. Every absolute URL the engine publishes
 * or redirects to (discovery, the endpoints, /interaction, end_session, the DPoP `htu` it expects)
 * is built from the request's `href`, which Koa takes from the Host header (X-Forwarded-Host behind
 * a trusted proxy) or from an absolute-form request target. Those are chosen by whoever sends the
 * request, and discovery is kept for every later caller (see app.ts), so they are pinned here.
 */
import type { Context, Next } from 'koa';

/** The path and query of a request target, also of an absolute-form one (`GET http://host/p?q`). */
export function pathAndQuery(originalUrl: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(originalUrl)) return originalUrl.startsWith('/') ? originalUrl : `/${originalUrl}`;
  const u = URL.parse(originalUrl);
  return u ? `${u.pathname}${u.search}` : '/';
}

export function pinOrigin(issuer: string) {
  const { origin, host, hostname } = new URL(issuer);
  return (ctx: Context, next: Next) => {
    const href = `${origin}${pathAndQuery(ctx.originalUrl)}`;
    let url: URL | undefined;
    Object.defineProperties(ctx.request, {
      origin: { value: origin, configurable: true },
      href: { value: href, configurable: true },
      host: { value: host, configurable: true },
      hostname: { value: hostname, configurable: true },
      // Parsed when something asks for it (few requests do), as Koa's own getter does.
      URL: { get: () => (url ??= new URL(href)), configurable: true },
    });
    return next();
  };
}
