/**
 * The profile page: the password (with the current one; every other session ends) and the e-mail
 * address (changed through a link to the new one).
 */
import type Router from '@koa/router';
import { isEmail } from '../http/validators.js';
import type { MessageKey, Locale } from '../i18n/index.js';
import { PASSWORD_MAX, PASSWORD_MIN, checkNewPassword } from '../factors/password/policy.js';
import type { PortalKit } from './kit.js';

export function profileRoutes(router: Router, p: PortalKit): void {
  const { d, t, body, citizen, requireCitizen, requireRecentAuth, page } = p;
  router.get('/profile', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    page(ctx, 'account/profile', 'account.profile', { account: me.account, passwordMin: PASSWORD_MIN, passwordMax: PASSWORD_MAX, done: ctx.query.done });
  });

  router.post('/password', requireCitizen, requireRecentAuth('/account/profile'), async (ctx) => {
    const me = citizen(ctx);
    const b = body(ctx);
    const current = typeof b.current_password === 'string' ? b.current_password.slice(0, 1024) : '';
    const next = typeof b.new_password === 'string' ? b.new_password : '';
    const tr = t(ctx);
    const creds = await d.accounts.findCredentialsByUsername(me.account.username);
    let error: string | undefined;
    if (!(await d.passwords.verify(creds?.passwordHash, current))) error = tr('account.password.wrong');
    else if (next !== b.new_password_confirm) error = tr('error.password.mismatch');
    else {
      const problem = checkNewPassword(next, { username: me.account.username });
      if (problem) error = tr(`error.password.${problem}` as MessageKey, { min: PASSWORD_MIN, max: PASSWORD_MAX });
    }
    if (error) {
      ctx.status = 400;
      return page(ctx, 'account/profile', 'account.profile', { account: me.account, passwordMin: PASSWORD_MIN, passwordMax: PASSWORD_MAX, passwordError: error });
    }
    await d.accounts.setPasswordHash(me.account.id, await d.passwords.hash(next));
    // Whoever is signed in elsewhere with the old password is signed out, their services told by
    // back-channel logout and their tokens revoked, as on the sessions page; this browser stays.
    const others = (await d.sessions.listForAccount(me.account.id)).filter((s) => s.uid !== me.session.sessionUid);
    for (const s of others) await d.sessions.end(s.id, { accountId: me.account.id });
    await d.events.emit('account.password_changed', { accountId: me.account.id, via: 'portal', ip: ctx.ip });
    ctx.status = 303;
    ctx.redirect('/account/profile?done=password');
  });

  router.post('/email', requireCitizen, requireRecentAuth('/account/profile'), async (ctx) => {
    const me = citizen(ctx);
    const email = typeof body(ctx).email === 'string' ? String(body(ctx).email).trim() : '';
    // At most 254 characters (RFC 5321), the length the column holds.
    if (!isEmail(email)) {
      ctx.status = 400;
      return page(ctx, 'account/profile', 'account.profile', { account: me.account, passwordMin: PASSWORD_MIN, passwordMax: PASSWORD_MAX, emailError: t(ctx)('account.email.invalid') });
    }
    await d.requestEmailChange(me.account.id, email, ctx.state.locale as Locale);
    ctx.status = 303;
    ctx.redirect('/account/profile?done=email');
  });
}
