/**
 * Recovery pages: `/recover` and `/recover/reset` (a new password by a mailed link),
 * `/enrol-factor` (a new second factor after an administrator's reset) and `/not-me` ("this
 * wasn't me", from a security notice).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { KapijaError } from '../errors.js';
import { parseBody } from '../http/guard.js';
import { EMAIL_MAX } from '../http/validators.js';
import type { MessageKey } from '../i18n/index.js';
import { PASSWORD_MAX, PASSWORD_MIN } from '../factors/password/policy.js';
import { REENROL_COOKIE } from '../interactions/flow.js';
import { bounded, notMeForm, recoverForm, resetForm, str, tokenForm, type PageKit, type SelfServiceRouterDeps } from '../registration/pages.js';
import type { SelfService } from '../registration/service.js';

export function createRecoveryRouter(deps: SelfServiceRouterDeps, kit: PageKit): Router {
  const { service, render, throttles } = deps;
  const { t, locale, returnUid, backHref, requireMail, rateLimited, spendMail, linkKeys, checkLinkBudget, badLink, message, passwordErrors, tokenOf } = kit;
  const router = new Router();

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
