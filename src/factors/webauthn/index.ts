/**
 * WebAuthn security keys and passkeys with @simplewebauthn/server, in the order of its reference
 * example: options (challenge kept server-side, single use) → browser ceremony → verification of
 * challenge, origin and RP ID → stored public key, counter, transports and backup flags.
 *
 * Methods reported (RFC 8176): `hwk` for a device-bound authenticator (a security key or a passkey
 * that cannot leave its device), `swk` for a synced passkey; `user` for user presence, and `pin`
 * when the authenticator verified the user (PIN or biometric: WebAuthn does not say which).
 */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { KapijaError } from '../../errors.js';
import type { Amr } from '../../oidc/acr.js';
import type { AccountRepository } from '../../store/accounts.js';
import type { CredentialRepository, Credential } from '../../store/credentials.js';
import type { FactorSuccess } from '../types.js';

export interface WebAuthnSettings {
  readonly rpId: string;
  readonly rpName: string;
  readonly origins: readonly string[];
}

interface StoredConfig {
  publicKey: string;
  counter: number;
  transports: AuthenticatorTransport[];
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  aaguid: string;
  userVerified: boolean;
}

export interface WebAuthnFactor {
  registrationOptions(accountId: string, username: string): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /** @throws KapijaError factor.webauthn.failed */
  register(accountId: string, challenge: string, response: unknown, name: string): Promise<Credential>;
  /** Options for a known account (second factor) or, without one, for a discoverable passkey. */
  authenticationOptions(accountId?: string): Promise<PublicKeyCredentialRequestOptionsJSON>;
  /**
   * Verifies an assertion. With `accountId` the credential must belong to it; without, the
   * credential's user handle must match its owner (passwordless).
   * @throws KapijaError factor.webauthn.failed
   */
  verify(challenge: string, response: unknown, accountId?: string): Promise<FactorSuccess>;
}

const failed = (cause?: unknown) => new KapijaError('factor.webauthn.failed', 401, { cause });

export function amrForAuthenticator(c: { deviceType: string; userVerified: boolean }): Amr[] {
  const amr: Amr[] = [c.deviceType === 'multiDevice' ? 'swk' : 'hwk', 'user'];
  if (c.userVerified) amr.push('pin');
  return amr;
}

export function createWebAuthnFactor(deps: {
  settings: WebAuthnSettings;
  credentials: CredentialRepository;
  accounts: AccountRepository;
}): WebAuthnFactor {
  const { settings, credentials, accounts } = deps;
  const config = (c: Credential) => c.config as unknown as StoredConfig;

  return {
    async registrationOptions(accountId, username) {
      const existing = await credentials.list(accountId, 'webauthn');
      const userId = await accounts.webauthnUserId(accountId);
      return generateRegistrationOptions({
        rpName: settings.rpName,
        rpID: settings.rpId,
        userName: username,
        userID: Buffer.from(userId, 'base64url'),
        attestationType: 'none',
        excludeCredentials: existing.map((c) => ({ id: c.lookup!, transports: config(c).transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
    },

    async register(accountId, challenge, response, name) {
      let verification;
      try {
        verification = await verifyRegistrationResponse({
          response: response as RegistrationResponseJSON,
          expectedChallenge: challenge,
          expectedOrigin: [...settings.origins],
          expectedRPID: settings.rpId,
          requireUserVerification: false,
        });
      } catch (err) {
        throw failed(err);
      }
      if (!verification.verified) throw failed();
      const info = verification.registrationInfo;
      const stored: StoredConfig = {
        publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        transports: (info.credential.transports ?? []) as AuthenticatorTransport[],
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
        aaguid: info.aaguid,
        userVerified: info.userVerified,
      };
      return credentials.add({
        accountId,
        type: 'webauthn',
        name: name.slice(0, 100) || 'Security key',
        lookup: info.credential.id,
        config: stored as unknown as Record<string, unknown>,
      });
    },

    async authenticationOptions(accountId) {
      const allow = accountId ? await credentials.list(accountId, 'webauthn') : [];
      return generateAuthenticationOptions({
        rpID: settings.rpId,
        allowCredentials: allow.map((c) => ({ id: c.lookup!, transports: config(c).transports })),
        userVerification: accountId ? 'preferred' : 'required',
      });
    },

    async verify(challenge, response, accountId) {
      const r = response as AuthenticationResponseJSON;
      if (!r || typeof r !== 'object' || typeof r.id !== 'string') throw failed();
      const credential = await credentials.findByLookup('webauthn', r.id);
      if (!credential) throw failed();
      if (accountId !== undefined && credential.accountId !== accountId) throw failed();
      if (accountId === undefined) {
        // Passwordless: the authenticator must name the credential's owner.
        const handle = r.response?.userHandle;
        const owner = handle ? await accounts.findByWebAuthnUserId(handle) : undefined;
        if (!owner || owner.id !== credential.accountId) throw failed();
      }
      const stored = config(credential);
      let verification;
      try {
        verification = await verifyAuthenticationResponse({
          response: r,
          expectedChallenge: challenge,
          expectedOrigin: [...settings.origins],
          expectedRPID: settings.rpId,
          credential: {
            id: credential.lookup!,
            publicKey: Buffer.from(stored.publicKey, 'base64url'),
            counter: stored.counter,
            transports: stored.transports,
          },
          requireUserVerification: accountId === undefined,
        });
      } catch (err) {
        throw failed(err);
      }
      if (!verification.verified) throw failed();
      const info = verification.authenticationInfo;
      await credentials.updateWebAuthnUse(credential.id, {
        ...stored,
        counter: info.newCounter,
        backedUp: info.credentialBackedUp,
        deviceType: info.credentialDeviceType,
      } as unknown as Record<string, unknown>);
      return {
        accountId: credential.accountId,
        amr: amrForAuthenticator({ deviceType: info.credentialDeviceType, userVerified: info.userVerified }),
      };
    },
  };
}
