/**
 * The self-service pages: `/register`, `/verify-email`, `/recover` (+ `/recover/reset`),
 * `/not-me` and `/enrol-factor`. Every form carries the CSRF token; every page works without JavaScript; errors are
 * listed at the top (linked to their fields) and tied to each field with aria-describedby.
 * Requests that send mail are throttled per address and per IP, link and code attempts per IP
 * and per account.
 */
import { createHash } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { KapijaError } from '../errors.js';
import { formString as field, parseBody } from '../http/guard.js';
import type { Renderer } from '../http/render.js';
import { EMAIL_MAX, USERNAME_MAX, isEmail, isUsername } from '../http/validators.js';
import type { Locale, Translate, MessageKey } from '../i18n/index.js';
import type { Throttle } from '../security/rate-limit.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { TotpFactor } from '../factors/totp/index.js';
import type { RecoveryFactor } from '../factors/recovery/index.js';
import { checkNewPassword, PASSWORD_MAX, PASSWORD_MIN } from '../factors/password/policy.js';
import { normaliseUsername } from '../store/accounts.js';
import { REENROL_COOKIE } from '../interactions/flow.js';
import type { SelfService } from './service.js';

export interface SelfServiceRouterDeps {
  service: SelfService;
  provider: Provider;
  render: Renderer;
  credentials: CredentialRepository;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  /** `mail`: requests that send mail; `link`: uses of links and second-factor codes on these pages. */
  throttles: { mail: Throttle; link: Throttle };
}

const UID = /^[A-Za-z0-9_-]{1,64}$/;

const str = (v: string, max: number) => v.slice(0, max);
/** The forms these pages read, each field a string ('' when absent or repeated). */
const registerForm = z.object({ return: field, username: field, email: field, given_name: field, family_name: field, password: field, password_confirm: field });
const recoverForm = z.object({ return: field, identifier: field });
const tokenForm = z.object({ token: field });
const resetForm = tokenForm.extend({ password: field, password_confirm: field });
const notMeForm = tokenForm.extend({ code: z.unknown().optional() });
const NAME_MAX = 100;
/** The field as typed, or undefined when it is longer than `max` (refused, never cut short). */
const bounded = (v: string, max: number) => {
  const s = v.trim();
  return [...s].length > max ? undefined : s;
};

