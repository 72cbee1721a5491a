/**
 * A test wallet (holder) built from the OpenWallet Foundation's OpenID4VCI libraries, jose and
 * Node's built-ins only — none of Kapija's code: credential offer → issuer metadata → access token
 * (authorization code, or pre-authorized code with tx_code) → c_nonce → jwt proof → credential.
 *
 * `obtainPid` runs the whole flow; `TestWallet` exposes each step so attack tests can go out of
 * order, reuse a nonce or tamper with a proof.
 */
import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';
import { clientAuthenticationNone, HashAlgorithm, setGlobalConfig, type CallbackContext, type Jwk } from '@openid4vc/oauth2';
import { Openid4vciClient } from '@openid4vc/openid4vci';

// Kapija runs on http://127.0.0.1 in the tests.
setGlobalConfig({ allowInsecureUrls: true });

export interface HolderKey {
  privateKey: CryptoKey;
  /** The same private key as a JWK (for libraries that take one). */
  privateJwk: JWK;
  publicJwk: JWK;
}

export async function newHolderKey(alg: 'ES256' | 'ES384' = 'ES256'): Promise<HolderKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, privateJwk: await exportJWK(privateKey), publicJwk: await exportJWK(publicKey) };
}

type Metadata = Awaited<ReturnType<Openid4vciClient['resolveIssuerMetadata']>>;
type Offer = Awaited<ReturnType<Openid4vciClient['resolveCredentialOffer']>>;

export class TestWallet {
  readonly client: Openid4vciClient;
  offer!: Offer;
  metadata!: Metadata;

  constructor(readonly clientId: string, readonly holder: HolderKey) {
    const callbacks: Omit<CallbackContext, 'verifyJwt' | 'decryptJwe' | 'encryptJwe'> = {
      hash: (data, alg) => {
        if (alg !== HashAlgorithm.Sha256) throw new Error(`hash ${alg} not supported by the test wallet`);
        return new Uint8Array(createHash('sha256').update(data).digest());
      },
      generateRandom: (n) => new Uint8Array(randomBytes(n)),
      clientAuthentication: clientAuthenticationNone({ clientId }),
      signJwt: async (signer, { header, payload }) => {
        if (signer.method !== 'jwk') throw new Error('the test wallet signs with its jwk only');
        const jwt = await new SignJWT(payload as Record<string, unknown>).setProtectedHeader(header as { alg: string }).sign(holder.privateKey);
        return { jwt, signerJwk: signer.publicJwk };
      },
    };
    this.client = new Openid4vciClient({ callbacks });
  }

  /** Opens a credential offer (an `openid-credential-offer://` link) and the issuer's metadata. */
  async open(offerUri: string): Promise<void> {
    this.offer = await this.client.resolveCredentialOffer(offerUri);
    this.metadata = await this.client.resolveIssuerMetadata(this.offer.credential_issuer);
  }

  get configurationId(): string {
    return this.offer.credential_configuration_ids[0]!;
  }

  /** The authorization code flow: `authorize` signs the citizen in at the given URL and returns the redirect it ended at. */
  async tokenByAuthorizationCode(redirectUri: string, authorize: (url: URL) => Promise<URL>): Promise<string> {
    const configuration = this.metadata.credentialIssuer.credential_configurations_supported[this.configurationId] as { scope?: string };
    const { authorizationRequestUrl, pkce, authorizationServer } = await this.client.createAuthorizationRequestUrlFromOffer({
      clientId: this.clientId,
      credentialOffer: this.offer,
      issuerMetadata: this.metadata,
      redirectUri,
      ...(configuration.scope ? { scope: configuration.scope } : {}),
    });
    const callback = await authorize(new URL(authorizationRequestUrl));
    const serverMetadata = this.metadata.authorizationServers.find((s) => s.issuer === authorizationServer)!;
    const response = this.client.parseAndVerifyAuthorizationResponseRedirectUrl({ url: callback.href, authorizationServerMetadata: serverMetadata });
    if (!response.code) throw new Error(`authorization failed: ${String(response.error)} ${String(response.error_description ?? '')}`);
    const { accessTokenResponse } = await this.client.retrieveAuthorizationCodeAccessTokenFromOffer({
      credentialOffer: this.offer,
      issuerMetadata: this.metadata,
      authorizationCode: response.code,
      ...(pkce ? { pkceCodeVerifier: pkce.codeVerifier } : {}),
      redirectUri,
    });
    return accessTokenResponse.access_token;
  }

  /** The pre-authorized code flow with the transaction code the registrar told the citizen. */
  async tokenByPreAuthorizedCode(txCode: string | undefined): Promise<string> {
    const { accessTokenResponse } = await this.client.retrievePreAuthorizedCodeAccessTokenFromOffer({
      credentialOffer: this.offer,
      issuerMetadata: this.metadata,
      ...(txCode === undefined ? {} : { txCode }),
    });
    return accessTokenResponse.access_token;
  }

  async nonce(): Promise<string> {
    return (await this.client.requestNonce({ issuerMetadata: this.metadata })).c_nonce;
  }

  /** A jwt proof of the holder key, as the library makes it. */
  async proof(nonce: string): Promise<string> {
    const { jwt } = await this.client.createCredentialRequestJwtProof({
      issuerMetadata: this.metadata,
      credentialConfigurationId: this.configurationId,
      nonce,
      signer: { method: 'jwk', alg: 'ES256', publicJwk: this.holder.publicJwk as Jwk },
    });
    return jwt;
  }

  /** The credential request, as the library sends it; resolves to the compact SD-JWT. */
  async credential(accessToken: string, proofJwt: string): Promise<string> {
    const result = await this.client.retrieveCredentials({
      issuerMetadata: this.metadata,
      accessToken,
      credentialConfigurationId: this.configurationId,
      proofs: { jwt: [proofJwt] },
    });
    const first = result.credentialResponse.credentials?.[0] as { credential?: unknown } | undefined;
    const credential = first?.credential;
    if (typeof credential !== 'string') throw new Error('no credential in the response');
    return credential;
  }

  /** The raw credential request (for attack tests): status and JSON body. */
  async rawCredentialRequest(accessToken: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(this.metadata.credentialIssuer.credential_endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }
}

export interface ObtainOptions {
  offer: string;
  clientId: string;
  /** Authorization code flow: the wallet's redirect URI (a loopback URL) and the sign-in that returns to it. */
  authorize?: { redirectUri: string; signIn: (url: URL) => Promise<URL> };
  /** Pre-authorized code flow: the transaction code. */
  txCode?: string;
}

/** The whole flow: returns the compact SD-JWT and the holder key it is bound to. */
export async function obtainPid(opts: ObtainOptions): Promise<{ credential: string; holderKey: HolderKey }> {
  const holderKey = await newHolderKey();
  const wallet = new TestWallet(opts.clientId, holderKey);
  await wallet.open(opts.offer);
  const accessToken = opts.authorize ? await wallet.tokenByAuthorizationCode(opts.authorize.redirectUri, opts.authorize.signIn) : await wallet.tokenByPreAuthorizedCode(opts.txCode);
  const credential = await wallet.credential(accessToken, await wallet.proof(await wallet.nonce()));
  return { credential, holderKey };
}
