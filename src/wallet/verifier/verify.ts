/**
 * Verification of a presented PID (SD-JWT VC with a key-binding JWT), as OpenID4VP 1.0 §8.6 and
 * SD-JWT VC ask: the issuer is one Kapija trusts and signed the credential with a key of its JWKS
 * (by `kid`); the credential is current (iat, exp) and a PID (`vct`); it is not revoked in the
 * issuer's status list (a `statuslist+jwt` signed by the same issuer, for this list's URI); the
 * key-binding JWT is signed by the credential's holder key (`cnf.jwk`), carries this request's nonce,
 * Kapija's client identifier as audience, a fresh `iat` and the hash of exactly what was presented.
 *
 * Disclosures: every one presented must be referenced by the signed credential (a changed one is
 * not, and is refused rather than ignored), and only the claims the request asked for may be
 * disclosed: a wallet that discloses more is refused, so Kapija never receives personal data it did
 * not ask for.
 */
import { createHash } from 'node:crypto';
import { compactVerify, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { digest } from '@sd-jwt/crypto-nodejs';
import { DcqlPresentationResult, type DcqlQuery } from 'dcql';
import { PID_FORMAT, PID_VCT } from '../pid.js';
import { requestedClaimNames } from './protocol.js';
import type { TrustedIssuer, WalletFetch } from './trusted-issuers.js';

/** Why a presentation was refused: the refusal page's `wallet.refused.<reason>`. */
export type RefusalReason = 'invalid' | 'untrusted_issuer' | 'revoked' | 'expired' | 'binding' | 'disclosure' | 'no_account';

export class PresentationRefused extends Error {
  constructor(
    readonly reason: RefusalReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'PresentationRefused';
  }
}

export interface VerifyInput {
  /** The compact SD-JWT with its key-binding JWT (`<jwt>~<disclosure>~…~<kb-jwt>`). */
  readonly presentation: string;
  readonly nonce: string;
  readonly clientId: string;
  /** The request's DCQL query, and the id of its credential query this presentation answers. */
  readonly query: DcqlQuery;
  readonly credentialQueryId: string;
  readonly issuers: ReadonlyMap<string, TrustedIssuer>;
  readonly fetch: WalletFetch;
  /** Whether a status list may be fetched over plain http (not in production). */
  readonly allowHttp?: boolean;
  readonly now?: () => number;
}

export interface VerifiedPid {
  readonly issuer: TrustedIssuer;
  /** The claims the query asked for, as dcql matched them. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Seconds of clock skew allowed between the wallet, the issuer and Kapija. */
const SKEW_SECONDS = 60;
/** A key-binding JWT older than this is stale. */
const KB_MAX_AGE_SECONDS = 300;
const STATUS_FETCH_TIMEOUT_MS = 5000;

const refuse = (reason: RefusalReason, detail: string): never => {
  throw new PresentationRefused(reason, detail);
};

const b64urlSha256 = (s: string) => createHash('sha256').update(s, 'ascii').digest('base64url');

/** Every digest the signed payload references (`_sd` arrays and `...` array elements), at any depth. */
function referencedDigests(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) {
      if (v && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>)['...'] === 'string') out.add((v as Record<string, string>)['...']!);
      referencedDigests(v, out);
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '_sd' && Array.isArray(v)) for (const d of v) if (typeof d === 'string') out.add(d);
      referencedDigests(v, out);
    }
  }
  return out;
}

/** Checks the disclosures against the signed payload and the request; the names disclosed at the top level. */
function checkDisclosures(parts: string[], payload: Record<string, unknown>, requested: readonly string[]): void {
  const disclosures = parts.slice(1, -1).filter((d) => d.length > 0);
  const digests = referencedDigests(payload);
  for (const d of disclosures) {
    if (!digests.has(b64urlSha256(d))) refuse('invalid', 'a disclosure the credential does not reference');
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(d, 'base64url').toString('utf8'));
    } catch {
      refuse('invalid', 'a disclosure is not JSON');
    }
    if (!Array.isArray(decoded) || decoded.length !== 3 || typeof decoded[1] !== 'string') refuse('disclosure', 'a disclosure that is not a requested claim');
    if (!requested.includes((decoded as string[])[1]!)) refuse('disclosure', 'a claim the request did not ask for was disclosed');
  }
}

