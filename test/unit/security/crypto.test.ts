/**
 * Envelope encryption: round trip, context binding, tamper and wrong-key detection, constant-time
 * comparison and keyed hashes.
 */
import { randomBytes } from 'node:crypto';
import { constantTimeEqual, createSecretBox, randomToken } from '../../../src/security/crypto.js';

const box = createSecretBox(randomBytes(32));

/** Flips one byte of the base64url part `index` of a sealed value. */
function tamper(sealed: string, index: number): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[index]!, 'base64url');
  bytes[0] = bytes[0]! ^ 0x01;
  parts[index] = bytes.toString('base64url');
  return parts.join('.');
}

describe('createSecretBox', () => {
  it('round-trips strings and buffers', () => {
    const text = 'JBSWY3DPEHPK3PXP — тајна 😀';
    expect(box.openString(box.seal(text, 'totp:1'), 'totp:1')).toBe(text);
    const bytes = randomBytes(64);
    expect(box.open(box.seal(bytes, 'key:sig:1'), 'key:sig:1').equals(bytes)).toBe(true);
    expect(box.openString(box.seal('', 'empty'), 'empty')).toBe('');
  });

  it('seals the same value differently each time and never shows it', () => {
    const secret = 'client-secret-value-123456';
    const a = box.seal(secret, 'c');
    const b = box.seal(secret, 'c');
    expect(a).not.toBe(b);
    expect(a.startsWith('v1.')).toBe(true);
    expect(a).not.toContain(secret);
    expect(a).not.toContain(Buffer.from(secret).toString('base64url'));
  });

  it('refuses to open under another context', () => {
    const sealed = box.seal('secret', 'client_secret:rp-a');
    expect(() => box.open(sealed, 'client_secret:rp-b')).toThrow();
    expect(() => box.open(sealed, '')).toThrow();
  });

  it.each([
    ['wrapped data key', 2],
    ['wrapping tag', 3],
    ['data iv', 4],
    ['ciphertext', 5],
    ['data tag', 6],
  ])('detects a tampered %s', (_name, index) => {
    const sealed = box.seal('secret', 'ctx');
    expect(() => box.open(tamper(sealed, index), 'ctx')).toThrow();
  });

  it('rejects malformed and unknown-version values', () => {
    const sealed = box.seal('secret', 'ctx');
    expect(() => box.open(sealed.replace(/^v1\./, 'v2.'), 'ctx')).toThrow(/unrecognised/);
    expect(() => box.open(sealed.split('.').slice(0, 6).join('.'), 'ctx')).toThrow(/unrecognised/);
    expect(() => box.open('not sealed', 'ctx')).toThrow();
  });

  it('refuses to open with another master key', () => {
    const sealed = box.seal('secret', 'ctx');
    expect(() => createSecretBox(randomBytes(32)).open(sealed, 'ctx')).toThrow();
  });

  it('opens with a box made from the same master key', () => {
    const key = randomBytes(32);
    expect(createSecretBox(Buffer.from(key)).openString(createSecretBox(key).seal('secret', 'ctx'), 'ctx')).toBe('secret');
  });

  it('requires a 32-byte master key', () => {
    expect(() => createSecretBox(randomBytes(16))).toThrow(/32 bytes/);
    expect(() => createSecretBox(Buffer.alloc(0))).toThrow(/32 bytes/);
  });

  it('mac is a keyed hash, deterministic per key and purpose', () => {
    const key = randomBytes(32);
    const a = createSecretBox(key);
    expect(a.mac('recovery', 'abcd-efgh')).toBe(createSecretBox(key).mac('recovery', 'abcd-efgh'));
    expect(a.mac('recovery', 'abcd-efgh')).not.toBe(a.mac('other', 'abcd-efgh'));
    expect(a.mac('recovery', 'abcd-efgh')).not.toBe(a.mac('recovery', 'abcd-efgi'));
    expect(a.mac('recovery', 'abcd-efgh')).not.toBe(createSecretBox(randomBytes(32)).mac('recovery', 'abcd-efgh'));
    expect(a.mac('recovery', 'abcd-efgh')).not.toContain('abcd');
  });
});

describe('constantTimeEqual', () => {
  it.each([
    ['abc', 'abc', true],
    ['', '', true],
    ['Ђорђе', 'Ђорђе', true],
    ['abc', 'abd', false],
    ['abc', 'abcd', false],
    ['abc', '', false],
    ['abc', 'ABC', false],
  ])('%j vs %j → %s', (a, b, expected) => {
    expect(constantTimeEqual(a, b)).toBe(expected);
  });
});

describe('randomToken', () => {
  it('gives distinct base64url tokens of the requested size', () => {
    const a = randomToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomToken()).not.toBe(a);
    expect(Buffer.from(randomToken(16), 'base64url')).toHaveLength(16);
  });
});
