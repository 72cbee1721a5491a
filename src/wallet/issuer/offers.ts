/**
 * Credential offers (OpenID4VCI §4.1) for the PID: the portal's, which starts an authorization code
 * flow in the citizen's wallet, and the registration desk's, which carries a pre-authorized code
 * bound to the citizen's account and one wallet client, redeemable once with a transaction code
 * (tx_code) the registrar tells the citizen.
 */
import { randomInt } from 'node:crypto';
import QRCode from 'qrcode';
import type Provider from 'oidc-provider';
import { KapijaError } from '../../errors.js';
import type { AuditLog } from '../../store/audit.js';
import { PID_CREDENTIAL_CONFIGURATION_ID } from '../pid.js';
import { PID_SCOPE, PRE_AUTHORIZED_CODE_TTL } from './engine.js';
import type { PidIssuer } from './service.js';

export const PRE_AUTHORIZED_GRANT = 'urn:ietf:params:oauth:grant-type:pre-authorized_code';
/** Digits of the desk's transaction code. */
export const TX_CODE_LENGTH = 6;

export interface CredentialOffer {
  credential_issuer: string;
  credential_configuration_ids: string[];
  grants: Record<string, Record<string, unknown>>;
}

/** The offer as a wallet opens it: a deep link, and the same as a QR code (an SVG data URI). */
export async function offerLink(offer: CredentialOffer): Promise<{ uri: string; qrDataUri: string }> {
  const uri = `openid-credential-offer://?credential_offer=${encodeURIComponent(JSON.stringify(offer))}`;
  const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { uri, qrDataUri: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
}

/** The portal's offer: the wallet signs the citizen in at Kapija (authorization code flow). */
export function portalOffer(issuer: string): CredentialOffer {
  return { credential_issuer: issuer, credential_configuration_ids: [PID_CREDENTIAL_CONFIGURATION_ID], grants: { authorization_code: {} } };
}

export interface DeskOfferDeps {
  issuer: string;
  provider: Provider;
  pid: PidIssuer;
  audit: AuditLog;
}

/** The registered wallets a desk offer can be made for (public clients that may redeem a pre-authorized code). */
export async function deskWallets(clients: { list(): Promise<{ clientId: string; enabled: boolean; metadata: Record<string, unknown> }[]> }) {
  return (await clients.list()).filter((c) => c.enabled && c.metadata['kapija_wallet'] === true && Array.isArray(c.metadata['grant_types']) && (c.metadata['grant_types'] as unknown[]).includes(PRE_AUTHORIZED_GRANT));
}

/**
 * A pre-authorized code for `accountId`'s PID, redeemable by the wallet `clientId` within ten
 * minutes with the returned transaction code. Refused (403) unless the citizen may receive the PID.
 */
export async function createDeskOffer(d: DeskOfferDeps, input: { accountId: string; clientId: string; registrar: string; ip: string | null }): Promise<{ offer: CredentialOffer; txCode: string; expiresAt: Date }> {
  const e = await d.pid.eligibility(input.accountId);
  if (!e.ok) throw new KapijaError('wallet.not_eligible', 403, { details: { reason: e.reason } });
  const client = await d.provider.Client.find(input.clientId);
  if (!client || client.metadata()['kapija_wallet'] !== true || !client.grantTypeAllowed(PRE_AUTHORIZED_GRANT)) throw new KapijaError('wallet.offer_invalid', 400);
  const grant = new d.provider.Grant({ accountId: input.accountId, clientId: input.clientId });
  grant.addResourceScope(d.issuer, PID_SCOPE);
  const grantId = await grant.save();
  const txCode = String(randomInt(0, 10 ** TX_CODE_LENGTH)).padStart(TX_CODE_LENGTH, '0');
  const code = new d.provider.PreAuthorizedCode({ accountId: input.accountId, clientId: input.clientId, grantId, scope: PID_SCOPE, resource: d.issuer, txCode });
  const value = await code.save();
  await d.audit.append({ chain: 'admin', actor: input.registrar, action: 'wallet.pid_offered', subjectAccountId: input.accountId, clientId: input.clientId, ip: input.ip, details: {} });
  return {
    offer: {
      credential_issuer: d.issuer,
      credential_configuration_ids: [PID_CREDENTIAL_CONFIGURATION_ID],
      grants: { [PRE_AUTHORIZED_GRANT]: { 'pre-authorized_code': value, tx_code: { input_mode: 'numeric', length: TX_CODE_LENGTH } } },
    },
    txCode,
    expiresAt: new Date(Date.now() + PRE_AUTHORIZED_CODE_TTL * 1000),
  };
}
