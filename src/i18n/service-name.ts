/**
 * A service's name in the page's language: `client_name#<locale>` when the service registered one;
 * on Latin and English pages otherwise the Latin name (`client_name#sr-Latn`), else `client_name`,
 * transliterated when it is in Cyrillic, so a Latin page never shows a name in Cyrillic.
 */
import type { Locale } from '../config.js';
import { cyrillicToLatin, hasCyrillic } from './transliterate.js';

export function serviceName(metadata: Record<string, unknown>, locale: Locale, fallback: string): string {
  const named = (key: string) => (typeof metadata[key] === 'string' && metadata[key] ? (metadata[key] as string) : undefined);
  const base = named('client_name') ?? fallback;
  if (locale === 'sr-Cyrl') return named('client_name#sr-Cyrl') ?? base;
  const own = named(`client_name#${locale}`) ?? named('client_name#sr-Latn');
  if (own) return own;
  return hasCyrillic(base) ? cyrillicToLatin(base) : base;
}
