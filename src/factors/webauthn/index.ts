/**
 * WebAuthn security keys and passkeys with @simplewebauthn/server, in the order of its reference
 * example: options (challenge kept server-side, single use) → browser ceremony → verification of
 * challenge, origin and RP ID → stored public key, counter, transports and backup flags.
 *
 * Methods reported (RFC 8176): `user` for user presence, `pin` when the authenticator verified the
 * user (PIN or biometric: WebAuthn does not say which), and `hwk` or `swk`: a credential is a
 * hardware key (`hwk`, hence eIDAS high) only when it is device-bound (not a synced passkey) and
 * either
 *   - its attestation proves an authenticator model the FIDO Metadata Service certifies for hardware
 *     key protection: direct attestation with a certificate chain (x5c) that leads to one of the
 *     attestation roots of the AAGUID's entry in the imported MDS BLOB, and that entry is FIDO
 *     certified L1 or above, protects keys in hardware (hardware, secure element or TEE, not
 *     software) and reports no compromise or revocation (metadata.ts hardwareCertified); the newest
 *     BLOB is consulted again at each sign-in, so a later report of a compromise takes `hwk` away; or
 *   - its AAGUID is on the operator's allow-list (WEBAUTHN_HWK_AAGUIDS), read at each sign-in.
 * Everything else, among it `none` and self attestation (which any software can produce, for any
 * AAGUID), is `swk`. What a credential was judged is stored with it (aaguid, attestation, assurance).
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
import { decodeAttestationObject } from '@simplewebauthn/server/helpers';
import { KapijaError } from '../../errors.js';
import type { Amr } from '../../assurance/levels.js';
import type { AccountRepository } from '../../store/accounts.js';
import type { AttestationKind, CredentialRepository, Credential, KeyAssurance } from '../../store/credentials.js';
import type { MdsEntry, WebAuthnMetadataRepository } from '../../store/webauthn-metadata.js';
import type { FactorSuccess } from '../types.js';
import { chainLeadsTo, hardwareCertified, parseCertificate } from './metadata.js';

export interface WebAuthnSettings {
  readonly rpId: string;
  readonly rpName: string;
  readonly origins: readonly string[];
  /** AAGUIDs (lower case) the operator accepts as hardware keys without metadata. */
  readonly hwkAaguids?: readonly string[];
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
  /** What the account's best credential proves today: `hwk` if any counts as a hardware key, else `swk`. */
  strongest(accountId: string): Promise<'hwk' | 'swk' | undefined>;
}

const failed = (cause?: unknown) => new KapijaError('factor.webauthn.failed', 401, { cause });

export function amrForAuthenticator(c: { hardware: boolean; userVerified: boolean }): Amr[] {
  const amr: Amr[] = [c.hardware ? 'hwk' : 'swk', 'user'];
  if (c.userVerified) amr.push('pin');
  return amr;
}

export interface Judgement {
  readonly attestation: AttestationKind;
  readonly assurance: KeyAssurance;
}

/**
 * What a new credential is: how far its attestation could be verified and whether it counts as a
 * hardware key (see the top of this file).
 */
export function judgeRegistration(input: {
  fmt: string;
  x5c: readonly Uint8Array[] | undefined;
  aaguid: string;
  deviceType: 'singleDevice' | 'multiDevice';
  entry: MdsEntry | undefined;
  allowed: boolean;
  at: Date;
}): Judgement {
  let attestation: AttestationKind;
  if (input.fmt === 'none') attestation = 'none';
  else if (!input.x5c?.length) attestation = input.fmt === 'packed' ? 'self' : 'unverified';
  else attestation = input.entry && chainMatchesEntry(input.x5c, input.entry, input.at) ? 'mds' : 'unverified';
  const certified = attestation === 'mds' && input.entry !== undefined && hardwareCertified(input.entry);
  const hardware = input.deviceType === 'singleDevice' && (certified || input.allowed);
  return { attestation, assurance: hardware ? 'hwk' : 'swk' };
}

function chainMatchesEntry(x5c: readonly Uint8Array[], entry: MdsEntry, at: Date): boolean {
  try {
    const chain = x5c.map((c) => parseCertificate(Buffer.from(c)));
    const anchors = entry.attestationRootCertificates.flatMap((c) => {
      try {
        return [parseCertificate(c)];
      } catch {
        return [];
      }
    });
    return chainLeadsTo(chain, anchors, at);
  } catch {
    return false;
  }
}

/** The registration ceremony's response checked against its challenge, with the attestation's certificates. */
async function verifiedRegistration(settings: WebAuthnSettings, challenge: string, response: unknown) {
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
  let x5c: Uint8Array[] | undefined;
  try {
    x5c = decodeAttestationObject(info.attestationObject).get('attStmt').get('x5c');
  } catch (err) {
    throw failed(err);
  }
  return { info, x5c };
}

