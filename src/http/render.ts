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

/** The Intl locale of each page language; English pages use British (day-month) order. */
const INTL_LOCALES: Record<Locale, string> = { 'sr-Cyrl': 'sr-Cyrl-RS', 'sr-Latn': 'sr-Latn-RS', en: 'en-GB' };
const dateFormats = new Map<Locale, Intl.DateTimeFormat>();

/**
 * A moment as the reader of a page in `locale` writes it, in the server's time zone (TZ), with the
 * zone named; what is not a date is returned as it came.
 */
export function formatDateTime(value: string | Date | null | undefined, locale: Locale): string {
  if (value === null || value === undefined || value === '') return '';
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  let format = dateFormats.get(locale);
  if (!format) {
    format = new Intl.DateTimeFormat(INTL_LOCALES[locale], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
    dateFormats.set(locale, format);
  }
  return format.format(date);
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
    const date = (value: string | Date | null | undefined) => formatDateTime(value, state.locale);
    const it = { ...data, t: state.t, locale: state.locale, csrfToken: state.csrfToken, requestId: state.requestId, languages, date };
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
