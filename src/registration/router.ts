/**
 * Registration pages: `/register` and `/verify-email` (which completes a registration or an
 * e-mail change started in the account portal).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { parseBody } from '../http/guard.js';
import { EMAIL_MAX, USERNAME_MAX, isEmail, isUsername } from '../http/validators.js';
import { PASSWORD_MAX, PASSWORD_MIN } from '../factors/password/policy.js';
import { normaliseUsername } from '../store/accounts.js';
import { NAME_MAX, bounded, registerForm, str, tokenForm, type PageKit, type PageDeps } from './pages.js';

export function createRegistrationRouter(deps: PageDeps, kit: PageKit): Router {
  const { service, render } = deps;
  const { t, locale, returnUid, backHref, requireMail, spendMail, checkLinkBudget, badLink, message, passwordErrors, tokenOf, confirmLink } = kit;
  const router = new Router();

  // ---------------------------------------------------------------- registration

  const renderRegister = (ctx: Context, uid: string | undefined, values: Record<string, string> = {}, errors: Record<string, string> = {}) =>
    render(ctx, 'registration/register', {
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

  router.get('/verify-email', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(ctx.query.token);
    if (!token || !(await service.verificationPending(token))) return badLink(ctx);
    confirmLink(ctx, 'verify', '/verify-email', token);
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

  return router;
}
