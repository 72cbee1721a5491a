/**
 * Language negotiation (ui_locales > cookie > Accept-Language > default) and tag mapping.
 */
import { LOCALES, matchLocale, negotiateLocale, translator } from '../../../src/i18n/index.js';

describe('matchLocale', () => {
  it.each([
    ['sr', 'sr-Cyrl'],
    ['sr-RS', 'sr-Cyrl'],
    ['sr_RS', 'sr-Cyrl'],
    ['SR-rs', 'sr-Cyrl'],
    ['sr-Cyrl', 'sr-Cyrl'],
    ['sr-Cyrl-RS', 'sr-Cyrl'],
    ['sr-Latn', 'sr-Latn'],
    ['sr-Latn-RS', 'sr-Latn'],
    ['sr-Latn-ME', 'sr-Latn'],
    ['sh', 'sr-Latn'],
    ['hr', 'sr-Latn'],
    ['bs-Cyrl', 'sr-Cyrl'],
    ['en', 'en'],
    ['en-GB', 'en'],
    ['en-US', 'en'],
    ['de-DE', undefined],
    ['fr', undefined],
    ['', undefined],
    [undefined, undefined],
    [null, undefined],
  ])('%j → %j', (tag, expected) => {
    expect(matchLocale(tag)).toBe(expected);
  });
});

describe('negotiateLocale', () => {
  const fallback = 'sr-Cyrl' as const;

  it('prefers ui_locales over the cookie and Accept-Language', () => {
    expect(negotiateLocale({ uiLocales: 'en', cookie: 'sr-Latn', acceptLanguage: 'sr-Latn-RS', fallback })).toBe('en');
  });

  it('takes the first supported tag of ui_locales', () => {
    expect(negotiateLocale({ uiLocales: 'de fr-CA sr-Latn en', cookie: 'en', fallback })).toBe('sr-Latn');
  });

  it('uses the cookie when ui_locales has nothing supported', () => {
    expect(negotiateLocale({ uiLocales: 'de', cookie: 'sr-Latn', acceptLanguage: 'en', fallback })).toBe('sr-Latn');
    expect(negotiateLocale({ cookie: 'en', acceptLanguage: 'sr', fallback })).toBe('en');
  });

  it('ignores a cookie that is not an exact supported locale', () => {
    expect(negotiateLocale({ cookie: 'EN', acceptLanguage: 'sr-Latn', fallback })).toBe('sr-Latn');
    expect(negotiateLocale({ cookie: 'de', fallback })).toBe(fallback);
  });

  it('uses Accept-Language by quality, then order', () => {
    expect(negotiateLocale({ acceptLanguage: 'de-DE, en-GB;q=0.8, sr-Latn-RS;q=0.9', fallback })).toBe('sr-Latn');
    expect(negotiateLocale({ acceptLanguage: 'en-GB,sr;q=0.5', fallback })).toBe('en');
    expect(negotiateLocale({ acceptLanguage: 'sr-RS;q=0.7, en;q=0.7', fallback })).toBe('sr-Cyrl');
    expect(negotiateLocale({ acceptLanguage: 'en;q=0, sr-Latn;q=0.1', fallback })).toBe('sr-Latn');
  });

  it('falls back to the deployment default', () => {
    expect(negotiateLocale({ fallback })).toBe('sr-Cyrl');
    expect(negotiateLocale({ acceptLanguage: 'de, fr;q=0.5, *;q=0.1', fallback: 'en' })).toBe('en');
    expect(negotiateLocale({ uiLocales: '', cookie: '', acceptLanguage: '', fallback: 'sr-Latn' })).toBe('sr-Latn');
  });
});

describe('translator', () => {
  it('translates per locale and fills placeholders', () => {
    expect(translator('en')('login.heading', { client: 'eUprava' })).toBe('Sign in to the service: eUprava');
    expect(translator('sr-Latn')('login.title')).toBe('Prijava');
    expect(translator('sr-Cyrl')('login.title')).toBe('Пријава');
    expect(LOCALES).toEqual(['sr-Cyrl', 'sr-Latn', 'en']);
  });

  it('leaves unknown placeholders as they are', () => {
    expect(translator('en')('login.heading', { other: 'x' })).toBe('Sign in to the service: {client}');
  });
});
