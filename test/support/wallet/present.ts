/**
 * A test holder's presentation, built from the OpenWallet Foundation libraries only
 * (@openid4vc/openid4vp, @sd-jwt/sd-jwt-vc, dcql), jose and node built-ins — none of Kapija's code:
 * given a PID (compact SD-JWT), the holder's key and an authorization request URL
 * (`openid4vp://?client_id=…&request_uri=…`), it fetches the signed request by reference and
 * verifies it (x509_san_dns: the certificate's dNSName names the client and the response URI's host),
 * matches the DCQL query, presents only the claims the query asks for with a key-binding JWT
 * (nonce, audience = client_id), encrypts the answer to the request's key (direct_post.jwt) and
 * posts it.
 *
 * Options let a test play a misbehaving wallet: disclose other claims, change the presentation after
 * it was made, sign the key-binding JWT with another nonce or audience, or skip the post to replay
 * the encrypted answer itself.
 *
 * The verifier's self-signed certificate is accepted as a test wallet's pinned verifier: a real
 * wallet checks it against its access certificate authority.
 */
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { CompactEncrypt, compactVerify, exportJWK, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { Openid4vpClient } from '@openid4vc/openid4vp';
import { setGlobalConfig } from '@openid4vc/utils';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { ES256, digest, generateSalt } from '@sd-jwt/crypto-nodejs';
import { DcqlQuery } from 'dcql';

/** The holder's private key: a JWK, a key object, or the key pair obtain.ts returns (its `privateJwk`). */
export type HolderKey = JWK | CryptoKey | KeyObject | { readonly privateJwk: JWK };

export interface PresentOptions {
  /** Claims to disclose instead of those the query asks for (a wallet that over-shares). */
  disclose?: readonly string[];
  /** Changes the presentation (SD-JWT~disclosures~KB-JWT) before it is encrypted. */
  tamper?: (presentation: string) => string;
  /** Overrides of the key-binding JWT's claims. */
  kb?: { nonce?: string; aud?: string; iat?: number };
  /** Build and encrypt the answer but do not post it. */
  skipPost?: boolean;
  fetch?: typeof fetch;
}

export interface Presented {
  /** The decoded request object. */
  request: Record<string, unknown>;
  /** The presentation sent in the vp_token. */
  presentation: string;
  /** The encrypted answer (the `response` form field). */
  responseJwe: string;
  responseUri: string;
  /** The verifier's answer to the post (absent with skipPost). */
  status?: number;
  body?: Record<string, unknown>;
}

setGlobalConfig({ allowInsecureUrls: true });

const privateJwkOf = async (key: HolderKey): Promise<JWK> => {
  if ('privateJwk' in key) return key.privateJwk;
  return 'kty' in key ? (key as JWK) : exportJWK(key as CryptoKey | KeyObject);
};

const sanDnsNames = (certificate: string) => {
  const cert = new X509Certificate(Buffer.from(certificate, 'base64'));
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4));
};

function client(fetcher: typeof fetch) {
  return new Openid4vpClient({
    callbacks: {
      fetch: fetcher,
      hash: (data, alg) => new Uint8Array(createHash(alg === 'sha-384' ? 'sha384' : alg === 'sha-512' ? 'sha512' : 'sha256').update(data).digest()),
      getX509CertificateMetadata: (certificate) => ({ sanDnsNames: sanDnsNames(certificate), sanUriNames: [] }),
      async verifyJwt(signer, jwt) {
        if (signer.method !== 'x5c') return { verified: false };
        const cert = new X509Certificate(Buffer.from(signer.x5c[0]!, 'base64'));
        try {
          await compactVerify(jwt.compact, cert.publicKey, { algorithms: ['ES256'] });
        } catch {
          return { verified: false };
        }
        return { verified: true, signerJwk: (await exportJWK(cert.publicKey)) as never };
      },
      async encryptJwe(encryptor, data) {
        const jwk = encryptor.publicJwk as JWK;
        const jwe = await new CompactEncrypt(new TextEncoder().encode(data))
          .setProtectedHeader({ alg: encryptor.alg, enc: encryptor.enc, ...(jwk.kid ? { kid: jwk.kid } : {}) })
          .encrypt(await importJWK(jwk, encryptor.alg));
        return { encryptionJwk: encryptor.publicJwk, jwe };
      },
      signJwt: () => {
        throw new Error('the test wallet signs no response JWT');
      },
      decryptJwe: () => {
        throw new Error('the test wallet decrypts no request');
      },
    },
  });
}

