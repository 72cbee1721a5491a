/**
 * The PID issuer's part of the engine: oidc-provider's experimental OpenID4VCI feature
 * (credential-issuer metadata, the credential and nonce endpoints, the pre-authorized code grant,
 * jwt proofs) configured for Kapija, with its resource indicator. Everything experimental about
 * the feature's shape stays in this file: provider.ts merges what `pidEngineConfig` returns.
 *
 * Wallets are public clients registered with `kapija_wallet: true`. A wallet asks for the PID
 * scope with the credential issuer as its resource (RFC 8707), in an authorization code flow from
 * the portal's credential offer or with a registration desk's pre-authorized code; its access
 * token's audience is then the credential issuer, which the credential endpoint requires. No other
 * client can get such a token, so a service's token never reaches the credential endpoint.
 */
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { KapijaError } from '../../errors.js';
import { levelOfAcr } from '../../assurance/levels.js';
import { PID_ATTRIBUTES, PID_CREDENTIAL_CONFIGURATION_ID, PID_FORMAT, PID_VCT } from '../pid.js';
import { CREDENTIAL_SIGNING_ALG } from './keys.js';
import type { PidIssuer } from './service.js';

/** The scope a wallet asks for the PID with (the credential configuration's `scope`). */
export const PID_SCOPE = PID_CREDENTIAL_CONFIGURATION_ID;
/** oidc-provider's OpenID4VCI feature version this configuration was written for (its `ack`). */
export const OPENID4VCI_ACK = 'experimental-01';
/** How long a pre-authorized code from the desk may be redeemed, seconds. */
export const PRE_AUTHORIZED_CODE_TTL = 10 * 60;
/** A wallet's access token only fetches the credential: five minutes. */
const WALLET_ACCESS_TOKEN_TTL = 300;
/** A c_nonce stays acceptable for at most five minutes (the engine's window); its use is kept as long. */
const NONCE_KEPT_MS = 6 * 60 * 1000;

type EngineClient = { clientId: string; metadata(): Record<string, unknown> } | undefined;

/** Whether a client is a registered wallet. */
export const isWalletClient = (client: EngineClient) => client?.metadata()['kapija_wallet'] === true;

const NAMES: Record<string, Record<string, string>> = {
  en: { family_name: 'Family name', given_name: 'Given name', birthdate: 'Date of birth', nationalities: 'Nationality', personal_administrative_number: 'Personal identification number (JMBG)' },
  'sr-Latn': { family_name: 'Prezime', given_name: 'Ime', birthdate: 'Datum rođenja', nationalities: 'Državljanstvo', personal_administrative_number: 'JMBG' },
  'sr-Cyrl': { family_name: 'Презиме', given_name: 'Име', birthdate: 'Датум рођења', nationalities: 'Држављанство', personal_administrative_number: 'ЈМБГ' },
};

/** credential_configurations_supported: the PID alone. */
export function pidCredentialConfiguration() {
  return {
    [PID_CREDENTIAL_CONFIGURATION_ID]: {
      format: PID_FORMAT,
      scope: PID_SCOPE,
      vct: PID_VCT,
      cryptographic_binding_methods_supported: ['jwk'],
      credential_signing_alg_values_supported: [CREDENTIAL_SIGNING_ALG],
      proof_types_supported: { jwt: { proof_signing_alg_values_supported: ['ES256'] } },
      credential_metadata: {
        display: [
          { name: 'PID (Kapija)', locale: 'en' },
          { name: 'Lični identifikacioni podaci (Kapija)', locale: 'sr-Latn' },
          { name: 'Лични идентификациони подаци (Капија)', locale: 'sr-Cyrl' },
        ],
        claims: PID_ATTRIBUTES.map((a) => ({ path: [a], mandatory: true, display: Object.entries(NAMES).map(([locale, n]) => ({ name: n[a]!, locale })) })),
      },
    },
  };
}

export interface PidEngineConfig {
  features: Pick<NonNullable<Configuration['features']>, 'openid4vci' | 'resourceIndicators'>;
  /** Extra claims of a wallet's access token: the level the citizen signed in at. */
  tokenClaims(ctx: KoaContextWithOIDC | undefined, token: unknown): Record<string, unknown> | undefined;
  ttl: { PreAuthorizedCode: number };
}

/** A PID just issued, to tell the citizen (wallet.pid_issued). */
export type PidIssuedNotice = (e: { accountId: string; client: NonNullable<EngineClient>; channel: 'portal' | 'desk' }) => Promise<void>;