/** Verifies with the issuer's key named by the JWS header's `kid` (the credential's and the status list's). */
function issuerVerifier(issuer: TrustedIssuer) {
  return async (data: string, sig: string): Promise<boolean> => {
    const compact = `${data}.${sig}`;
    const { kid, alg } = decodeProtectedHeader(compact);
    if (alg !== 'ES256' || typeof kid !== 'string') return false;
    const jwk = (await issuer.jwks()).keys.find((k) => (k as JWK).kid === kid);
    if (!jwk) return false;
    try {
      await compactVerify(compact, await importJWK(jwk as JWK, 'ES256'), { algorithms: ['ES256'] });
      return true;
    } catch {
      return false;
    }
  };
}

/** The holder's key-binding signature, with the credential's `cnf.jwk`; any other signer is refused as `binding`. */
async function kbVerifier(data: string, sig: string, payload: Record<string, unknown>): Promise<boolean> {
  const jwk = (payload.cnf as { jwk?: JWK } | undefined)?.jwk;
  if (!jwk || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || 'd' in jwk) return refuse('invalid', 'the credential binds no P-256 holder key');
  try {
    await compactVerify(`${data}.${sig}`, await importJWK(jwk, 'ES256'), { algorithms: ['ES256'] });
    return true;
  } catch {
    return refuse('binding', 'the key-binding JWT is not signed by the credential\'s holder key');
  }
}

