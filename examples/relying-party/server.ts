/**
 * A government service signing citizens in with Kapija: a complete relying party in one file.
 *
 * - discovery from ISSUER (/.well-known/openid-configuration)
 * - login with the authorization code flow, PKCE (S256), state and nonce
 * - callback: code exchange, ID token validation, userinfo
 * - refresh (the refresh token rotates on every use)
 * - RP-initiated logout, and a back-channel logout endpoint that verifies the logout token
 *   (OpenID Connect Back-Channel Logout 1.0, §2.6)
 *
 * Run: ISSUER=… CLIENT_ID=… CLIENT_SECRET=… npx tsx server.ts
 *
 * Sessions live in memory here; a service with more than one instance keeps them in a shared store.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Koa, { type Context } from 'koa';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export interface RelyingPartyOptions {
  /** Kapija's issuer URL, e.g. https://kapija.example.gov.rs */
  issuer: string;
  clientId: string;
  /** Omit for a public client (token_endpoint_auth_method "none"); PKCE protects the code either way. */
  clientSecret?: string | undefined;
  /** Registered redirect URI, e.g. https://service.example.gov.rs/callback. Its origin is this service's address. */
  redirectUri: string;
  /** Scopes to ask for. */
  scope?: string;
  /** The ID token signing algorithm registered for this client (Kapija's default is RS256). */
  idTokenAlg?: string;
  /** Keys for signing this service's cookie; random per process when omitted. */
  cookieKeys?: string[];
  /** Where the service writes its log lines (stdout when omitted). */
  log?: (line: string) => void;
}

interface Session {
  /** Present between /login and /callback only. */
  pending?: { state: string; nonce: string; verifier: string };
  idToken?: string;
  claims?: oidc.IDToken;
  userinfo?: oidc.UserInfoResponse;
  accessToken?: string;
  refreshToken?: string | undefined;
  refreshedAt?: Date;
}

export interface RelyingParty {
  /** The Koa application; mount it or pass `app.callback()` to an HTTP server. */
  readonly app: Koa;
  /** Number of signed-in sessions (a test can watch back-channel logout remove one). */
  sessionCount(): number;
  /** Number of verified back-channel logout tokens received. */
  backchannelLogoutCount(): number;
  /** Listens on `port` (0 = any free port) and `host`; resolves with the base URL. */
  listen(port: number, host?: string): Promise<{ url: string; server: http.Server; close(): Promise<void> }>;
}