/** The engine configuration of the PID issuer; `nonceSecret` is 32 bytes, the same on every instance. */
export function pidEngineConfig(d: { issuer: string; pid: PidIssuer; nonceSecret: Buffer; now?: () => number; onIssued?: PidIssuedNotice }): PidEngineConfig {
  const now = d.now ?? Date.now;
  const walletResource = (client: EngineClient) => isWalletClient(client);
  return {
    features: {
      resourceIndicators: {
        enabled: true,
        // A wallet's token is for the credential issuer unless it names another resource (refused below).
        defaultResource: async (_ctx, client, oneOf) => oneOf ?? (walletResource(client) ? d.issuer : undefined),
        useGrantedResource: async (_ctx, model) => (model as { resource?: unknown }).resource === d.issuer,
        getResourceServerInfo: async (_ctx, resource, client) => {
          if (resource !== d.issuer || !walletResource(client)) throw new errors.InvalidTarget();
          return { scope: PID_SCOPE, audience: d.issuer, accessTokenTTL: WALLET_ACCESS_TOKEN_TTL, accessTokenFormat: 'opaque' };
        },
      },
      openid4vci: {
        enabled: true,
        ack: OPENID4VCI_ACK,
        nonceSecret: d.nonceSecret,
        preAuthorizedCodeGrant: true,
        credentialConfigurationsSupported: pidCredentialConfiguration(),
        metadata: {
          display: [
            { name: 'Kapija', locale: 'en' },
            { name: 'Kapija', locale: 'sr-Latn' },
            { name: 'Капија', locale: 'sr-Cyrl' },
          ],
        },
        // The credential issuer identifier is the resource a wallet's token is for.
        credentialEndpointExpectedAudience: () => d.issuer,
        credentialConfigurationPolicy: (_ctx: KoaContextWithOIDC, { client }: { client: EngineClient }) => isWalletClient(client),
        // Key attestations are not accepted yet: a proof that carries one is refused.
        getKeyAttestationSignaturePublicKey: async () => {
          throw new Error('key attestations are not accepted');
        },
        issueCredential: async (_ctx: KoaContextWithOIDC, input: IssueInput) => issue(d, input, now),
      } as unknown as NonNullable<Configuration['features']>['openid4vci'],
    },
    tokenClaims(ctx, token) {
      const t = token as { resourceServer?: { audience?: string }; gty?: string };
      if (t.resourceServer?.audience !== d.issuer) return undefined;
      const code = ctx?.oidc?.entities?.AuthorizationCode as { acr?: string } | undefined;
      return { kapija_acr: code?.acr ?? null };
    },
    ttl: { PreAuthorizedCode: PRE_AUTHORIZED_CODE_TTL },
  };
}

interface IssueInput {
  proofs?: { jwt?: string[] };
  client: NonNullable<EngineClient>;
  account: { accountId: string };
  accessToken: { gty?: string; extra?: Record<string, unknown> };
}

/** The credential endpoint's last step: the engine checked the token and the proof; Kapija mints. */
async function issue(d: { pid: PidIssuer; onIssued?: PidIssuedNotice }, input: IssueInput, now: () => number) {
  const proof = input.proofs?.jwt?.[0];
  if (!proof) throw new errors.InvalidProof('a jwt proof of the wallet key is required');
  const header = decodeProtectedHeader(proof);
  const holderJwk = header.jwk as JWK | undefined;
  if (!holderJwk) throw new errors.InvalidProof('the proof must carry the wallet key as jwk');
  const nonce = String(decodeJwt(proof).nonce);
  if (!(await d.pid.useNonce(nonce, await calculateJwkThumbprint(holderJwk), now() + NONCE_KEPT_MS))) {
    throw new (errors as unknown as Record<string, new (d: string) => Error>)['InvalidNonce']!('c_nonce already used with this key, retrieve a new c_nonce from the nonce endpoint');
  }
  const desk = input.accessToken.gty === 'pre_authorized_code';
  // At the desk a registrar checked the citizen in person; the identity's own level still caps the PID's.
  const signIn = desk ? 'high' : (levelOfAcr(input.accessToken.extra?.['kapija_acr']) ?? 'low');
  try {
    const channel = desk ? 'desk' : 'portal';
    const { credential } = await d.pid.issue({ accountId: input.account.accountId, clientId: input.client.clientId, channel, signIn, holderJwk });
    await d.onIssued?.({ accountId: input.account.accountId, client: input.client, channel });
    return { credentials: [{ credential }] };
  } catch (err) {
    if (err instanceof KapijaError && err.code === 'wallet.not_eligible') {
      throw new (errors as unknown as Record<string, new (d: string) => Error>)['CredentialRequestDenied']!('the verified identity or the sign-in is below substantial');
    }
    throw err;
  }
}