/** Fetches the status list token, checking it is one and is for this list. */
function statusListFetcher(fetcher: WalletFetch, nowSeconds: number, allowHttp: boolean) {
  return async (uri: string): Promise<string> => {
    if (!(allowHttp ? /^https?:\/\// : /^https:\/\//).test(uri)) refuse('invalid', 'the status list URI is not https');
    // A status that cannot be known is not "valid": the credential is refused (as `revoked`, whose page says so).
    let token: string;
    try {
      const res = await fetcher(uri, { headers: { accept: 'application/statuslist+jwt' }, signal: AbortSignal.timeout(STATUS_FETCH_TIMEOUT_MS) });
      if (!res.ok) return refuse('revoked', `the status list answered ${res.status}`);
      token = (await res.text()).trim();
    } catch (err) {
      if (err instanceof PresentationRefused) throw err;
      return refuse('revoked', 'the status list is unreachable');
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      return refuse('revoked', 'the status list is not a JWT');
    }
    if (header.typ !== 'statuslist+jwt') refuse('invalid', 'the status list is not a statuslist+jwt');
    if (claims.sub !== uri) refuse('invalid', 'the status list is for another URI');
    if (typeof claims.exp === 'number' && claims.exp + SKEW_SECONDS < nowSeconds) refuse('revoked', 'the status list has expired');
    return token;
  };
}

/**
 * The verified credential checked against the request's DCQL query by dcql (its format, `vct` among
 * the query's vct_values, every claim the query asks for present, holder binding); the claims it
 * matched.
 */
function matchQuery(input: VerifyInput, claims: Record<string, unknown>): Record<string, unknown> {
  const presented = { credential_format: PID_FORMAT as 'dc+sd-jwt', vct: typeof claims.vct === 'string' ? claims.vct : '', claims: claims as never, cryptographic_holder_binding: true };
  let result: DcqlPresentationResult;
  try {
    result = DcqlPresentationResult.fromDcqlPresentation({ [input.credentialQueryId]: [presented] }, { dcqlQuery: input.query });
  } catch {
    return refuse('invalid', 'the presentation cannot be checked against the query');
  }
  const match = result.credential_matches[input.credentialQueryId];
  if (!result.can_be_satisfied || !match?.success) return refuse('invalid', claims.vct === PID_VCT ? 'the PID lacks a claim the query asks for' : 'not a PID');
  const output = match.valid_credentials[0].claims.valid_claim_sets[0].output;
  return output && typeof output === 'object' ? (output as Record<string, unknown>) : refuse('invalid', 'the query matched no claims');
}

/** Verifies a presented PID; refuses it with a reason, never with an exception of another kind for bad input. */
export async function verifyPid(input: VerifyInput): Promise<VerifiedPid> {
  const nowSeconds = Math.floor((input.now ?? Date.now)() / 1000);
  const parts = input.presentation.split('~');
  // <jwt>~<disclosure>~…~<kb-jwt>: with no disclosure, <jwt>~<kb-jwt>; without a key-binding JWT the last part is empty.
  if (parts.length < 2 || parts[parts.length - 1] === '') refuse('binding', 'no key-binding JWT');
  let header: ReturnType<typeof decodeProtectedHeader>;
  let payload: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(parts[0]!);
    payload = decodeJwt(parts[0]!);
  } catch {
    return refuse('invalid', 'the credential is not a JWT');
  }
  if (header.typ !== 'dc+sd-jwt' || header.alg !== 'ES256') refuse('invalid', 'not a dc+sd-jwt signed with ES256');
  const issuer = typeof payload.iss === 'string' ? input.issuers.get(payload.iss) : undefined;
  if (!issuer) return refuse('untrusted_issuer', 'the issuer is not trusted');
  if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number') refuse('invalid', 'the credential has no iat or exp');
  if ((payload.exp as number) + SKEW_SECONDS < nowSeconds) refuse('expired', 'the credential has expired');
  // dcql does not refuse over-disclosure (a presentation with more claims still satisfies the query): Kapija does.
  checkDisclosures(parts, payload, requestedClaimNames(input.query, input.credentialQueryId));

  const statusPayload = payload.status as { status_list?: { idx?: unknown; uri?: unknown } } | undefined;
  if (!statusPayload?.status_list || typeof statusPayload.status_list.uri !== 'string' || typeof statusPayload.status_list.idx !== 'number') {
    refuse('invalid', 'the credential has no status list entry');
  }
  const verifier = issuerVerifier(issuer);
  const entry = statusPayload!.status_list as { idx: number; uri: string };
  // An issuer in this process answers the entry itself; the library's status list check is then not run.
  if (issuer.status && (await issuer.status(entry.uri, entry.idx)) !== 0) refuse('revoked', 'the credential is revoked');
  const sdjwt = new SDJwtVcInstance({
    hasher: digest,
    verifier,
    statusVerifier: verifier,
    kbVerifier: kbVerifier as never,
    statusListFetcher: statusListFetcher(input.fetch, nowSeconds, input.allowHttp ?? false),
    statusValidator: async (status: number) => {
      if (status !== 0) refuse('revoked', 'the credential is revoked or suspended');
    },
  });
  // Answered above by the issuer in this process: the library's check (a token fetched from the URI) is not run.
  if (issuer.status) Object.assign(sdjwt, { verifyStatus: async () => undefined });
  let result: Awaited<ReturnType<SDJwtVcInstance['verify']>>;
  try {
    result = await sdjwt.verify(input.presentation, { keyBindingNonce: input.nonce, currentDate: nowSeconds, skewSeconds: SKEW_SECONDS });
  } catch (err) {
    if (err instanceof PresentationRefused) throw err;
    const message = err instanceof Error ? err.message : String(err);
    // The library says which check failed only in its message.
    if (/nonce|Key Binding|sd_hash|kb/i.test(message)) refuse('binding', message);
    if (/Status List/i.test(message)) refuse('revoked', message);
    if (/expired/i.test(message)) refuse('expired', message);
    return refuse('invalid', message);
  }
  const kb = result.kb;
  if (!kb) return refuse('binding', 'no key-binding JWT');
  if (kb.payload.aud !== input.clientId) refuse('binding', 'the key-binding JWT is for another verifier');
  if (typeof kb.payload.iat !== 'number' || kb.payload.iat > nowSeconds + SKEW_SECONDS || kb.payload.iat < nowSeconds - KB_MAX_AGE_SECONDS) refuse('binding', 'the key-binding JWT is not fresh');
  return { issuer, claims: matchQuery(input, result.payload as Record<string, unknown>) };
}
