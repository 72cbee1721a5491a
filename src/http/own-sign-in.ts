/**
 * Kapija's own pages (the account portal, the administration console) sign in through Kapija like
 * any service: authorization code with PKCE for a first-party client. The code is redeemed
 * in-process (the same checks as the token endpoint: client, redirect URI, PKCE, single use), and
 * the result is kept in a sealed, HttpOnly cookie that lives no longer than the Kapija session
 * behind it and expires after `idleSeconds` without use.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { KapijaError } from '../errors.js';
import type { SecretBox } from '../security/crypto.js';
import type { ClientRepository } from '../store/clients.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import { honestLevel, type IdentityLevel } from '../identity/levels.js';
import { levelOfAcr, rank } from '../assurance/levels.js';

export interface OwnSession {
  readonly accountId: string;
  readonly sessionUid: string;
  /** When the citizen last proved their factors (epoch seconds). */
  readonly authTime: number;
  readonly acr: string;
  readonly amr: readonly string[];
  /** Idle expiry (epoch seconds). */
  readonly exp: number;
}

export interface OwnSignInOptions {
  provider: Provider;
  clients: ClientRepository;
  payloads: OidcPayloadRepository;
  box: SecretBox;
  issuer: string;
  clientId: string;
  clientName: string;
  /** Path prefix of the pages, e.g. '/account'; the callback is `${base}/callback`. */
  base: string;
  cookieName: string;
  idleSeconds: number;
  secureCookies: boolean;
  /**
   * The identity level in force for an account (identity/service.ts): a session whose acr is above
   * what the identity now supports (its proofing expired since) counts as signed out.
   */
  identityLevel?(accountId: string): Promise<IdentityLevel>;
}

export interface OwnSignIn {
  /** Registers the first-party client if it is missing (idempotent across instances). */
  ensureClient(): Promise<void>;
  /** Redirects to Kapija's sign-in; `reauthenticate` forces both factors again (prompt=login). */
  login(ctx: Context, opts?: { returnTo?: string; reauthenticate?: boolean; acrValues?: string }): void;
  /** Completes the sign-in on `${base}/callback`; returns where to go next. */
  callback(ctx: Context): Promise<string>;
  /** The signed-in session, refreshed; undefined when absent, expired or its Kapija session ended. */
  current(ctx: Context): Promise<OwnSession | undefined>;
  clear(ctx: Context): void;
}

const b64url = (b: Buffer) => b.toString('base64url');

/** The longest return path kept across a sign-in. */
const MAX_RETURN = 1024;

