/**
 * The three catalogues say the same things: the same keys as English, no empty message, and the
 * same placeholders, so no page shows a raw key or an unfilled {name}.
 */
import { en } from '../../../src/i18n/messages/en.js';
import { srCyrl } from '../../../src/i18n/messages/sr-Cyrl.js';
import { srLatn } from '../../../src/i18n/messages/sr-Latn.js';

const catalogues: Record<string, Record<string, string>> = { en, 'sr-Latn': srLatn, 'sr-Cyrl': srCyrl };
const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

/** The Serbian catalogues, each compared with en (comparing en with itself would prove nothing). */
const translations = Object.keys(catalogues).filter((name) => name !== 'en');

describe.each(translations)('catalogue %s', (name) => {
  const messages = catalogues[name]!;

  it('has exactly the keys of en', () => {
    const keys = Object.keys(messages).sort();
    const expected = Object.keys(en).sort();
    expect({ missing: expected.filter((k) => !keys.includes(k)), extra: keys.filter((k) => !expected.includes(k)) }).toEqual({
      missing: [],
      extra: [],
    });
  });

  it('uses the same placeholders as en', () => {
    const differing = Object.keys(en).filter(
      (k) => k in messages && placeholders(messages[k]!).join() !== placeholders((en as Record<string, string>)[k]!).join(),
    );
    expect(differing).toEqual([]);
  });
});

describe.each(Object.keys(catalogues))('catalogue %s', (name) => {
  it('has no empty message', () => {
    const empty = Object.entries(catalogues[name]!).filter(([, v]) => typeof v !== 'string' || v.trim() === '').map(([k]) => k);
    expect(empty).toEqual([]);
  });
});

it('Cyrillic and Latin catalogues are really in their scripts', () => {
  expect(srCyrl['login.title']).toMatch(/^[\u0400-\u04ff\s]+$/);
  expect(srLatn['login.title']).toMatch(/^[A-Za-zčćđšžČĆĐŠŽ\s]+$/);
});