const SESSION_COOKIE = 'rp.sid';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Discovers the issuer and builds the relying party's routes. */
export async function createRelyingParty(options: RelyingPartyOptions): Promise<RelyingParty> {
  const issuer = new URL(options.issuer);
  const redirectUri = new URL(options.redirectUri);
  const home = new URL('/', redirectUri).href;
  const scope = options.scope ?? 'openid profile email offline_access';
  // Plain http is for a Kapija on this machine only; everything else must be https.
  const insecure = issuer.protocol === 'http:' && LOOPBACK.has(issuer.hostname);
  const config = await oidc.discovery(
    issuer,
    options.clientId,
    options.clientSecret,
    options.clientSecret ? undefined : oidc.None(),
    insecure ? { execute: [oidc.allowInsecureRequests] } : undefined,
  );
  const server = config.serverMetadata();
  if (!server.jwks_uri) throw new Error('the issuer publishes no jwks_uri');
  const jwks = createRemoteJWKSet(new URL(server.jwks_uri));

  const sessions = new Map<string, Session>();
  /** Verified back-channel logout tokens received since start. */
  let backchannelLogouts = 0;
  const log = options.log ?? ((line: string) => console.log(line));
  /** jti of logout tokens already accepted: a replayed logout token is rejected (§2.6 step 9, optional). */
  const seenLogoutTokens = new Map<string, number>();

  const app = new Koa();
  app.keys = options.cookieKeys ?? [randomBytes(32).toString('base64url')];
  const secureCookies = redirectUri.protocol === 'https:';

  const sessionOf = (ctx: Context): [string, Session] | undefined => {
    const id = ctx.cookies.get(SESSION_COOKIE, { signed: true });
    const session = id ? sessions.get(id) : undefined;
    return id && session ? [id, session] : undefined;
  };
  const startSession = (ctx: Context, session: Session): void => {
    const id = randomBytes(24).toString('base64url');
    sessions.set(id, session);
    ctx.cookies.set(SESSION_COOKIE, id, { signed: true, httpOnly: true, sameSite: 'lax', secure: secureCookies });
  };
  const endSession = (ctx: Context): void => {
    const current = sessionOf(ctx);
    if (current) sessions.delete(current[0]);
    ctx.cookies.set(SESSION_COOKIE, null, { signed: true });
  };

  app.use(async (ctx, next) => {
    ctx.set('cache-control', 'no-store');
    ctx.set('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' " + issuer.origin);
    // The session cookie is SameSite=Lax; refusing foreign Origins closes the rest of cross-site POSTs.
    const origin = ctx.get('origin');
    if (ctx.method === 'POST' && ctx.path !== '/backchannel-logout' && origin && origin !== redirectUri.origin) {
      ctx.status = 403;
      ctx.body = 'cross-origin request refused';
      return;
    }
    try {
      await next();
    } catch (err) {
      ctx.status = err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError ? 400 : 500;
      ctx.type = 'html';
      ctx.body = page('Sign-in failed', `<p>${escapeHtml(describe(err))}</p><p><a href="/">Back</a></p>`);
    }
  });

  app.use(async (ctx, next) => {
    const route = `${ctx.method} ${ctx.path}`;
    switch (route) {
      case 'GET /': {
        const session = sessionOf(ctx)?.[1];
        ctx.type = 'html';
        if (!session?.claims) {
          ctx.body = page('Service', `<p>You are not signed in.</p><p><a href="/login">Sign in with Kapija</a></p>`);
          return;
        }
        // Personal claims arrive from userinfo; the ID token says who and how (sub, acr, amr).
        const person = { ...session.claims, ...session.userinfo };
        const name = [person.given_name, person.family_name].filter(Boolean).join(' ') || person.sub;
        ctx.body = page(
          'Service',
          `<p>Signed in as <strong id="name">${escapeHtml(String(name))}</strong>.</p>
<h2>ID token claims</h2><pre id="claims">${escapeHtml(JSON.stringify(session.claims, null, 2))}</pre>
<h2>Userinfo</h2><pre id="userinfo">${escapeHtml(JSON.stringify(session.userinfo ?? {}, null, 2))}</pre>
${session.refreshedAt ? `<p id="refreshed">Tokens refreshed at ${session.refreshedAt.toISOString()}.</p>` : ''}
<form method="post" action="/refresh"><button ${session.refreshToken ? '' : 'disabled'}>Refresh tokens</button></form>
<form method="post" action="/logout"><button>Sign out</button></form>`,
        );
        return;
      }

      case 'GET /login': {
        const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
        endSession(ctx);
        startSession(ctx, { pending });
        const url = oidc.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri.href,
          scope,
          code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
          code_challenge_method: 'S256',
          state: pending.state,
          nonce: pending.nonce,
          // OpenID Connect Core §11: offline_access (a refresh token) is granted only with prompt=consent.
          ...(scope.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
          // Kapija asks the citizen in their language when the service passes it on.
          ...(typeof ctx.query.ui_locales === 'string' ? { ui_locales: ctx.query.ui_locales } : {}),
        });
        ctx.redirect(url.href);
        return;
      }

      case `GET ${redirectUri.pathname}`: {
        const current = sessionOf(ctx);
        const pending = current?.[1].pending;
        if (!current || !pending) {
          ctx.status = 400;
          ctx.type = 'html';
          ctx.body = page('Sign-in failed', '<p>This sign-in has expired. <a href="/login">Start again</a>.</p>');
          return;
        }
        // The callback URL as the browser requested it, on this service's registered origin.
        const callbackUrl = new URL(ctx.originalUrl, redirectUri.origin);
        const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
          pkceCodeVerifier: pending.verifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
        const claims = tokens.claims()!;
        const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        // A fresh session id after sign-in (no session fixation).
        sessions.delete(current[0]);
        startSession(ctx, {
          idToken: tokens.id_token!,
          claims,
          userinfo,
          accessToken: tokens.access_token,
          refreshToken: tokens.refresh_token,
        });
        ctx.redirect('/');
        return;
      }

      case 'POST /refresh': {
        const session = sessionOf(ctx)?.[1];
        if (!session?.refreshToken) {
          ctx.redirect('/');
          return;
        }
        const tokens = await oidc.refreshTokenGrant(config, session.refreshToken);
        session.accessToken = tokens.access_token;
        // Kapija rotates refresh tokens: the old one is now spent, and reusing it would revoke the grant.
        session.refreshToken = tokens.refresh_token ?? session.refreshToken;
        session.userinfo = await oidc.fetchUserInfo(config, tokens.access_token, session.claims!.sub);
        session.refreshedAt = new Date();
        ctx.redirect('/');
        return;
      }

      case 'POST /logout': {
        const session = sessionOf(ctx)?.[1];
        endSession(ctx);
        if (!session?.idToken) {
          ctx.redirect('/');
          return;
        }
        // RP-initiated logout: Kapija ends the citizen's session and returns to the registered home page.
        ctx.redirect(
          oidc.buildEndSessionUrl(config, { id_token_hint: session.idToken, post_logout_redirect_uri: home }).href,
        );
        return;
      }

      case 'POST /backchannel-logout': {
        const form = new URLSearchParams(await readBody(ctx.req, 16 * 1024));
        const logoutToken = form.get('logout_token');
        const claims = logoutToken ? await verifyLogoutToken(logoutToken).catch(() => undefined) : undefined;
        if (!claims) {
          ctx.status = 400;
          ctx.body = { error: 'invalid_request', error_description: 'invalid logout_token' };
          return;
        }
        let ended = 0;
        for (const [id, session] of sessions) {
          const c = session.claims;
          if (!c) continue;
          // A token with a sid ends that one session; one with only a sub ends all of the citizen's sessions.
          const sameSession = claims.sid !== undefined && c.sid !== undefined ? c.sid === claims.sid : c.sub === claims.sub;
          if (sameSession && sessions.delete(id)) ended += 1;
        }
        backchannelLogouts += 1;
        // The operator sees that the logout arrived and was verified; the sid is Kapija's opaque session id, not personal data.
        log(`back-channel logout received for ${claims.sid ? `sid ${claims.sid}` : 'a subject (no sid)'}: token verified, ${ended} session(s) ended`);
        ctx.status = 200;
        ctx.body = '';
        return;
      }

      default:
        await next();
    }
  });

  /** OpenID Connect Back-Channel Logout 1.0 §2.6: signature, iss, aud, iat, events, sub/sid, no nonce, typ. */
  async function verifyLogoutToken(token: string): Promise<{ sub?: string; sid?: string }> {
    const { payload } = await jwtVerify(token, jwks, {
      issuer: server.issuer,
      audience: options.clientId,
      algorithms: [options.idTokenAlg ?? 'RS256'],
      typ: 'logout+jwt',
      maxTokenAge: '2 minutes',
      requiredClaims: ['iat', 'jti', 'events'],
    });
    const events = payload.events as Record<string, unknown> | undefined;
    if (!events || typeof events[BACKCHANNEL_EVENT] !== 'object') throw new Error('not a logout token');
    if ('nonce' in payload) throw new Error('a logout token must not carry a nonce');
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    if (!sub && !sid) throw new Error('a logout token names a sub or a sid');
    const now = Date.now();
    for (const [jti, expires] of seenLogoutTokens) if (expires < now) seenLogoutTokens.delete(jti);
    if (seenLogoutTokens.has(payload.jti!)) throw new Error('logout token replayed');
    seenLogoutTokens.set(payload.jti!, now + 5 * 60_000);
    return { ...(sub ? { sub } : {}), ...(sid ? { sid } : {}) };
  }

  return {
    app,
    sessionCount: () => [...sessions.values()].filter((s) => s.claims).length,
    backchannelLogoutCount: () => backchannelLogouts,
    async listen(port, host = '127.0.0.1') {
      const httpServer = http.createServer(app.callback());
      await new Promise<void>((resolve) => httpServer.listen(port, host, resolve));
      const address = httpServer.address() as AddressInfo;
      return {
        url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
        server: httpServer,
        close: () =>
          new Promise<void>((resolve) => {
            httpServer.closeAllConnections();
            httpServer.close(() => resolve());
          }),
      };
    },
  };
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > limit) throw new Error('request body too large');
  }
  return body;
}

