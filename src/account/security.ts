/**
 * The sign-in and security page: the second factors (named by the factor registry), adding an
 * authenticator app or a security key, removing one (never the last that may stand alone), new
 * recovery codes. Each change needs both factors proven recently.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { KapijaError, assertThat } from '../errors.js';
import { displayEnrolment } from '../factors/totp/index.js';
import type { Account } from '../store/accounts.js';
import type { PortalKit } from './kit.js';

export function securityRoutes(router: Router, p: PortalKit): void {
  const { d, t, body, fmt, recent, citizen, requireCitizen, requireRecentAuth, page } = p;
  const PENDING_TOTP = 'kapija.account.totp';
  const securityPage = async (ctx: Context, me: { account: Account }, extra: Record<string, unknown> = {}) => {
    const creds = await d.credentials.list(me.account.id);
    page(ctx, 'account/security', 'account.security.title', {
      factors: creds
        .filter((c) => d.factors.listed(c.type))
        .map((c) => ({ id: c.id, type: c.type, typeLabel: d.factors.label(c.type), name: c.name ?? c.type, added: fmt(ctx, c.createdAt), lastUsed: fmt(ctx, c.lastUsedAt ?? undefined) })),
      recoveryRemaining: (await d.factors.backup?.remaining(me.account.id)) ?? 0,
      ...extra,
    });
  };

  router.get('/security', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    await securityPage(ctx, me);
  });

  router.post('/security/remove', requireCitizen, requireRecentAuth('/account/security'), async (ctx) => {
    const me = citizen(ctx);
    const id = String(body(ctx).id ?? '');
    const creds = await d.credentials.list(me.account.id);
    const target = creds.find((c) => c.id === id && d.factors.listed(c.type));
    assertThat(target, 'request.not_found', 404);
    // Never the last second factor that may stand alone (recovery codes may not).
    const others = creds.filter((c) => c.id !== id && d.factors.standsAlone(c.type));
    if (others.length === 0) {
      ctx.status = 409;
      return securityPage(ctx, me, { error: t(ctx)('error.factor.last_one') });
    }
    await d.credentials.remove(me.account.id, id);
    await d.events.emit('factor.removed', { accountId: me.account.id, type: target.type, ip: ctx.ip });
    ctx.status = 303;
    ctx.redirect('/account/security');
  });

  router.post('/security/recovery-codes', requireCitizen, requireRecentAuth('/account/security'), async (ctx) => {
    const me = citizen(ctx);
    assertThat(d.factors.backup, 'request.not_found', 404);
    const codes = await d.factors.backup.issue(me.account.id);
    await d.events.emit('factor.enrolled', { accountId: me.account.id, type: 'recovery', ip: ctx.ip });
    page(ctx, 'account/recovery-codes', 'codes.title', { codes });
  });

  // WebAuthn (JSON, from static/webauthn.js): the challenge waits in a sealed, short-lived cookie and
  // is cleared on every verification attempt.
  const CHALLENGE = 'kapija.account.webauthn';
  const challengeCookie = { httpOnly: true, sameSite: 'strict' as const, secure: d.secureCookies, path: '/account/security', overwrite: true };

  router.post('/security/webauthn/options', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    if (!recent(ctx, me.session, '/account/security')) {
      ctx.status = 401;
      ctx.body = { error: 'reauthentication_required', location: '/account/login?return=/account/security' };
      return;
    }
    const options = await d.webauthn.registrationOptions(me.account.id, me.account.username);
    ctx.cookies.set(CHALLENGE, d.box.seal(options.challenge, `${CHALLENGE}:${me.account.id}`), { ...challengeCookie, maxAge: 5 * 60 * 1000 });
    ctx.body = options;
  });

  router.post('/security/webauthn', requireCitizen, requireRecentAuth('/account/security'), async (ctx) => {
    const me = citizen(ctx);
    const sealed = ctx.cookies.get(CHALLENGE);
    ctx.cookies.set(CHALLENGE, null, challengeCookie);
    let challenge: string | undefined;
    try {
      challenge = sealed ? d.box.openString(sealed, `${CHALLENGE}:${me.account.id}`) : undefined;
    } catch {
      challenge = undefined;
    }
    const b = body(ctx);
    if (!challenge || !b.response || typeof b.response !== 'object') throw new KapijaError('factor.webauthn.failed', 401);
    await d.webauthn.register(me.account.id, challenge, b.response, String(b.name ?? '').slice(0, 100) || 'Security key');
    await d.events.emit('factor.enrolled', { accountId: me.account.id, type: 'webauthn', ip: ctx.ip });
    ctx.body = { location: '/account/security' };
  });

  router.get('/security/totp', requireCitizen, requireRecentAuth('/account/security/totp'), async (ctx) => {
    const me = citizen(ctx);
    const enrolment = await d.totp.begin(me.account.username);
    ctx.cookies.set(PENDING_TOTP, d.totp.sealSecret(enrolment.secret, me.account.id), {
      httpOnly: true,
      sameSite: 'lax',
      secure: d.secureCookies,
      path: '/account/security',
      maxAge: 15 * 60 * 1000,
      overwrite: true,
    });
    page(ctx, 'account/totp', 'enrol.title', displayEnrolment(enrolment));
  });

  router.post('/security/totp', requireCitizen, requireRecentAuth('/account/security/totp'), async (ctx) => {
    const me = citizen(ctx);
    const sealed = ctx.cookies.get(PENDING_TOTP);
    assertThat(sealed, 'interaction.expired');
    const secret = d.totp.openSecret(sealed, me.account.id);
    const parsed = z.object({ code: z.string().max(16) }).safeParse(body(ctx));
    try {
      await d.totp.finish(me.account.id, secret, parsed.success ? parsed.data.code : '', String(body(ctx).name ?? '').slice(0, 100) || undefined);
    } catch (err) {
      if (!(err instanceof KapijaError)) throw err;
      ctx.status = 401;
      const enrolment = await d.totp.view(secret, me.account.username);
      return page(ctx, 'account/totp', 'enrol.title', { ...displayEnrolment(enrolment), error: t(ctx)('error.factor.totp.invalid_code') });
    }
    ctx.cookies.set(PENDING_TOTP, null, { path: '/account/security' });
    await d.events.emit('factor.enrolled', { accountId: me.account.id, type: 'totp', ip: ctx.ip });
    ctx.status = 303;
    ctx.redirect('/account/security');
  });
}
