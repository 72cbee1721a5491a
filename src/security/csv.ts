/**
 * CSV cells for every export (RFC 4180), safe to open in a spreadsheet: a cell that starts with
 * `=`, `+`, `-`, `@`, a tab or a carriage return would run as a formula there, so it is prefixed
 * with `'` (OWASP CSV injection). A cell with a quote, comma or line break is quoted.
 */
export function csvCell(value: unknown, opts: { quote?: 'always' | 'when-needed' } = {}): string {
  let s = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return opts.quote === 'always' || /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
