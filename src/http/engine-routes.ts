/**
 * The OpenID Connect engine's routes on Kapija's application: its machine-to-machine endpoints,
 * the published documents (discovery, JWKS) kept until the keys change, the authorization
 * endpoint's form POST, the pages the engine renders, and the last word on what escapes it.
 */
import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import { koaBody } from 'koa-body';
import { KapijaError, isUnavailableError } from '../errors.js';
import type { Translate } from '../i18n/index.js';
import type { Engine } from '../oidc/engine.js';
import type { ProviderPages } from '../oidc/provider.js';
import { prefersHtml, type ErrorResponder } from './error-handler.js';
import type { Renderer } from './render.js';

/** The engine's published documents, the same for every request until the keys change. */
const PUBLISHED_PATHS = new Set(['/.well-known/openid-configuration', '/jwks']);

/**
 * How long a client may reuse discovery and JWKS without asking again. A scheduled signing key is
 * published KEY_ACTIVATION_DELAY_SECONDS (an hour by default) before it signs, so five minutes
 * leaves every cache well ahead of it; after an emergency rotation a relying party that meets an
 * unknown kid fetches JWKS again, and the changed ETag answers it in full.
 */
export const PUBLISHED_MAX_AGE_SECONDS = 300;

/** oidc-provider's default routes that serve clients and resource servers, not browsers. */
export const ENGINE_API_PATHS = new Set([
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/me',
  '/jwks',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  '/request',
  '/device/auth',
  // CIBA's backchannel authentication endpoint.
  '/backchannel',
  // OpenID4VCI (wallet/issuer/engine.ts): the credential issuer's metadata, the credential and nonce endpoints.
  '/.well-known/openid-credential-issuer',
  '/credential',
  '/challenge',
]);

export function createEngineRoutes(engine: Engine, errors: ErrorResponder) {
  /**
   * The engine answers its own errors, except a database failure while it saves the session after
   * the route (e.g. the sign-out form): a program gets the engine's JSON shape for it too.
   */
  const toEngine = async (ctx: Context, next: Next) => {
    try {
      await engine.serve(ctx, next);
    } catch (err) {
      if (!isUnavailableError(err) || prefersHtml(ctx)) throw err;
      errors.respond(ctx, err, 'engine');
    }
  };

  /**
   * The engine's machine-to-machine endpoints go straight to it: none of Kapija's pages, assets,
   * open data or administration lives under these paths, and they answer in JSON on their own.
   * What escapes the engine (a database outage, a bug) is answered here, without Kapija's pages.
   */
  const engineApi = async (ctx: Context, next: Next) => {
    if (!ENGINE_API_PATHS.has(ctx.path)) return next();
    try {
      await toEngine(ctx, () => Promise.resolve());
    } catch (err) {
      errors.respond(ctx, err, 'engine');
    }
  };

  /**
   * Discovery and JWKS change only with the engine (its keys): its answer is kept until the next
   * one, for the plain GETs services make (a browser's cross-origin request still reaches the engine).
   * A kept document carries a strong ETag (the hash of its bytes, so it changes when the keys do)
   * and may be cached publicly for a few minutes; a client that sends its ETag back in
   * If-None-Match gets 304 without the body.
   */
  const published = new Map<string, { type: string; body: string; etag: string }>();
  engine.onSwap(() => published.clear());
  const answerKept = (ctx: Context, kept: { type: string; body: string; etag: string }) => {
    // The engine's own headers for these documents; nothing before this middleware sets Vary.
    ctx.set('vary', 'Origin');
    ctx.set('access-control-allow-origin', '*');
    ctx.set('cache-control', `public, max-age=${PUBLISHED_MAX_AGE_SECONDS}`);
    ctx.set('etag', kept.etag);
    ctx.status = 200;
    if (matchesNoneMatch(ctx.get('if-none-match'), kept.etag)) {
      ctx.status = 304;
      return;
    }
    ctx.set('content-type', kept.type);
    ctx.body = kept.body;
  };
  const publishedDocuments = async (ctx: Context, next: Next) => {
    if (ctx.method !== 'GET' || !PUBLISHED_PATHS.has(ctx.path) || ctx.querystring || ctx.get('origin')) return next();
    const kept = published.get(ctx.path);
    if (kept) return answerKept(ctx, kept);
    const servedBy = engine.current();
    await next();
    if (ctx.status === 200 && servedBy === engine.current() && ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body)) {
      const type = ctx.response.get('content-type');
      const body = JSON.stringify(ctx.body);
      const fresh = { type, body, etag: `"${createHash('sha256').update(body).digest('base64url')}"` };
      published.set(ctx.path, fresh);
      answerKept(ctx, fresh);
    }
  };

  return { toEngine, engineApi, publishedDocuments };
}

/**
 * RFC 9110 13.1.2: If-None-Match holds `*` or a list of entity tags, compared weakly (a W/ prefix
 * is ignored). The request's own Cache-Control: no-cache is addressed to caches on the way; an
 * origin server still answers the condition (fetch() adds no-cache to every conditional request
 * it is given, so a server that ignored the condition then would never answer 304 to it).
 */
export function matchesNoneMatch(header: string, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** The pages the engine renders: its errors (by the Accept rule), the sign-out question and its end. */
export function enginePages(render: Renderer, errors: ErrorResponder): ProviderPages {
  const t = (ctx: Context) => ctx.state.t as Translate;
  return {
    error: (ctx, out, err) => errors.renderEngineError(ctx, out, err),
    logout(ctx, form) {
      render(ctx, 'logout', { title: t(ctx)('logout.title'), form });
    },
    logoutDone(ctx, clientName) {
      render(ctx, 'logout-done', { title: t(ctx)('logout.done.title'), clientName });
    },
  };
}

const parseAuthorizationForm = koaBody({ urlencoded: true, json: false, multipart: false, text: false, formLimit: '64kb', patchNode: false });

/**
 * OIDC Core 3.1.2.1: the authorization endpoint takes a form-encoded POST like a GET. The engine
 * serves POST only with SameSite=None cookies (a cross-site POST must carry its session), so the
 * form's parameters are handed to it as the GET request's query instead: the same checks, and a
 * request from another site simply finds no session and asks the citizen to sign in.
 */
export async function authorizationByPost(ctx: Context, next: Next): Promise<void> {
  if (ctx.method !== 'POST' || ctx.path !== '/auth') return next();
  if (!ctx.is('application/x-www-form-urlencoded')) throw new KapijaError('request.invalid', 415);
  try {
    await parseAuthorizationForm(ctx, () => Promise.resolve());
  } catch (err) {
    const status = (err as { status?: number }).status;
    throw new KapijaError(status === 413 ? 'request.too_large' : 'request.invalid', status === 413 ? 413 : 400, { cause: err });
  }
  const form = (ctx.request as { body?: Record<string, string | string[]> }).body ?? {};
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) for (const one of Array.isArray(value) ? value : [value]) query.append(key, one);
  ctx.method = 'GET';
  ctx.querystring = query.toString();
  return next();
}
