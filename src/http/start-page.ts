/**
 * `/`: what Kapija is, with the ways in: the account portal for citizens; the administration
 * console, the discovery document and the admin API description for operators and services.
 */
import type { Context, Next } from 'koa';
import type { Renderer } from './render.js';
import type { Translate } from '../i18n/index.js';

export function startPage(opts: { render: Renderer }) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.path !== '/' || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const t = ctx.state.t as Translate;
    opts.render(ctx, 'start', { title: t('start.title') });
  };
}
