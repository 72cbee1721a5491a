/**
 * The Token Status List (draft-ietf-oauth-status-list) Kapija publishes for the credentials it
 * issued: one bit per entry, 1 = revoked, as a JWT (typ statuslist+jwt) signed with the
 * credential-signing key, at `<issuer>/wallet/status/<listId>`.
 */
import { StatusList, createHeaderAndPayload } from '@sd-jwt/jwt-status-list';
import { CompactSign, importJWK, type JWK } from 'jose';
import { CREDENTIAL_SIGNING_ALG } from './keys.js';

export const STATUS_PATH = '/wallet/status';
/** How long a relying party may keep the list: the status list token's ttl and the HTTP cache's max-age. */
export const STATUS_LIST_TTL_SECONDS = 300;

export const statusListUri = (issuer: string, listId: string) => `${issuer}${STATUS_PATH}/${listId}`;

export async function statusListToken(input: { issuer: string; listId: string; size: number; revoked: readonly number[]; signingKey: JWK & { kid: string }; now: number }): Promise<string> {
  const bits = new Array<number>(input.size).fill(0);
  for (const idx of input.revoked) if (idx >= 0 && idx < input.size) bits[idx] = 1;
  const list = new StatusList(bits, 1);
  const iat = Math.floor(input.now / 1000);
  const { header, payload } = createHeaderAndPayload(
    list,
    { iss: input.issuer, sub: statusListUri(input.issuer, input.listId), iat, exp: iat + 24 * 3600, ttl: STATUS_LIST_TTL_SECONDS },
    { alg: CREDENTIAL_SIGNING_ALG, typ: 'statuslist+jwt', kid: input.signingKey.kid },
  );
  const key = await importJWK(input.signingKey, CREDENTIAL_SIGNING_ALG);
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader(header as { alg: string }).sign(key);
}
