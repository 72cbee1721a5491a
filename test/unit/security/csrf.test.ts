/**
 * The signed double-submit CSRF token: valid only for its own secret and a live key.
 */
import { createCsrf } from '../../../src/security/csrf.js';

describe('createCsrf', () => {
  const csrf = createCsrf(['key-current']);

  it('needs a key', () => {
    expect(() => createCsrf([])).toThrow();
  });

  it('accepts the token made for the secret', () => {
    const secret = csrf.newSecret();
    expect(csrf.verify(secret, csrf.tokenFor(secret))).toBe(true);
  });

  it('makes fresh random secrets, and tokens that do not reveal them', () => {
    const a = csrf.newSecret();
    const b = csrf.newSecret();
    expect(a).not.toBe(b);
    expect(Buffer.from(a, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(csrf.tokenFor(a)).not.toBe(csrf.tokenFor(b));
    expect(csrf.tokenFor(a)).not.toContain(a);
  });

  it("rejects another secret's token", () => {
    const a = csrf.newSecret();
    const b = csrf.newSecret();
    expect(csrf.verify(a, csrf.tokenFor(b))).toBe(false);
  });

  it('rejects the bare secret sent as the token', () => {
    const secret = csrf.newSecret();
    expect(csrf.verify(secret, secret)).toBe(false);
  });

  it.each([
    ['a missing cookie', undefined, 'token'],
    ['an empty cookie', '', 'token'],
  ])('rejects %s', (_name, secret, token) => {
    expect(csrf.verify(secret, token)).toBe(false);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['an array', ['x']],
    ['a number', 42],
    ['oversized', 'a'.repeat(129)],
  ])('rejects a token that is %s', (_name, token) => {
    const secret = csrf.newSecret();
    expect(csrf.verify(secret, token)).toBe(false);
  });

  it('rejects a token made with another key', () => {
    const secret = csrf.newSecret();
    expect(csrf.verify(secret, createCsrf(['other-key']).tokenFor(secret))).toBe(false);
  });

  it('still accepts tokens of a rotated-out key that is kept, and signs with the newest', () => {
    const secret = csrf.newSecret();
    const oldToken = csrf.tokenFor(secret);
    const rotated = createCsrf(['key-next', 'key-current']);
    expect(rotated.verify(secret, oldToken)).toBe(true);
    expect(rotated.tokenFor(secret)).toBe(createCsrf(['key-next']).tokenFor(secret));
    expect(createCsrf(['key-next']).verify(secret, oldToken)).toBe(false);
  });
});
