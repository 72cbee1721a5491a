/**
 * NIST 800-63B rules for new passwords: length in characters, no composition rules, and the
 * shipped list of common and breached passwords (case-insensitive).
 */
import { checkNewPassword, PASSWORD_MAX, PASSWORD_MIN } from '../../../../src/factors/password/policy.js';

describe('checkNewPassword', () => {
  it('accepts a long passphrase without digits or symbols (no composition rules)', () => {
    expect(checkNewPassword('jesen na kalemegdanu')).toBeUndefined();
  });

  it('counts characters, not bytes: eight Cyrillic letters are enough', () => {
    expect(PASSWORD_MIN).toBe(8);
    expect(checkNewPassword('ћирилица')).toBeUndefined();
    expect(checkNewPassword('ћирилиц')).toBe('too_short');
  });

  it('allows at least 64 characters and refuses more than the maximum', () => {
    expect(PASSWORD_MAX).toBeGreaterThanOrEqual(64);
    expect(checkNewPassword('a b c d e f g h '.repeat(8))).toBeUndefined();
    expect(checkNewPassword('x'.repeat(PASSWORD_MAX + 1))).toBe('too_long');
  });

  it.each(['password1', 'PASSWORD1', 'iloveyou', 'qwertyuiop', '12345678', 'P@ssw0rd'])('refuses the common or breached %s', (pw) => {
    expect(checkNewPassword(pw)).toBe('common');
  });

  it('refuses a password containing the username', () => {
    expect(checkNewPassword('ana.jovanovic rocks', { username: 'Ana.Jovanovic' })).toBe('contains_username');
    expect(checkNewPassword('ana.jovanovic rocks', { username: 'petar' })).toBeUndefined();
  });
});
