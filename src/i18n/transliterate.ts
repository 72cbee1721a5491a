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
