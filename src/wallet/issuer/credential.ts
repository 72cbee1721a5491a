/**
 * Mints the PID as an SD-JWT VC (typ dc+sd-jwt, ES256, the credential-signing key's kid): the
 * issuer, the type, its short validity, the holder's key (cnf.jwk, from the wallet's proof), the
 * Token Status List entry, the issuing country and authority in the clear; every PID attribute a
 * disclosure of its own, so the wallet can show each one alone.
 */
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { ES256, digest, generateSalt } from '@sd-jwt/crypto-nodejs';
import type { JWK } from 'jose';
import { PID_ATTRIBUTES, PID_FORMAT, PID_VCT, type PidAttribute } from '../pid.js';
import { CREDENTIAL_SIGNING_ALG } from './keys.js';

/** What the credential says about the citizen (from the verified identity only). */
export type PidClaims = Record<PidAttribute, string | string[]>;

export interface MintInput {
  issuer: string;
  issuingAuthority: string;
  claims: PidClaims;
  holderJwk: JWK;
  status: { idx: number; uri: string };
  issuedAt: number;
  expiresAt: number;
  signingKey: JWK & { kid: string };
}

/** The public members of the wallet's key, as bound into cnf (never a private member). */
export function publicHolderKey(jwk: JWK): JWK {
  const members = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;
  return Object.fromEntries(members.filter((m) => typeof jwk[m] === 'string').map((m) => [m, jwk[m]])) as JWK;
}

export async function mintPid(input: MintInput): Promise<string> {
  const sdjwt = new SDJwtVcInstance({
    signer: await ES256.getSigner(input.signingKey),
    signAlg: CREDENTIAL_SIGNING_ALG,
    hasher: digest,
    hashAlg: 'sha-256',
    saltGenerator: generateSalt,
  });
  const payload = {
    iss: input.issuer,
    vct: PID_VCT,
    iat: Math.floor(input.issuedAt / 1000),
    exp: Math.floor(input.expiresAt / 1000),
    cnf: { jwk: publicHolderKey(input.holderJwk) },
    status: { status_list: { idx: input.status.idx, uri: input.status.uri } },
    issuing_country: 'RS',
    issuing_authority: input.issuingAuthority,
    ...input.claims,
  };
  return sdjwt.issue(payload, { _sd: [...PID_ATTRIBUTES] }, { header: { typ: PID_FORMAT, kid: input.signingKey.kid } });
}
