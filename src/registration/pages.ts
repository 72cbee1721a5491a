/**
 * What the registration and recovery pages share: the form guard's schemas, the throttles for
 * mail and links, the way back to the sign-in, the message page and the password rules. Every form
 * carries the CSRF token; every page works without JavaScript; errors are listed at the top
 * (linked to their fields) and tied to each field with aria-describedby. Requests that send mail
 * are throttled per address and per IP, link and code attempts per IP and per account.
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { KapijaError } from '../errors.js';
import { formString as field } from '../http/guard.js';
import type { Renderer } from '../http/render.js';
import type { Locale, Translate, MessageKey } from '../i18n/index.js';
import type { Throttle } from '../security/rate-limit.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { TotpFactor } from '../factors/totp/index.js';
import type { RecoveryFactor } from '../factors/recovery/index.js';
import { checkNewPassword, PASSWORD_MAX, PASSWORD_MIN } from '../factors/password/policy.js';
import type { RegistrationAndRecovery } from './service.js';

export interface PageDeps {
  service: RegistrationAndRecovery;
  provider: Provider;
  render: Renderer;
  credentials: CredentialRepository;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  /** `mail`: requests that send mail; `link`: uses of links and second-factor codes on these pages. */
  throttles: { mail: Throttle; link: Throttle };
}

const UID = /^[A-Za-z0-9_-]{1,64}$/;

export const str = (v: string, max: number) => v.slice(0, max);
/** The forms these pages read, each field a string ('' when absent or repeated). */
export const registerForm = z.object({ return: field, username: field, email: field, given_name: field, family_name: field, password: field, password_confirm: field });
export const recoverForm = z.object({ return: field, identifier: field });
export const tokenForm = z.object({ token: field });
export const resetForm = tokenForm.extend({ password: field, password_confirm: field });
export const notMeForm = tokenForm.extend({ code: z.unknown().optional() });
export const NAME_MAX = 100;
/** The field as typed, or undefined when it is longer than `max` (refused, never cut short). */
export const bounded = (v: string, max: number) => {
  const s = v.trim();
  return [...s].length > max ? undefined : s;
};

export function createPageKit(deps: PageDeps) {
  const { service, render, throttles } = deps;
  const t = (ctx: Context) => ctx.state.t as Translate;
  const locale = (ctx: Context) => ctx.state.locale as Locale;
  const returnUid = (v: unknown) => (typeof v === 'string' && UID.test(v) ? v : undefined);
  /** Back to the sign-in (or the portal), in the language of this page. */
  const backHref = (ctx: Context, uid: string | undefined) => `${uid ? `/interaction/${uid}` : '/account'}?lang=${locale(ctx)}`;

  const requireMail = () => {
    if (!service.mailAvailable()) throw new KapijaError('mail.unavailable', 503);
  };
  const rateLimited = (seconds: number) => new KapijaError('login.rate_limited', 429, { details: { retryAfter: seconds } });

  /** Counts one request that sends mail; throws while the address or IP is over its budget. */
  const spendMail = async (ctx: Context, target: string) => {
    // A digest of the address: a fixed-length key whatever was typed.
    const keys = { account: `mail:${createHash('sha256').update(target.trim().toLowerCase()).digest('base64url')}`, ip: ctx.ip };
    const wait = await throttles.mail.retryAfter(keys);
    if (wait > 0) throw rateLimited(wait);
    const after = await throttles.mail.fail(keys);
    if (after > 0) throw rateLimited(after);
  };
  // Invalid links count per IP (in both tiers); codes on /not-me per account as well.
  const linkKeys = (ctx: Context, account = `link:${ctx.ip}`) => ({ account, ip: ctx.ip });
  const checkLinkBudget = async (ctx: Context, account?: string) => {
    const wait = await throttles.link.retryAfter(linkKeys(ctx, account));
    if (wait > 0) throw rateLimited(wait);
  };
  const badLink = async (ctx: Context): Promise<never> => {
    await throttles.link.fail(linkKeys(ctx));
    throw new KapijaError('link.invalid', 400);
  };

  const message = (ctx: Context, title: MessageKey, heading: MessageKey, paragraphs: MessageKey[], link?: { href: string; label: MessageKey }) => {
    const tr = t(ctx);
    render(ctx, 'registration/message', {
      title: tr(title),
      heading: tr(heading),
      paragraphs: paragraphs.map((p) => tr(p)),
      link: link ? { href: link.href, label: tr(link.label) } : undefined,
      canonicalUrl: ctx.path,
    });
  };

  const passwordErrors = (ctx: Context, password: string, confirm: string, username: string | undefined, errors: Record<string, string>) => {
    const tr = t(ctx);
    const problem = checkNewPassword(password, { username });
    if (problem) errors.password = tr(`error.password.${problem}`, { min: PASSWORD_MIN, max: PASSWORD_MAX });
    else if (password !== confirm) errors.password_confirm = tr('error.password.mismatch');
  };

  const tokenOf = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9_-]{20,100}$/.test(v) ? v : undefined);

  /** A mailed link's page: one button that uses it (mail scanners that fetch links must not use them up). */
  const confirmLink = (ctx: Context, keys: 'verify' | 'reenrol', action: string, token: string) => {
    const tr = t(ctx);
    render(ctx, 'registration/confirm', {
      title: tr(`${keys}.title`),
      heading: tr(`${keys}.heading`),
      intro: tr(`${keys}.intro`),
      submit: tr(`${keys}.submit`),
      action,
      token,
      canonicalUrl: `${action}?token=${token}`,
    });
  };

  return { t, locale, returnUid, backHref, requireMail, rateLimited, spendMail, linkKeys, checkLinkBudget, badLink, message, passwordErrors, tokenOf, confirmLink };
}

export type PageKit = ReturnType<typeof createPageKit>;
