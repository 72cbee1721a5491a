/**
 * CSRF protection for every form: a signed double-submit cookie (OWASP). The browser holds a random
 * value in an HttpOnly cookie; each form carries HMAC(key, value). A cross-site page can neither read
 * the cookie nor compute the HMAC.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { constantTimeEqual } from './crypto.js';

export const CSRF_COOKIE = 'kapija.csrf';
export const CSRF_FIELD = '_csrf';

export interface Csrf {
  newSecret(): string;
  tokenFor(secret: string): string;
  verify(secret: string | undefined, token: unknown): boolean;
}

export function createCsrf(keys: readonly string[]): Csrf {
  if (keys.length === 0) throw new Error('CSRF needs at least one key');
  const mac = (key: string, secret: string) => createHmac('sha256', key).update(`csrf:${secret}`).digest('base64url');
  return {
    newSecret: () => randomBytes(24).toString('base64url'),
    tokenFor: (secret) => mac(keys[0]!, secret),
    verify(secret, token) {
      if (!secret || typeof token !== 'string' || token.length === 0 || token.length > 128) return false;
      // Any live key verifies, so a key rotation does not break forms already on screen.
      let ok = false;
      for (const key of keys) ok = constantTimeEqual(mac(key, secret), token) || ok;
      return ok;
    },
  };
}