export function createOwnSignIn(o: OwnSignInOptions): OwnSignIn {
  /** Whether the session asserts more than the account's identity supports now (read only above low). */
  const aboveIdentity = async (session: OwnSession): Promise<boolean> => {
    const at = levelOfAcr(session.acr);
    if (!o.identityLevel || !at || at === 'low') return false;
    return rank(at) > rank(honestLevel('high', await o.identityLevel(session.accountId)));
  };
  const redirectUri = `${o.issuer}${o.base}/callback`;
  const txCookie = `${o.cookieName}.tx`;
  const cookieOpts = (maxAgeMs?: number) => ({
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: o.secureCookies,
    path: o.base,
    signed: false,
    overwrite: true,
    ...(maxAgeMs ? { maxAge: maxAgeMs } : {}),
  });
  // A page of these pages only, and of a sensible length: the return is sealed into a cookie, and a
  // huge query would make headers no browser reads (the page's start is where it goes instead).
  const safeReturn = (to: unknown) =>
    typeof to === 'string' && to.length <= MAX_RETURN && to.startsWith(`${o.base}`) && !to.startsWith('//') && !/[\r\n\\]/.test(to) ? to : o.base;

  const signIn: OwnSignIn = {
    async ensureClient() {
      if (await o.clients.findMetadata(o.clientId)) return;
      try {
        await o.clients.create(
          {
            client_id: o.clientId,
            client_name: o.clientName,
            redirect_uris: [redirectUri],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
            scope: 'openid',
            kapija_first_party: true,
          },
          undefined,
        );
      } catch (err) {
        // Another instance registered it at the same moment.
        if (!(await o.clients.findMetadata(o.clientId))) throw err;
      }
    },

    login(ctx, opts = {}) {
      const state = b64url(randomBytes(24));
      const verifier = b64url(randomBytes(32));
      const challenge = b64url(createHash('sha256').update(verifier).digest());
      const tx = o.box.seal(JSON.stringify({ state, verifier, returnTo: safeReturn(opts.returnTo) }), `${o.cookieName}:tx`);
      ctx.cookies.set(txCookie, tx, cookieOpts(15 * 60 * 1000));
      const url = new URL(`${o.issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: o.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: redirectUri,
        state,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...(opts.reauthenticate ? { prompt: 'login', max_age: '0' } : {}),
        ...(opts.acrValues ? { acr_values: opts.acrValues } : {}),
        ...(ctx.state.locale ? { ui_locales: String(ctx.state.locale) } : {}),
      }).toString();
      ctx.status = 303;
      ctx.redirect(url.href);
    },

    async callback(ctx) {
      const raw = ctx.cookies.get(txCookie);
      ctx.cookies.set(txCookie, null, cookieOpts());
      let tx: { state: string; verifier: string; returnTo: string } | undefined;
      try {
        tx = raw ? (JSON.parse(o.box.openString(raw, `${o.cookieName}:tx`)) as typeof tx) : undefined;
      } catch {
        tx = undefined;
      }
      const { code: codeValue, state, error } = ctx.query;
      if (error === 'unmet_authentication_requirements') throw new KapijaError('login.acr_unmet', 403);
      if (typeof error === 'string') throw new KapijaError('interaction.expired', 400);
      if (!tx || typeof state !== 'string' || state !== tx.state || typeof codeValue !== 'string') {
        throw new KapijaError('request.invalid', 400);
      }
      const code = await o.provider.AuthorizationCode.find(codeValue);
      const challenge = b64url(createHash('sha256').update(tx.verifier).digest());
      if (
        !code ||
        (code as unknown as { consumed?: number }).consumed ||
        code.clientId !== o.clientId ||
        code.redirectUri !== redirectUri ||
        code.codeChallenge !== challenge ||
        !code.accountId ||
        !code.sessionUid
      ) {
        throw new KapijaError('request.invalid', 400);
      }
      await code.consume();
      const now = Math.floor(Date.now() / 1000);
      const session: OwnSession = {
        accountId: code.accountId,
        sessionUid: code.sessionUid,
        authTime: code.authTime ?? now,
        acr: code.acr ?? '',
        amr: code.amr ?? [],
        exp: now + o.idleSeconds,
      };
      ctx.cookies.set(o.cookieName, o.box.seal(JSON.stringify(session), o.cookieName), cookieOpts());
      return tx.returnTo;
    },

    async current(ctx) {
      const raw = ctx.cookies.get(o.cookieName);
      if (!raw) return undefined;
      let session: OwnSession;
      try {
        session = JSON.parse(o.box.openString(raw, o.cookieName)) as OwnSession;
      } catch {
        signIn.clear(ctx);
        return undefined;
      }
      const now = Math.floor(Date.now() / 1000);
      // Signing out of Kapija (or a session ended elsewhere) ends this too.
      if (session.exp <= now || !(await o.payloads.findByUid('Session', session.sessionUid)) || (await aboveIdentity(session))) {
        signIn.clear(ctx);
        return undefined;
      }
      const refreshed = { ...session, exp: now + o.idleSeconds };
      ctx.cookies.set(o.cookieName, o.box.seal(JSON.stringify(refreshed), o.cookieName), cookieOpts());
      return refreshed;
    },

    clear(ctx) {
      ctx.cookies.set(o.cookieName, null, cookieOpts());
    },
  };
  return signIn;
}
