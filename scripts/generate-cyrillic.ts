/**
 * Regenerates src/i18n/messages/sr-Cyrl.ts from sr-Latn.ts: `npm run i18n:cyrillic`.
 * Language names (lang.*) are kept as written.
 */
import fs from 'node:fs';
import { srLatn } from '../src/i18n/messages/sr-Latn.js';
import { latinToCyrillic } from '../src/i18n/transliterate.js';

const lines = Object.entries(srLatn).map(([key, value]) => {
  const text = key.startsWith('lang.') ? value : latinToCyrillic(value);
  return `  ${JSON.stringify(key).replace(/^"|"$/g, "'")}: ${JSON.stringify(text).replace(/\\"/g, '"').replace(/'/g, "\\'").replace(/^"|"$/g, "'")},`;
});
const out = `/** Serbian, Cyrillic script (the default language). Generated from sr-Latn.ts by scripts/generate-cyrillic.ts. */
import type { Messages } from './en.js';

export const srCyrl = {
${lines.join('\n')}
} as const satisfies Messages;
`;
fs.writeFileSync(new URL('../src/i18n/messages/sr-Cyrl.ts', import.meta.url), out);