/** The authentication ceremony's response checked against its challenge and the stored public key. */
async function verifiedAuthentication(settings: WebAuthnSettings, challenge: string, response: AuthenticationResponseJSON, credential: { id: string; stored: StoredConfig }, requireUserVerification: boolean) {
  let verification;
  try {
    verification = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: [...settings.origins],
      expectedRPID: settings.rpId,
      credential: {
        id: credential.id,
        publicKey: Buffer.from(credential.stored.publicKey, 'base64url'),
        counter: credential.stored.counter,
        transports: credential.stored.transports,
      },
      requireUserVerification,
    });
  } catch (err) {
    throw failed(err);
  }
  if (!verification.verified) throw failed();
  return verification.authenticationInfo;
}

const ZERO_AAGUID = '00000000-0000-0000-0000-000000000000';

export function createWebAuthnFactor(deps: {
  settings: WebAuthnSettings;
  credentials: CredentialRepository;
  accounts: AccountRepository;
  metadata: WebAuthnMetadataRepository;
  now?: () => number;
}): WebAuthnFactor {
  const { settings, credentials, accounts, metadata } = deps;
  const now = deps.now ?? Date.now;
  const config = (c: Credential) => c.config as unknown as StoredConfig;
  const allowList = new Set((settings.hwkAaguids ?? []).map((a) => a.toLowerCase()));
  const allowed = (aaguid: string | null | undefined) => !!aaguid && aaguid !== ZERO_AAGUID && allowList.has(aaguid.toLowerCase());

  /** The newest imported MDS BLOB by AAGUID, read again only when its serial number changed. */
  let cached: { no: number; byAaguid: Map<string, MdsEntry> } | undefined;
  async function metadataEntry(aaguid: string): Promise<MdsEntry | undefined> {
    const no = await metadata.latestNo();
    if (no === undefined) return undefined;
    if (cached?.no !== no) {
      const blob = await metadata.latest();
      cached = blob ? { no: blob.no, byAaguid: new Map(blob.entries.map((e) => [e.aaguid, e])) } : undefined;
    }
    return cached?.byAaguid.get(aaguid.toLowerCase());
  }

  /** Whether a stored credential counts as a hardware key for this sign-in. */
  async function hardwareAtSignIn(credential: Credential, deviceType: string): Promise<boolean> {
    if (deviceType !== 'singleDevice') return false;
    if (allowed(credential.aaguid)) return true;
    if (credential.assurance !== 'hwk' || credential.attestation !== 'mds' || !credential.aaguid) return false;
    const entry = await metadataEntry(credential.aaguid);
    return entry !== undefined && hardwareCertified(entry);
  }

  return {
    async registrationOptions(accountId, username) {
      const existing = await credentials.list(accountId, 'webauthn');
      const userId = await accounts.webauthnUserId(accountId);
      return generateRegistrationOptions({
        rpName: settings.rpName,
        rpID: settings.rpId,
        userName: username,
        userID: Buffer.from(userId, 'base64url'),
        attestationType: 'direct',
        excludeCredentials: existing.map((c) => ({ id: c.lookup!, transports: config(c).transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
    },

    async register(accountId, challenge, response, name) {
      const { info, x5c } = await verifiedRegistration(settings, challenge, response);
      const aaguid = info.aaguid.toLowerCase();
      const judgement = judgeRegistration({
        fmt: info.fmt,
        x5c,
        aaguid,
        deviceType: info.credentialDeviceType,
        entry: info.fmt === 'none' ? undefined : await metadataEntry(aaguid),
        allowed: allowed(aaguid),
        at: new Date(now()),
      });
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
        aaguid,
        ...judgement,
      });
    },

    async strongest(accountId) {
      const all = await credentials.list(accountId, 'webauthn');
      if (all.length === 0) return undefined;
      for (const c of all) if (await hardwareAtSignIn(c, config(c).deviceType)) return 'hwk';
      return 'swk';
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
      const info = await verifiedAuthentication(settings, challenge, r, { id: credential.lookup!, stored }, accountId === undefined);
      await credentials.updateWebAuthnUse(credential.id, {
        ...stored,
        counter: info.newCounter,
        backedUp: info.credentialBackedUp,
        deviceType: info.credentialDeviceType,
      } as unknown as Record<string, unknown>);
      return {
        accountId: credential.accountId,
        amr: amrForAuthenticator({
          hardware: await hardwareAtSignIn(credential, info.credentialDeviceType),
          userVerified: info.userVerified,
        }),
      };
    },
  };
}
