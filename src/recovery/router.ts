/**
 * Recovery pages: `/recover` and `/recover/reset` (a new password by a mailed link),
 * `/enrol-factor` (a new second factor after an administrator's reset) and `/not-me` ("this
 * wasn't me", from a security notice).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { parseBody } from '../http/guard.js';
import { EMAIL_MAX } from '../http/validators.js';
import { PASSWORD_MAX, PASSWORD_MIN } from '../factors/password/policy.js';
import { REENROL_COOKIE } from '../interactions/flow.js';
import { notMeRoutes } from './not-me.js';
import { bounded, recoverForm, resetForm, str, tokenForm, type PageKit, type PageDeps } from '../registration/pages.js';

export function createRecoveryRouter(deps: PageDeps, kit: PageKit): Router {
  const { service, render } = deps;
  const { t, locale, returnUid, backHref, requireMail, spendMail, checkLinkBudget, badLink, message, passwordErrors, tokenOf, confirmLink } = kit;
  const router = new Router();

  // ---------------------------------------------------------------- password reset

  const renderRecover = (ctx: Context, uid: string | undefined, values: Record<string, string> = {}, errors: Record<string, string> = {}) =>
    render(ctx, 'recovery/recover', {
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
    render(ctx, 'recovery/reset', {
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
    confirmLink(ctx, 'reenrol', '/enrol-factor', token);
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

  notMeRoutes(router, deps, kit);
  return router;
}