export function createSelfServiceRouter(deps: SelfServiceRouterDeps): Router {
  const { service, render, throttles } = deps;
  const router = new Router();
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
    render(ctx, 'self-service/message', {
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

  // ---------------------------------------------------------------- registration

  const renderRegister = (ctx: Context, uid: string | undefined, values: Record<string, string> = {}, errors: Record<string, string> = {}) =>
    render(ctx, 'self-service/register', {
      title: t(ctx)('register.title'),
      returnUid: uid,
      backHref: backHref(ctx, uid),
      values,
      errors,
      passwordMin: PASSWORD_MIN,
      passwordMax: PASSWORD_MAX,
      canonicalUrl: uid ? `/register?return=${uid}` : '/register',
    });

  router.get('/register', async (ctx) => {
    requireMail();
    renderRegister(ctx, returnUid(ctx.query.return));
  });

  router.post('/register', async (ctx) => {
    requireMail();
    const b = parseBody(ctx, registerForm);
    const uid = returnUid(b.return);
    const raw = {
      username: bounded(b.username, USERNAME_MAX),
      email: bounded(b.email, EMAIL_MAX),
      given_name: bounded(b.given_name, NAME_MAX),
      family_name: bounded(b.family_name, NAME_MAX),
    };
    const values = {
      username: raw.username ?? str(b.username, USERNAME_MAX),
      email: raw.email ?? str(b.email, EMAIL_MAX),
      given_name: raw.given_name ?? str(b.given_name, NAME_MAX),
      family_name: raw.family_name ?? str(b.family_name, NAME_MAX),
    };
    const password = str(b.password, PASSWORD_MAX + 1);
    const confirm = str(b.password_confirm, PASSWORD_MAX + 1);
    const tr = t(ctx);
    const errors: Record<string, string> = {};
    // The username is checked as it will be stored: normalisation (NFKC) can lengthen it.
    const username = normaliseUsername(values.username);
    if (raw.username === undefined || !isUsername(values.username) || !isUsername(username)) {
      errors.username = values.username ? tr('error.field.username') : tr('error.field.required');
    }
    if (raw.email === undefined || !isEmail(values.email)) errors.email = values.email ? tr('error.field.email') : tr('error.field.required');
    if (raw.given_name === undefined) errors.given_name = tr('error.field.name');
    else if (!values.given_name) errors.given_name = tr('error.field.required');
    if (raw.family_name === undefined) errors.family_name = tr('error.field.name');
    else if (!values.family_name) errors.family_name = tr('error.field.required');
    passwordErrors(ctx, password, confirm, values.username, errors);
    if (Object.keys(errors).length > 0) {
      ctx.status = 400;
      return renderRegister(ctx, uid, values, errors);
    }
    await spendMail(ctx, values.email);
    await service.register(
      { username, email: values.email, givenName: values.given_name, familyName: values.family_name, password },
      { locale: locale(ctx), returnUid: uid },
    );
    message(ctx, 'register.sent.title', 'register.sent.heading', ['register.sent.text'], { href: backHref(ctx, uid), label: 'selfservice.back_to_signin' });
  });

  // ---------------------------------------------------------------- e-mail verification (registration and change)

  const tokenOf = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9_-]{20,100}$/.test(v) ? v : undefined);

  router.get('/verify-email', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(ctx.query.token);
    if (!token || !(await service.verificationPending(token))) return badLink(ctx);
    const tr = t(ctx);
    // A button rather than acting on GET: mail scanners that fetch links must not use them up.
    render(ctx, 'self-service/confirm', {
      title: tr('verify.title'),
      heading: tr('verify.heading'),
      intro: tr('verify.intro'),
      submit: tr('verify.submit'),
      action: '/verify-email',
      token,
      canonicalUrl: `/verify-email?token=${token}`,
    });
  });

  router.post('/verify-email', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(parseBody(ctx, tokenForm).token);
    const done = token ? await service.verifyEmail(token, ctx.ip) : undefined;
    if (!done) return badLink(ctx);
    message(ctx, 'verify.done.title', 'verify.done.heading', done.kind === 'registration' ? ['verify.done.text'] : [], {
      href: backHref(ctx, done.returnUid),
      label: 'verify.continue',
    });
  });

  // ---------------------------------------------------------------- password reset

  const renderRecover = (ctx: Context, uid: string | undefined, values: Record<string, string> = {}, errors: Record<string, string> = {}) =>
    render(ctx, 'self-service/recover', {
      title: t(ctx)('recover.title'),
      returnUid: uid,
      backHref: backHref(ctx, uid),
      values,
      errors,
      canonicalUrl: uid ? `/recover?return=${uid}` : '/recover',
    });

  router.get('/recover', async (ctx) => {
    requireMail();
    renderRecover(ctx, returnUid(ctx.query.return));
  });

  router.post('/recover', async (ctx) => {
    requireMail();
    const b = parseBody(ctx, recoverForm);
    const uid = returnUid(b.return);
    // A username or an e-mail address: nothing longer than an address is looked up (or throttled by).
    const identifier = bounded(b.identifier, EMAIL_MAX);
    if (!identifier) {
      ctx.status = 400;
      const error = identifier === undefined ? 'error.field.identifier' : 'error.field.required';
      return renderRecover(ctx, uid, { identifier: str(b.identifier, EMAIL_MAX) }, { identifier: t(ctx)(error) });
    }
    await spendMail(ctx, identifier);
    await service.requestPasswordReset(identifier, { locale: locale(ctx), returnUid: uid });
    message(ctx, 'recover.sent.title', 'recover.sent.title', ['recover.sent.text'], { href: backHref(ctx, uid), label: 'selfservice.back_to_signin' });
  });

  const renderReset = (ctx: Context, token: string, username: string, errors: Record<string, string> = {}) =>
    render(ctx, 'self-service/reset', {
      title: t(ctx)('reset.title'),
      token,
      username,
      errors,
      passwordMin: PASSWORD_MIN,
      passwordMax: PASSWORD_MAX,
      canonicalUrl: `/recover/reset?token=${token}`,
    });

  router.get('/recover/reset', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(ctx.query.token);
    const account = token ? await service.resetTarget(token) : undefined;
    if (!token || !account) return badLink(ctx);
    renderReset(ctx, token, account.username);
  });

  router.post('/recover/reset', async (ctx) => {
    await checkLinkBudget(ctx);
    const b = parseBody(ctx, resetForm);
    const token = tokenOf(b.token);
    const account = token ? await service.resetTarget(token) : undefined;
    if (!token || !account) return badLink(ctx);
    const errors: Record<string, string> = {};
    passwordErrors(ctx, str(b.password, PASSWORD_MAX + 1), str(b.password_confirm, PASSWORD_MAX + 1), account.username, errors);
    if (Object.keys(errors).length > 0) {
      ctx.status = 400;
      return renderReset(ctx, token, account.username, errors);
    }
    const done = await service.resetPassword(token, str(b.password, PASSWORD_MAX), ctx.ip);
    if (!done) return badLink(ctx);
    message(ctx, 'reset.done.title', 'reset.done.heading', ['reset.done.text'], { href: backHref(ctx, done.returnUid), label: 'verify.continue' });
  });

  // ---------------------------------------------------------------- re-enrolment after an administrator's reset

  router.get('/enrol-factor', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(ctx.query.token);
    if (!token || !(await service.reenrolLinkLive(token))) return badLink(ctx);
    const tr = t(ctx);
    // A button rather than acting on GET: mail scanners that fetch links must not use them up.
    render(ctx, 'self-service/confirm', {
      title: tr('reenrol.title'),
      heading: tr('reenrol.heading'),
      intro: tr('reenrol.intro'),
      submit: tr('reenrol.submit'),
      action: '/enrol-factor',
      token,
      canonicalUrl: `/enrol-factor?token=${token}`,
    });
  });

  /**
   * Keeps the link in this browser (an HttpOnly cookie for the sign-in pages); the next password
   * step of the account it was sent to uses it up and offers enrolment.
   */
  router.post('/enrol-factor', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(parseBody(ctx, tokenForm).token);
    if (!token || !(await service.reenrolLinkLive(token))) return badLink(ctx);
    ctx.cookies.set(REENROL_COOKIE, token, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, path: '/interaction', maxAge: 3600 * 1000, signed: false, overwrite: true });
    message(ctx, 'reenrol.done.title', 'reenrol.done.heading', ['reenrol.done.text'], { href: '/account', label: 'reenrol.continue' });
  });

  // ---------------------------------------------------------------- "this wasn't me"

  const codeSchema = z.string().trim().min(4).max(20);

  /** "authenticator app, 10 × recovery codes": what a list of factors amounts to, for the pages. */
  const factorList = (ctx: Context, factors: { type: string }[]) => {
    const counts = new Map<string, number>();
    for (const f of factors) counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
    return [...counts].map(([type, n]) => ({ type, count: n, label: t(ctx)(`notice.factor.${type}` as MessageKey) }));
  };

  const renderNotMe = async (ctx: Context, token: string, target: NonNullable<Awaited<ReturnType<SelfService['notMeTarget']>>>, error?: string) => {
    const enrolled = await deps.credentials.enrolledTypes(target.account.id);
    render(ctx, 'self-service/not-me', {
      title: t(ctx)('notme.title'),
      token,
      error,
      noFactor: !enrolled.has('totp') && !enrolled.has('recovery'),
      since: service.formatWhen(locale(ctx), target.since),
      suspect: factorList(ctx, target.suspect),
      canonicalUrl: `/not-me?token=${token}`,
    });
  };

  router.get('/not-me', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(ctx.query.token);
    const target = token ? await service.notMeTarget(token) : undefined;
    if (!token || !target) return badLink(ctx);
    await renderNotMe(ctx, token, target);
  });

  router.post('/not-me', async (ctx) => {
    await checkLinkBudget(ctx);
    const b = parseBody(ctx, notMeForm);
    const token = tokenOf(b.token);
    const target = token ? await service.notMeTarget(token) : undefined;
    if (!token || !target) return badLink(ctx);
    const { account } = target;
    await checkLinkBudget(ctx, account.id);
    // A second factor first: whoever holds only the mailbox cannot sign the citizen out everywhere.
    const code = codeSchema.safeParse(b.code);
    let proven = false;
    if (code.success) {
      const enrolled = await deps.credentials.enrolledTypes(account.id);
      const digits = /^\d{6,8}$/.test(code.data.replace(/\s/g, ''));
      try {
        if (digits && enrolled.has('totp')) proven = Boolean(await deps.totp.verify(account.id, code.data.replace(/\s/g, '')));
        else if (enrolled.has('recovery')) proven = Boolean(await deps.recovery.verify(account.id, code.data));
      } catch (err) {
        if (!(err instanceof KapijaError) || err.status !== 401) throw err;
      }
    }
    if (!proven) {
      const after = await throttles.link.fail(linkKeys(ctx, account.id));
      if (after > 0) throw rateLimited(after);
      ctx.status = 401;
      return renderNotMe(ctx, token, target, t(ctx)('error.factor.totp.invalid_code'));
    }
    await throttles.link.succeed(linkKeys(ctx, account.id));
    const receipt = await service.secure(token, ctx.ip);
    if (!receipt) return badLink(ctx);
    const services = await Promise.all(
      receipt.deliveries.map(async (d) => {
        const client = await deps.provider.Client.find(d.clientId);
        return { clientId: d.clientId, name: client?.clientName ?? d.clientId, backchannel: d.backchannel };
      }),
    );
    render(ctx, 'self-service/not-me-done', {
      title: t(ctx)('notme.done.title'),
      sessions: receipt.sessions,
      grants: receipt.grants,
      services,
      since: service.formatWhen(locale(ctx), receipt.since),
      removed: factorList(ctx, receipt.removed),
      resetSent: receipt.resetSent,
      canonicalUrl: '/not-me',
    });
  });

  return router;
}
