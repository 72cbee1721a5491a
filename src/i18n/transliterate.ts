/**
 * Serbian Latin → Cyrillic transliteration (one letter or digraph to one letter). The Cyrillic
 * catalogue is kept equal to the transliterated Latin one; `{placeholders}` and foreign names that
 * Serbian Cyrillic text keeps in Latin (QR, TOTP, JavaScript, JWT, JSON…) are left alone.
 */
const KEEP = /(\{\w+\}|\bQR\b|\bTOTP\b|\bJavaScript\b|\bJWKS\b|\bJWT\b|\bJSON\b|\bCSV\b|\bPKCE\b|\bHTTP Basic\b)/;
const DIGRAPHS: Record<string, string> = { Lj: 'Љ', LJ: 'Љ', lj: 'љ', Nj: 'Њ', NJ: 'Њ', nj: 'њ', Dž: 'Џ', DŽ: 'Џ', dž: 'џ' };
const LATIN = 'abvgdđežzijklmnoprstćufhcčšABVGDĐEŽZIJKLMNOPRSTĆUFHCČŠ';
const CYRILLIC = 'абвгдђежзијклмнопрстћуфхцчшАБВГДЂЕЖЗИЈКЛМНОПРСТЋУФХЦЧШ';
const SINGLE = new Map([...LATIN].map((c, i) => [c, CYRILLIC[i]!]));

export function latinToCyrillic(text: string): string {
  return text
    .split(KEEP)
    .map((part, index) => {
      if (index % 2 === 1) return part;
      let out = '';
      for (let i = 0; i < part.length; ) {
        const two = DIGRAPHS[part.slice(i, i + 2)];
        if (two) {
          out += two;
          i += 2;
        } else {
          out += SINGLE.get(part[i]!) ?? part[i];
          i += 1;
        }
      }
      return out;
    })
    .join('');
}

const CYRILLIC_TO_LATIN: Record<string, string> = { Љ: 'Lj', љ: 'lj', Њ: 'Nj', њ: 'nj', Џ: 'Dž', џ: 'dž' };
for (const [i, c] of [...CYRILLIC].entries()) CYRILLIC_TO_LATIN[c] ??= LATIN[i]!;

/** Serbian Cyrillic → Latin (Љ→Lj, Њ→Nj, Џ→Dž, one letter each otherwise); anything else is left alone. */
export function cyrillicToLatin(text: string): string {
  return [...text].map((c) => CYRILLIC_TO_LATIN[c] ?? c).join('');
}

/** True when the text has Serbian Cyrillic letters. */
export function hasCyrillic(text: string): boolean {
  return [...text].some((c) => c in CYRILLIC_TO_LATIN);
}