/** The claim names the query's credential asks for (top-level paths). */
function requestedClaims(query: DcqlQuery, id: string): string[] {
  const credential = query.credentials.find((c) => c.id === id);
  return (credential?.claims ?? []).map((c) => String((c as { path: unknown[] }).path[0]));
}

export async function presentPid(credential: string, holderKey: HolderKey, authorizationRequestUrl: string, opts: PresentOptions = {}): Promise<Presented> {
  const fetcher = opts.fetch ?? fetch;
  const url = new URL(authorizationRequestUrl);
  const wallet = client(fetcher);
  const resolved = await wallet.resolveOpenId4vpAuthorizationRequest({
    authorizationRequestPayload: { client_id: url.searchParams.get('client_id')!, request_uri: url.searchParams.get('request_uri')! } as never,
  });
  const request = resolved.authorizationRequestPayload as Record<string, unknown> & { client_id: string; nonce: string; response_uri: string };
  if (!resolved.dcql) throw new Error('the request has no DCQL query');

  // Match the PID against the query, as a wallet does before asking its holder.
  const query = DcqlQuery.parse(resolved.dcql.query as DcqlQuery.Input);
  DcqlQuery.validate(query);
  const sdjwt = new SDJwtVcInstance({ hasher: digest, saltGenerator: generateSalt, kbSigner: await ES256.getSigner(await privateJwkOf(holderKey)), kbSignAlg: 'ES256' });
  const claims = (await sdjwt.getClaims(credential)) as Record<string, unknown> & { vct: string };
  const match = DcqlQuery.query(query, [{ credential_format: 'dc+sd-jwt', vct: claims.vct, claims: claims as never, cryptographic_holder_binding: true }]);
  if (!match.can_be_satisfied) throw new Error('the PID does not satisfy the query');
  const queryId = query.credentials[0]!.id;

  const disclose = opts.disclose ?? requestedClaims(query, queryId);
  const frame = Object.fromEntries(disclose.map((name) => [name, true]));
  const kbPayload = { iat: Math.floor(Date.now() / 1000), aud: request.client_id, nonce: request.nonce, ...opts.kb };
  let presentation = await sdjwt.present(credential, frame as never, { kb: { payload: kbPayload as never } });
  if (opts.tamper) presentation = opts.tamper(presentation);

  const response = await wallet.createOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: resolved.authorizationRequestPayload,
    authorizationResponsePayload: { vp_token: { [queryId]: [presentation] } } as never,
    jarm: {
      encryption: { nonce: randomBytes(16).toString('base64url') },
      serverMetadata: { authorization_signing_alg_values_supported: ['ES256'], authorization_encryption_alg_values_supported: ['ECDH-ES'], authorization_encryption_enc_values_supported: ['A128GCM', 'A256GCM'] },
    },
  });
  const responseJwe = response.jarm!.responseJwt;
  const out: Presented = { request, presentation, responseJwe, responseUri: request.response_uri };
  if (opts.skipPost) return out;
  const posted = await wallet.submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: { response_uri: request.response_uri } as never,
    authorizationResponsePayload: response.authorizationResponsePayload,
    jarm: { responseJwt: responseJwe },
  });
  out.status = posted.response.status;
  out.body = (await posted.response.json().catch(() => ({}))) as Record<string, unknown>;
  return out;
}

/** Posts an encrypted answer again (a replay), as the wallet's direct_post would. */
export async function postResponse(responseUri: string, responseJwe: string, fetcher: typeof fetch = fetch): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetcher(responseUri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ response: responseJwe }).toString() });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}
