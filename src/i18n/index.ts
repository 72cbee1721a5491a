/**
 * Message catalogues and language negotiation. Order of preference: the `ui_locales` the service
 * asked for, the citizen's remembered choice (cookie), then the browser's Accept-Language, then the
 * deployment default (Serbian Cyrillic).
 */
import type { Locale } from '../config.js';
import { en, type MessageKey, type Messages } from './messages/en.js';
import { srCyrl } from './messages/sr-Cyrl.js';
import { srLatn } from './messages/sr-Latn.js';

export type { MessageKey, Messages, Locale };
export const LOCALES: readonly Locale[] = ['sr-Cyrl', 'sr-Latn', 'en'];
export const LOCALE_COOKIE = 'kapija.lang';

const catalogues: Record<Locale, Messages> = { 'sr-Cyrl': srCyrl, 'sr-Latn': srLatn, en };

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

export function translator(locale: Locale): Translate {
  const messages = catalogues[locale];
  return (key, vars) => {
    const text = messages[key] ?? en[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m)) : text;
  };
}

/** Maps a BCP 47 tag to a supported locale: sr, sr-RS, sr-Cyrl-* → sr-Cyrl; sr-Latn-* → sr-Latn; en-* → en. */
export function matchLocale(tag: string | undefined | null): Locale | undefined {
  if (!tag) return undefined;
  const parts = tag.trim().toLowerCase().split(/[-_]/);
  if (parts[0] === 'en') return 'en';
  if (parts[0] === 'sr' || parts[0] === 'sh' || parts[0] === 'bs' || parts[0] === 'hr' || parts[0] === 'cnr') {
    if (parts.includes('latn')) return 'sr-Latn';
    if (parts.includes('cyrl') || parts[0] === 'sr') return 'sr-Cyrl';
    return 'sr-Latn';
  }
  return undefined;
}

export function negotiateLocale(input: {
  uiLocales?: string | undefined;
  cookie?: string | undefined;
  acceptLanguage?: string | undefined;
  fallback: Locale;
}): Locale {
  for (const tag of (input.uiLocales ?? '').split(/\s+/)) {
    const l = matchLocale(tag);
    if (l) return l;
  }
  const fromCookie = LOCALES.find((l) => l === input.cookie);
  if (fromCookie) return fromCookie;
  const ranked = (input.acceptLanguage ?? '')
    .split(',')
    .map((part, i) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)).find(Boolean);
      return { tag, q: q ? Number(q[1]) : 1, i };
    })
    .filter((x) => x.tag && x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { tag } of ranked) {
    const l = matchLocale(tag);
    if (l) return l;
  }
  return input.fallback;
}
