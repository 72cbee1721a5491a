/**
 * The OpenID4VP 1.0 protocol of wallet sign-in, on the OpenWallet Foundation's libraries: the DCQL
 * query Kapija asks with (built and validated by `dcql`), the signed request object (JAR) and the
 * parsing, decryption and validation of the wallet's direct_post.jwt answer (@openid4vc/openid4vp's
 * Openid4vpVerifier). The cryptography the library leaves to its caller is done here with jose and
 * node:crypto, and the parts that carry a security property of Kapija stay Kapija's own:
 *
 * - the answer is decrypted only with the private key of the request it was posted to (decryptJwe
 *   ignores the key the library would pick from the request's metadata), with ECDH-ES and A128GCM
 *   or A256GCM only, and an answer that is not encrypted is refused (a signed-only one is never
 *   accepted: verifyJwt refuses every signature, Kapija asks for none);
 * - the state is compared here in constant time: the library compares it with `!==`, so the request
 *   payload it is given has none;
 * - the request is signed with Kapija's x509_san_dns key (keys.ts) and the client identifier is that.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { CompactSign, compactDecrypt, exportJWK, importJWK, type JWK } from 'jose';
import { JarmMode, Openid4vpVerifier } from '@openid4vc/openid4vp';
import { HashAlgorithm, setGlobalConfig, type CallbackContext, type Jwk } from '@openid4vc/oauth2';
import { DcqlQuery } from 'dcql';
import { PID_FORMAT, PID_VCT } from '../pid.js';
import type { RequestSigningKey } from './keys.js';

/** The claims Kapija asks for: the personal identifier it finds the account by, nothing else. */
export const REQUESTED_CLAIMS = ['personal_administrative_number'] as const;
/** The credential query's id in the DCQL query and the vp_token. */
export const PID_QUERY_ID = 'pid';
/** The JWE algorithms an answer may use: ECDH-ES to the request's key, AES-GCM. */
const KEY_MANAGEMENT = ['ECDH-ES'];
const CONTENT_ENCRYPTION = ['A128GCM', 'A256GCM'];

/** The DCQL query of wallet sign-in: one PID (dc+sd-jwt, Kapija's vct), only the personal identifier. */
function buildPidQuery(): DcqlQuery {
  const query = DcqlQuery.parse({
    credentials: [
      {
        id: PID_QUERY_ID,
        format: PID_FORMAT,
        meta: { vct_values: [PID_VCT] },
        claims: REQUESTED_CLAIMS.map((name) => ({ path: [name] })),
      },
    ],
  });
  DcqlQuery.validate(query);
  return query;
}

/** Built and validated once: a query dcql refuses stops Kapija at start, not at a sign-in. */
export const PID_QUERY: DcqlQuery = buildPidQuery();

/** The top-level claim names a credential query asks for (every path of Kapija's query is one name). */
export function requestedClaimNames(query: DcqlQuery, credentialQueryId: string): string[] {
  const credential = query.credentials.find((c) => c.id === credentialQueryId);
  if (!credential || credential.format !== PID_FORMAT) throw new Error(`no ${PID_FORMAT} credential query ${credentialQueryId}`);
  return (credential.claims ?? []).map((c) => {
    if (c.path.length !== 1 || typeof c.path[0] !== 'string') throw new Error('only top-level claims are requested');
    return c.path[0];
  });
}

/**
 * The library accepts only https response and request URIs unless told otherwise, for the whole
 * process. Kapija's ISSUER is https in production (config.ts refuses anything else there); in
 * development and tests it may be http, and then the library is told to accept it.
 */
export function allowHttpIssuer(issuer: string): void {
  if (new URL(issuer).protocol === 'http:') setGlobalConfig({ allowInsecureUrls: true });
}

/** What Openid4vpVerifier asks of its caller (nonces and states are Kapija's randomToken, so no generateRandom). */
type VerifierCallbacks = Omit<CallbackContext, 'generateRandom' | 'clientAuthentication'>;

const nodeHash = (alg: HashAlgorithm) => (alg === HashAlgorithm.Sha384 ? 'sha384' : alg === HashAlgorithm.Sha512 ? 'sha512' : 'sha256');

/** What a request's row holds that its request object and its answer's checks need. */
export interface RequestParams {
  readonly id: string;
  readonly clientId: string;
  readonly nonce: string;
  readonly state: string;
  readonly responseUri: string;
  /** The request's response-encryption key (private, ECDH-ES P-256). */
  readonly responseKey: JWK;
}

const publicPart = (jwk: JWK): JWK => {
  const { d: _private, ...pub } = jwk;
  return pub;
};

/** The authorization request's parameters (OpenID4VP 1.0 §5), the same when it is signed and when its answer is checked. */
function requestPayload(p: RequestParams, opts: { withState: boolean }) {
  return {
    client_id: p.clientId,
    response_type: 'vp_token' as const,
    response_mode: 'direct_post.jwt' as const,
    response_uri: p.responseUri,
    nonce: p.nonce,
    ...(opts.withState ? { state: p.state } : {}),
    dcql_query: PID_QUERY as unknown as Record<string, unknown>,
    client_metadata: {
      client_name: 'Kapija',
      jwks: { keys: [{ ...publicPart(p.responseKey), kid: `${p.id.slice(0, 8)}-enc`, use: 'enc', alg: 'ECDH-ES' } as Jwk] },
      encrypted_response_enc_values_supported: CONTENT_ENCRYPTION,
      vp_formats_supported: { [PID_FORMAT]: { 'sd-jwt_alg_values': ['ES256'], 'kb-jwt_alg_values': ['ES256'] } } as never,
    },
  };
}

