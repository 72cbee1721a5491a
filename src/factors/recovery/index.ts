/**
 * Recovery codes: ten single-use codes shown once, stored as keyed hashes (HMAC under a subkey of
 * the master key: the codes carry 50 random bits, so a slow hash adds nothing but a scan over ten
 * rows). A recovery code is never the only second factor an account has.
 */
import { randomBytes } from 'node:crypto';
import { KapijaError } from '../../errors.js';
import type { SecretBox } from '../../security/crypto.js';
import type { CredentialRepository } from '../../store/credentials.js';
import type { FactorSuccess } from '../types.js';

export const RECOVERY_CODE_COUNT = 10;
// Crockford base32 without I, L, O, U: easy to read aloud and to type.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function generateRecoveryCode(): string {
  const bytes = randomBytes(10);
  let out = '';
  for (let i = 0; i < 10; i += 1) out += ALPHABET[bytes[i]! & 31];
  return `${out.slice(0, 5)}-${out.slice(5)}`;
}

export function normaliseRecoveryCode(code: string): string {
  return code
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
}

export interface RecoveryFactor {
  /** Issues a fresh set, replacing any earlier codes; returns the codes to show once. */
  issue(accountId: string): Promise<string[]>;
  /** @throws KapijaError factor.recovery.invalid_code */
  verify(accountId: string, code: string): Promise<FactorSuccess & { remaining: number }>;
  remaining(accountId: string): Promise<number>;
}

export function createRecoveryFactor(deps: { credentials: CredentialRepository; box: SecretBox }): RecoveryFactor {
  const { credentials, box } = deps;
  const lookup = (accountId: string, code: string) => box.mac('recovery-code', `${accountId}:${normaliseRecoveryCode(code)}`);
  return {
    async issue(accountId) {
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, generateRecoveryCode);
      await credentials.replaceRecoveryCodes(accountId, codes.map((c) => lookup(accountId, c)));
      return codes;
    },
    async verify(accountId, code) {
      const clean = normaliseRecoveryCode(code);
      if (!/^[0-9A-Z]{10}$/.test(clean) || !(await credentials.consumeRecoveryCode(accountId, lookup(accountId, clean)))) {
        throw new KapijaError('factor.recovery.invalid_code', 401);
      }
      return { accountId, amr: ['otp'], remaining: await credentials.countUnusedRecoveryCodes(accountId) };
    },
    remaining: (accountId) => credentials.countUnusedRecoveryCodes(accountId),
  };
}