function describe(err: unknown): string {
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError) {
    return `${err.error}${err.error_description ? `: ${err.error_description}` : ''}`;
  }
  return 'something went wrong';
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto"><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

/** Reads the service's settings from the environment. */
function optionsFromEnv(env: NodeJS.ProcessEnv): RelyingPartyOptions & { port: number } {
  const required = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`${name} is required`);
    return value;
  };
  const port = Number(env.PORT ?? 8080);
  return {
    issuer: required('ISSUER'),
    clientId: required('CLIENT_ID'),
    clientSecret: env.CLIENT_SECRET || undefined,
    redirectUri: env.REDIRECT_URI ?? `http://localhost:${port}/callback`,
    port,
  };
}

/**
 * The address to open in the browser: the redirect URI's origin, as the session cookie is set for
 * that host (a browser on 127.0.0.1 would not send the cookie set for localhost, and the callback
 * would find no pending sign-in). Refuses when the redirect URI names another port than the one
 * this service listens on.
 */
export function publicUrl(redirectUri: string, port: number): string {
  const url = new URL(redirectUri);
  const redirectPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (LOOPBACK.has(url.hostname) && redirectPort !== port) {
    throw new Error(`REDIRECT_URI ${redirectUri} names port ${redirectPort}, but this service listens on ${port}: set PORT or REDIRECT_URI so that they match`);
  }
  return url.origin;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const { port, ...options } = optionsFromEnv(process.env);
    const url = publicUrl(options.redirectUri, port);
    const rp = await createRelyingParty(options);
    await rp.listen(port, process.env.HOST ?? '127.0.0.1');
    console.log(`relying party on ${url}/ (open this address: the redirect URI's), signing in with ${options.issuer}`);
  } catch (err) {
    console.error(`relying party: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
