/**
 * NIST SP 800-63B §5.1.1.2 rules for a new password: at least 8 characters (Kapija always adds a
 * second factor, for which 800-63B-4 keeps 8 as the minimum), at most 128 (well over the 64 NIST
 * asks to allow), every printable character and space allowed, no composition rules, and a
 * refusal of passwords found in a list of common and breached ones. The list ships with Kapija
 * (the ~49,000 most frequent passwords of breach corpora, from @zxcvbn-ts/language-common), so
 * the check needs no network: government networks often cannot reach outside services.
 */
import { dictionary } from '@zxcvbn-ts/language-common';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

export type PasswordProblem = 'too_short' | 'too_long' | 'common' | 'contains_username';

let common: Set<string> | undefined;
function commonPasswords(): Set<string> {
  common ??= new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  return common;
}

/** Length in characters as a person counts them (code points, not UTF-16 units). */
const length = (s: string) => [...s].length;

/**
 * Checks a new password; returns the first problem, or undefined when it is acceptable.
 * Comparison with the list ignores case, so "Password1" is refused as "password1" is.
 */
export function checkNewPassword(password: string, context: { username?: string | undefined } = {}): PasswordProblem | undefined {
  const n = length(password);
  if (n < PASSWORD_MIN) return 'too_short';
  if (n > PASSWORD_MAX) return 'too_long';
  const lower = password.toLowerCase();
  if (commonPasswords().has(lower) || commonPasswords().has(lower.trim())) return 'common';
  const username = context.username?.trim().toLowerCase();
  if (username && username.length >= 3 && lower.includes(username)) return 'contains_username';
  return undefined;
}
