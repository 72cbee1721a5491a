/**
 * Security headers on every response (helmet): a strict CSP with no inline script, no framing,
 * no referrer, no MIME sniffing; HSTS in production. oidc-provider appends the hash of its one inline
 * script (form_post) to this CSP itself.
 */
import type { Context, Next } from 'koa';
import helmet from 'koa-helmet';

/**
 * helmet's headers depend only on the options, so they are computed once and set on each
 * response directly rather than through helmet's chain of small middlewares per request.
 */
export function securityHeaders(opts: { production: boolean }) {
  const headers: [string, string][] = [];
  const removed: string[] = [];
  const res = {
    setHeader: (name: string, value: unknown) => void headers.push([name, String(value)]),
    removeHeader: (name: string) => void removed.push(name),
  };
  // helmet's middleware sets every header synchronously before it calls back.
  void helmetWith(opts)({ req: {}, res } as unknown as Context, () => Promise.resolve());
  if (!headers.some(([name]) => name.toLowerCase() === 'content-security-policy')) throw new Error('helmet produced no CSP');
  return (ctx: Context, next: Next) => {
    for (const name of removed) ctx.res.removeHeader(name);
    for (const [name, value] of headers) ctx.res.setHeader(name, value);
    return next();
  };
}

function helmetWith(opts: { production: boolean }) {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'style-src': ["'self'"],
        'img-src': ["'self'", 'data:'],
        'font-src': ["'self'"],
        'connect-src': ["'self'"],
        'object-src': ["'none'"],
        'base-uri': ["'none'"],
        // Forms post to Kapija only; a page whose form ends at a service (sign-in, logout, form_post)
        // adds that service's redirect origin (allowFormActionTo), since Chromium applies
        // form-action to every redirect after the submission.
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        ...(opts.production ? { 'upgrade-insecure-requests': [] } : {}),
      },
    },
    strictTransportSecurity: opts.production ? { maxAge: 63072000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    crossOriginEmbedderPolicy: false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
}

/**
 * Lets this response's forms lead to `uri`'s origin (or scheme, for an app's private-use scheme):
 * the service a sign-in or logout returns to. Only for a URI the client registered.
 */
export function allowFormActionTo(ctx: Context, uri: unknown): void {
  if (typeof uri !== 'string') return;
  const parsed = URL.parse(uri);
  if (!parsed) return;
  const source = parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : parsed.protocol;
  if (!/^[a-z][a-z0-9+.-]*:(\/\/[^\s;,']+)?$/i.test(source)) return;
  const csp = ctx.response.get('content-security-policy');
  if (!csp) return;
  ctx.set('content-security-policy', csp.replace(/form-action ([^;]*)/, (all, list: string) => (list.split(' ').includes(source) ? all : `form-action ${list} ${source}`)));
}
