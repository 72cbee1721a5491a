/**
 * Server-side rendering of `views/*.eta`. Eta escapes every `<%= %>` output; only the layout's
 * `<%~ it.body %>` inserts already-rendered HTML.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context } from 'koa';
import { LOCALES, type Locale, type Translate } from '../i18n/index.js';

export interface PageState {
  locale: Locale;
  t: Translate;
  requestId: string;
  csrfToken?: string;
}

/** Finds `views/` beside the sources or the build output. */
function findViewsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    const candidate = path.join(dir, 'views');
    if (fs.existsSync(path.join(candidate, 'layout.eta'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('views/ not found');
}

export type Renderer = (ctx: Context, view: string, data: Record<string, unknown>) => void;

export function createRenderer(opts: { viewsDir?: string; cache?: boolean } = {}): {
  render: Renderer;
  renderToString(view: string, data: Record<string, unknown>, state: PageState, currentUrl: string): string;
} {
  const eta = new Eta({ views: opts.viewsDir ?? findViewsDir(), autoEscape: true, cache: opts.cache ?? true });

  const renderToString = (view: string, data: Record<string, unknown>, state: PageState, currentUrl: string) => {
    const url = new URL(currentUrl, 'http://kapija.invalid');
    const languages = LOCALES.map((l) => {
      url.searchParams.set('lang', l);
      return { locale: l, label: state.t(`lang.${l}`), href: url.pathname + url.search, current: l === state.locale };
    });
    const it = { ...data, t: state.t, locale: state.locale, csrfToken: state.csrfToken, requestId: state.requestId, languages };
    const body = eta.render(view, it);
    return eta.render('layout', { ...it, body });
  };

  return {
    renderToString,
    render(ctx, view, data) {
      const state = ctx.state as PageState;
      ctx.type = 'text/html; charset=utf-8';
      ctx.set('cache-control', 'no-store');
      // The language switcher links back to the page; after a POST that is the page the form was
      // on (canonicalUrl), never the POST's own URL.
      const current =
        ctx.method === 'GET' || ctx.method === 'HEAD'
          ? ctx.originalUrl
          : typeof data.canonicalUrl === 'string'
            ? data.canonicalUrl
            : ctx.path.replace(/^(\/interaction\/[^/]+)\/.*$/, '$1');
      ctx.body = renderToString(view, data, state, current);
    },
  };
}
