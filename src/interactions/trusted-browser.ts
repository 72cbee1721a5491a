/**
 * "Remember this browser for 30 days": after a sign-in with both factors the citizen may have this
 * browser remembered. It then holds a random cookie, and Kapija stores only a keyed hash of that
 * cookie bound to the account (store/trusted-browsers.ts). Within the 30 days, a password sign-in
 * from the browser counts the browser as the second factor (`kapija:remembered`, substantial at
 * most: assurance/levels.ts), and only for sign-ins that ask for nothing more:
 * - never when the service needs high (the level of a remembered browser is below it);
 * - never for Kapija's own pages (the account portal and its changes, the administration), which
 *   always ask for the second factor;
 * - never when the service asks for a fresh sign-in (`prompt=login`, `max_age=0`), nor on step-up.
 * The browsers are listed and revocable in the account portal; all are forgotten on a password
 * change or reset, a change of factors and "this wasn't me" (wired in app.ts).
 */
import type { Context } from 'koa';
import { hostCookie } from '../http/cookie-names.js';
import { randomToken, type SecretBox } from '../security/crypto.js';
import type { TrustedBrowserRepository } from '../store/trusted-browsers.js';
import { rank, type AcrLevel } from '../assurance/levels.js';
import type { Flow } from './flow.js';

/** The cookie holding the browser's random secret (with `__Host-` over https). */
export const TRUSTED_COOKIE = 'kapija.trusted';
export const TRUSTED_DAYS = 30;

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface TrustedBrowsers {
  /** True when this browser's cookie is one the account remembered and it has not expired. */
  recognises(ctx: Context, accountId: string): Promise<boolean>;
  /** Remembers this browser for the account for TRUSTED_DAYS. */
  remember(ctx: Context, accountId: string): Promise<void>;
}

export function createTrustedBrowsers(deps: { repo: TrustedBrowserRepository; box: Pick<SecretBox, 'mac'>; secureCookies: boolean }): TrustedBrowsers {
  const name = hostCookie(TRUSTED_COOKIE, deps.secureCookies);
  // Bound to the account: the same browser may be remembered for two accounts, and one account's
  // cookie names nothing for another.
  const hashOf = (accountId: string, token: string) => deps.box.mac('trusted-browser', `${accountId}\n${token}`);
  const cookieOf = (ctx: Context) => {
    const value = ctx.cookies.get(name);
    return value && TOKEN.test(value) ? value : undefined;
  };
  return {
    async recognises(ctx, accountId) {
      const token = cookieOf(ctx);
      if (!token) return false;
      return (await deps.repo.use(accountId, hashOf(accountId, token))) !== undefined;
    },
    async remember(ctx, accountId) {
      // A browser remembered for another account keeps its secret; each account stores its own hash.
      const token = cookieOf(ctx) ?? randomToken(32);
      const expiresAt = new Date(Date.now() + TRUSTED_DAYS * 24 * 3600 * 1000);
      await deps.repo.add({ accountId, tokenHash: hashOf(accountId, token), userAgent: ctx.get('user-agent') || null, expiresAt }).catch(async (err: unknown) => {
        // Already remembered for this account with this secret (a second tick): the old record stays.
        if ((await deps.repo.use(accountId, hashOf(accountId, token))) === undefined) throw err;
      });
      ctx.cookies.set(name, token, { httpOnly: true, sameSite: 'lax', secure: deps.secureCookies, path: '/', maxAge: TRUSTED_DAYS * 24 * 3600 * 1000, signed: false, overwrite: true });
    },
  };
}

/**
 * Whether this browser, remembered by the account, stands in for the second factor here: right
 * after the password (not on step-up), for a service that needs no more than substantial, not
 * Kapija's own pages (the account portal, the administration), and not when the service asks for
 * a fresh sign-in; and only for an account that still has a second factor (not after an
 * administrator's reset).
 */
export async function standsInForSecondFactor(
  ctx: Context,
  flow: Flow,
  needed: AcrLevel,
  d: {
    browsers: TrustedBrowsers;
    params: Record<string, unknown>;
    firstParty: () => Promise<boolean>;
    hasSecondFactor: (accountId: string) => Promise<boolean>;
    factorsResetPending: (accountId: string) => Promise<boolean>;
  },
): Promise<boolean> {
  if (flow.stepUp || flow.step !== 'second-factor') return false;
  if (flow.amr.length !== 1 || flow.amr[0] !== 'pwd') return false;
  if (rank(needed) > rank('substantial')) return false;
  const prompts = String(d.params.prompt ?? '').split(' ');
  if (prompts.includes('login') || String(d.params.max_age ?? '') === '0') return false;
  if (await d.firstParty()) return false;
  if (!(await d.browsers.recognises(ctx, flow.accountId))) return false;
  return (await d.hasSecondFactor(flow.accountId)) && !(await d.factorsResetPending(flow.accountId));
}