/**
 * The library's callbacks for one request: signing with Kapija's request key, decrypting with this
 * request's key only. `decrypted` receives the plaintext of an answer that decrypted, so an error
 * response (which the library does not parse) can still be read.
 */
function callbacks(opts: { signingKey?: RequestSigningKey; responseKey?: JWK; decrypted?: (plaintext: string) => void }): VerifierCallbacks {
  return {
    hash: (data, alg) => new Uint8Array(createHash(nodeHash(alg)).update(data).digest()),
    async signJwt(signer, jwt) {
      const key = opts.signingKey;
      if (!key || signer.method !== 'x5c' || signer.alg !== 'ES256') throw new Error('Kapija signs only its request objects, with its x509_san_dns key');
      const compact = await new CompactSign(new TextEncoder().encode(JSON.stringify(jwt.payload)))
        .setProtectedHeader({ ...jwt.header, alg: 'ES256', x5c: key.x5c })
        .sign(key.privateKey);
      // The public key from the certificate: the private key is not extractable.
      const signerJwk = (await exportJWK(new X509Certificate(Buffer.from(key.x5c[0]!, 'base64')).publicKey)) as Jwk;
      return { jwt: compact, signerJwk };
    },
    // Kapija asks for an encrypted answer and for no signed one: no signature is ever accepted.
    verifyJwt: () => ({ verified: false }),
    encryptJwe: () => {
      throw new Error('Kapija encrypts no JWE as a verifier');
    },
    // The request's own key, whatever key the library would choose from the JWE header's kid.
    async decryptJwe(jwe) {
      const jwk = opts.responseKey;
      if (!jwk) return { decrypted: false };
      try {
        const { plaintext } = await compactDecrypt(jwe, await importJWK(jwk, 'ECDH-ES'), { keyManagementAlgorithms: KEY_MANAGEMENT, contentEncryptionAlgorithms: CONTENT_ENCRYPTION });
        const payload = new TextDecoder().decode(plaintext);
        opts.decrypted?.(payload);
        return { decrypted: true, decryptionJwk: publicPart(jwk) as Jwk, payload };
      } catch {
        return { decrypted: false };
      }
    },
  };
}

/** The signed request object (JAR, `oauth-authz-req+jwt`) of a request, valid for `expiresInSeconds`. */
export async function signedRequestObject(p: RequestParams, key: RequestSigningKey, requestUri: string, at: Date, expiresInSeconds: number): Promise<string> {
  const verifier = new Openid4vpVerifier({ callbacks: callbacks({ signingKey: key }) });
  const created = await verifier.createOpenId4vpAuthorizationRequest({
    authorizationRequestPayload: requestPayload(p, { withState: true }),
    jar: {
      requestUri,
      jwtSigner: { method: 'x5c', x5c: key.x5c, alg: 'ES256' },
      expiresInSeconds,
      // iat and exp by Kapija's clock (the library would take the system's); they take precedence over its own.
      additionalJwtPayload: { iss: key.clientId, aud: 'https://self-issued.me/v2', iat: Math.floor(at.getTime() / 1000), exp: Math.floor(at.getTime() / 1000) + expiresInSeconds },
    },
  });
  if (!created.jar) throw new Error('the request object was not signed');
  return created.jar.authorizationRequestJwt;
}

/** A direct_post.jwt answer, decrypted and parsed. */
export type ParsedAnswer =
  /** Not decrypted with the request's key, or not an authorization response. */
  | { kind: 'unreadable'; why: 'not_encrypted' | 'not_a_response' | 'state' }
  /** The wallet's error response (the citizen declined, or the wallet could not answer). */
  | { kind: 'error' }
  /** The presentations by credential query id. */
  | { kind: 'presentations'; presentations: Record<string, unknown[]> };

/**
 * Decrypts the `response` of a direct_post.jwt answer with the request's key and validates it
 * against the request (Openid4vpVerifier.parseOpenid4vpAuthorizationResponse), then its state in
 * constant time (`stateMatches`).
 */
export async function parseAnswer(p: RequestParams, response: string, stateMatches: (state: unknown) => boolean): Promise<ParsedAnswer> {
  let plaintext: string | undefined;
  const context = callbacks({ responseKey: p.responseKey, decrypted: (text) => (plaintext = text) });
  const verifier = new Openid4vpVerifier({ callbacks: context });
  let parsed: Awaited<ReturnType<Openid4vpVerifier['parseOpenid4vpAuthorizationResponse']>>;
  try {
    parsed = await verifier.parseOpenid4vpAuthorizationResponse({
      authorizationResponse: { response },
      authorizationRequestPayload: requestPayload(p, { withState: false }),
      callbacks: context,
    });
  } catch {
    if (plaintext === undefined) return { kind: 'unreadable', why: 'not_encrypted' };
    let body: unknown;
    try {
      body = JSON.parse(plaintext);
    } catch {
      return { kind: 'unreadable', why: 'not_a_response' };
    }
    const { state, error } = (body && typeof body === 'object' ? body : {}) as { state?: unknown; error?: unknown };
    if (!stateMatches(state)) return { kind: 'unreadable', why: 'state' };
    return typeof error === 'string' ? { kind: 'error' } : { kind: 'unreadable', why: 'not_a_response' };
  }
  if (parsed.jarm?.type !== JarmMode.Encrypted) return { kind: 'unreadable', why: 'not_encrypted' };
  if (!stateMatches(parsed.authorizationResponsePayload.state)) return { kind: 'unreadable', why: 'state' };
  if ((parsed.authorizationResponsePayload as { error?: unknown }).error !== undefined) return { kind: 'error' };
  if (parsed.type !== 'dcql') return { kind: 'unreadable', why: 'not_a_response' };
  return { kind: 'presentations', presentations: parsed.dcql.presentations as Record<string, unknown[]> };
}
