/**
 * Cross-cutting middleware for Kapija's own pages: request id, language, CSRF cookie, body parsing.
 */
import type { Context, Next } from 'koa';
import { koaBody } from 'koa-body';
import { KapijaError } from '../errors.js';
import { LOCALES, LOCALE_COOKIE, matchLocale, negotiateLocale, translator, type Locale, type Translate } from '../i18n/index.js';
import { CSRF_COOKIE, CSRF_FIELD, type Csrf } from '../security/csrf.js';
import { hostCookie } from './cookie-names.js';

/**
 * Picks the page language; `?lang=` switches it and remembers the choice for a year. The language
 * is negotiated when a handler first reads `ctx.state.locale` or `ctx.state.t`, so the protocol
 * endpoints, which answer in JSON, never pay for it.
 */
export function i18n(opts: { fallback: Locale; secureCookies: boolean }) {
  const localeCookie = hostCookie(LOCALE_COOKIE, opts.secureCookies);
  return async (ctx: Context, next: Next): Promise<void> => {
    ctx.state.localeCookie = localeCookie;
    const chosen = ctx.querystring.includes('lang=') ? matchLocale(typeof ctx.query.lang === 'string' ? ctx.query.lang : undefined) : undefined;
    if (chosen) {
      ctx.cookies.set(localeCookie, chosen, {
        httpOnly: true,
        sameSite: 'lax',
        secure: opts.secureCookies,
        maxAge: 365 * 24 * 3600 * 1000,
        signed: false,
        overwrite: true,
      });
    }
    let locale: Locale | undefined = chosen;
    let t: Translate | undefined;
    Object.defineProperties(ctx.state, {
      locale: {
        enumerable: true,
        configurable: true,
        get: () =>
          (locale ??= negotiateLocale({
            uiLocales: typeof ctx.state.uiLocales === 'string' ? ctx.state.uiLocales : undefined,
            cookie: ctx.cookies.get(localeCookie) ?? undefined,
            acceptLanguage: ctx.get('accept-language'),
            fallback: opts.fallback,
          })),
        set: (v: Locale) => {
          locale = v;
        },
      },
      t: {
        enumerable: true,
        configurable: true,
        get: () => (t ??= translator(ctx.state.locale as Locale)),
        set: (v: Translate) => {
          t = v;
        },
      },
    });
    await next();
  };
}

/**
 * Re-negotiates after a handler learned the service's `ui_locales` (kept in the interaction). A
 * form posted from a sign-in page carries that page's language (`lang` field), which wins: the
 * citizen may have switched away from the language the service asked for.
 */
export function applyUiLocales(ctx: Context, uiLocales: string | undefined, fallback: Locale): void {
  if (matchLocale(typeof ctx.query.lang === 'string' ? ctx.query.lang : undefined)) return;
  const posted = ((ctx.request as { body?: Record<string, unknown> }).body ?? {}).lang;
  const kept = LOCALES.find((l) => l === posted);
  if (kept) {
    ctx.state.locale = kept;
    ctx.state.t = translator(kept);
    return;
  }
  if (!uiLocales) return;
  const locale = negotiateLocale({
    uiLocales,
    cookie: ctx.cookies.get(typeof ctx.state.localeCookie === 'string' ? ctx.state.localeCookie : LOCALE_COOKIE) ?? undefined,
    acceptLanguage: ctx.get('accept-language'),
    fallback,
  });
  ctx.state.locale = locale;
  ctx.state.t = translator(locale);
}

/**
 * Issues the CSRF cookie and token on every request, and rejects a state-changing request whose
 * form token does not match.
 */
export function csrfProtection(csrf: Csrf, opts: { secureCookies: boolean }) {
  const csrfCookie = hostCookie(CSRF_COOKIE, opts.secureCookies);
  return async (ctx: Context, next: Next): Promise<void> => {
    let secret = ctx.cookies.get(csrfCookie, { signed: true });
    if (!secret) {
      secret = csrf.newSecret();
      ctx.cookies.set(csrfCookie, secret, {
        httpOnly: true,
        sameSite: 'lax',
        secure: opts.secureCookies,
        signed: true,
        overwrite: true,
      });
    }
    ctx.state.csrfToken = csrf.tokenFor(secret);
    if (!['GET', 'HEAD', 'OPTIONS'].includes(ctx.method)) {
      const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
      const token = body[CSRF_FIELD] ?? ctx.get('x-csrf-token');
      if (!csrf.verify(ctx.cookies.get(csrfCookie, { signed: true }) ?? undefined, token)) {
        throw new KapijaError('request.csrf', 403);
      }
    }
    await next();
  };
}

/** Parses urlencoded and JSON bodies with small limits; malformed bodies are a 400, not a 500. */
export function bodyParser() {
  const parse = koaBody({
    urlencoded: true,
    json: true,
    multipart: false,
    text: false,
    formLimit: '64kb',
    jsonLimit: '64kb',
    onError: (err) => {
      throw err;
    },
  });
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await parse(ctx, async () => undefined);
    } catch (err) {
      const status = (err as { status?: number }).status;
      throw new KapijaError(status === 413 ? 'request.too_large' : 'request.invalid', status === 413 ? 413 : 400, {
        cause: err,
      });
    }
    await next();
  };
}
