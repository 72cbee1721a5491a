/**
 * /cookies: every cookie Kapija sets, with its purpose and lifetime, in the citizen's language.
 * Linked from the footer of every page. Lifetimes come from the configuration they follow.
 */
import type { Context, Next } from 'koa';
import type { Config } from '../config.js';
import type { Renderer } from './render.js';
import type { Translate } from '../i18n/index.js';
import { DEVICE_COOKIE_DAYS } from '../interactions/router.js';
import { hostCookie } from './cookie-names.js';
import { REENROL_COOKIE } from '../interactions/flow.js';
import { TRUSTED_COOKIE, TRUSTED_DAYS } from '../interactions/trusted-browser.js';

export function cookiesPage(opts: { render: Renderer; config: Config }) {
  const { ttl, portalIdleSeconds, issuer } = opts.config;
  const site = (name: string) => hostCookie(name, issuer.startsWith('https://'));
  const minutes = (s: number) => Math.max(1, Math.round(s / 60));
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.path !== '/cookies' || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const t = ctx.state.t as Translate;
    const rows = [
      { names: [site('kapija.session'), site('kapija.session.sig')], purpose: t('cookies.session.purpose'), lifetime: t('cookies.session.lifetime', { hours: Math.round(ttl.session / 3600), minutes: minutes(ttl.sessionIdle) }) },
      { names: ['kapija.interaction', 'kapija.interaction.sig', 'kapija.resume', 'kapija.resume.sig'], purpose: t('cookies.interaction.purpose'), lifetime: t('cookies.interaction.lifetime', { minutes: 30 }) },
      { names: [site('kapija.csrf'), site('kapija.csrf.sig')], purpose: t('cookies.csrf.purpose'), lifetime: t('cookies.browser_session') },
      { names: [site('kapija.lang')], purpose: t('cookies.lang.purpose'), lifetime: t('cookies.lang.lifetime') },
      { names: ['kapija.device'], purpose: t('cookies.device.purpose'), lifetime: t('cookies.device.lifetime', { days: DEVICE_COOKIE_DAYS }) },
      { names: [site(TRUSTED_COOKIE)], purpose: t('cookies.trusted.purpose'), lifetime: t('cookies.trusted.lifetime', { days: TRUSTED_DAYS }) },
      { names: ['kapija.account', 'kapija.account.tx'], purpose: t('cookies.account.purpose'), lifetime: t('cookies.account.lifetime', { minutes: minutes(portalIdleSeconds) }) },
      { names: ['kapija.account.totp', 'kapija.account.webauthn'], purpose: t('cookies.enrolment.purpose'), lifetime: t('cookies.enrolment.lifetime', { minutes: 15 }) },
      { names: ['kapija.admin', 'kapija.admin.tx'], purpose: t('cookies.admin.purpose'), lifetime: t('cookies.browser_session') },
      { names: [REENROL_COOKIE], purpose: t('cookies.reenrol.purpose'), lifetime: t('cookies.reenrol.lifetime', { minutes: 60 }) },
    ];
    opts.render(ctx, 'cookies', { title: t('cookies.title'), rows });
  };
}
