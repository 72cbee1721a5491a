/**
 * The methods a registered factor may yield beyond the built-in ones (RFC 8176 sc, sms, tel) reach
 * the level of their kind: a smart card like a hardware key, an SMS or call code like TOTP.
 */
import { completeAmr, levelFor } from '../../../src/assurance/levels.js';
import * as engineView from '../../../src/oidc/acr.js';
import * as levels from '../../../src/assurance/levels.js';

describe('levelFor beyond the built-in factors', () => {
  it.each([
    [['sc'], 'low'],
    [['sc', 'pin'], 'high'],
    [['pwd', 'sc'], 'high'],
    [['sms'], 'low'],
    [['pwd', 'sms'], 'substantial'],
    [['pwd', 'tel'], 'substantial'],
    [['sms', 'pin'], 'low'],
    [['tel', 'pin'], 'low'],
  ])('%j → %s', (amr, level) => {
    expect(levelFor(amr)).toBe(level);
  });

  it('counts a smart card with its PIN, or the password with an SMS code, as two factors', () => {
    expect(completeAmr(['sc', 'pin'])).toContain('mfa');
    expect(completeAmr(['pwd', 'sms'])).toContain('mfa');
    expect(completeAmr(['sc'])).not.toContain('mfa');
    expect(completeAmr(['sms'])).not.toContain('mfa');
  });

  it('counts a remembered browser with the password as substantial, never above, and never alone', () => {
    expect(levelFor(['pwd', levels.REMEMBERED_BROWSER])).toBe('substantial');
    expect(levelFor(completeAmr(['pwd', levels.REMEMBERED_BROWSER]))).toBe('substantial');
    expect(levelFor([levels.REMEMBERED_BROWSER])).toBe('low');
    expect(levelFor([levels.REMEMBERED_BROWSER, 'pin'])).toBe('low');
    expect(completeAmr(['pwd', levels.REMEMBERED_BROWSER])).toEqual(['pwd', levels.REMEMBERED_BROWSER, 'mfa']);
    expect(completeAmr(['pwd', levels.REMEMBERED_BROWSER])).not.toContain('otp');
  });

  it('is what the engine sees (oidc/acr re-exports the vocabulary)', () => {
    expect(engineView.levelFor).toBe(levels.levelFor);
    expect(engineView.ACR).toBe(levels.ACR);
  });
});
