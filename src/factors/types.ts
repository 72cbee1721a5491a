/**
 * What every factor shares. A factor proves one thing and reports which authentication methods
 * (RFC 8176 amr values) a success adds; assurance is derived from those in oidc/acr.ts.
 */
import type { Amr } from '../oidc/acr.js';

export type FactorId = 'password' | 'totp' | 'webauthn' | 'recovery';

export interface FactorSuccess {
  readonly accountId: string;
  readonly amr: readonly Amr[];
}
