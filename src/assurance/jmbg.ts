/**
 * JMBG (jedinstveni matični broj građana), the 13-digit unique master citizen number:
 * DDMMYYYRRBBBK — date of birth (YYY is the year without its first digit), region, serial and a
 * modulo-11 check digit.
 */
export function isValidJmbg(value: string): boolean {
  if (!/^\d{13}$/.test(value)) return false;
  const a = [...value].map(Number);
  const day = a[0]! * 10 + a[1]!;
  const month = a[2]! * 10 + a[3]!;
  const yyy = a[4]! * 100 + a[5]! * 10 + a[6]!;
  const year = yyy >= 800 ? 1000 + yyy : 2000 + yyy;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return false;
  const sum = 7 * (a[0]! + a[6]!) + 6 * (a[1]! + a[7]!) + 5 * (a[2]! + a[8]!) + 4 * (a[3]! + a[9]!) + 3 * (a[4]! + a[10]!) + 2 * (a[5]! + a[11]!);
  let check = 11 - (sum % 11);
  if (check > 9) check = 0;
  return check === a[12];
}
