/**
 * Kapija's side of the wallet tests: a registered wallet client, a citizen whose identity was
 * verified with a JMBG, the portal's credential offer read from /account/wallet, and the published
 * documents (issuer keys, status lists) a verifier reads.
 */
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { getListFromStatusListJWT } from '@sd-jwt/jwt-status-list';
import { ACR } from '../../../src/assurance/levels.js';
import { PRE_AUTHORIZED_CODE_GRANT } from '../../../src/oidc/client-metadata.js';
import type { Kapija } from '../../../src/app.js';
import { Agent } from '../browserless.js';
import { openPortal, signIn, type SignInOptions } from '../sign-in.js';
import { createTestAccount, createTestClient, uniqueJmbg } from '../kapija.js';

export const WALLET_REDIRECT = 'http://127.0.0.1:9/wallet-callback';

/** A public wallet client; by default it requires a sign-in at substantial, as a deployment registers one. */
export async function registerWallet(kapija: Kapija, opts: { minAcr?: 'substantial' | null } = {}) {
  const { clientId } = await createTestClient(
    kapija,
    {
      client_name: 'Test wallet',
      redirect_uris: [WALLET_REDIRECT],
      grant_types: ['authorization_code', PRE_AUTHORIZED_CODE_GRANT],
      scope: 'openid',
      kapija_wallet: true,
      ...(opts.minAcr === null ? {} : { kapija_min_acr: ACR.substantial }),
    },
    { public: true },
  );
  return clientId;
}

export async function verifiedCitizen(kapija: Kapija, identity: 'high' | 'substantial' | 'low' | 'none' = 'high') {
  const jmbg = uniqueJmbg();
  return { ...(await createTestAccount(kapija, { jmbg, identity, givenName: 'Jelena', familyName: 'Jovanović' })), jmbg };
}

/** The portal's credential offer link, read from /account/wallet as the citizen sees it. */
export async function portalOffer(agent: Agent, issuer: string, citizen: SignInOptions): Promise<string> {
  const page = await openPortal(agent, issuer, citizen, '/account/wallet');
  const href = /<a href="([^"]+)" data-credential-offer>/.exec(page.body)?.[1];
  if (!href) throw new Error('no credential offer on /account/wallet');
  return href.replace(/&amp;/g, '&');
}

/** The sign-in a wallet's authorization request leads to, done over HTTP with the citizen's factors. */
export const walletSignIn = (agent: Agent, citizen: SignInOptions) => (url: URL) => signIn(agent, url, WALLET_REDIRECT, citizen);

export const offerUri = (offer: object) => `openid-credential-offer://?credential_offer=${encodeURIComponent(JSON.stringify(offer))}`;

/** The issuer's credential-signing keys as published at /.well-known/jwt-vc-issuer. */
export async function issuerKeys(issuer: string): Promise<{ issuer: string; jwks: { keys: JWK[] } }> {
  const res = await fetch(`${issuer}/.well-known/jwt-vc-issuer`);
  expect(res.status).toBe(200);
  return (await res.json()) as { issuer: string; jwks: { keys: JWK[] } };
}

/** The status (0 valid, 1 revoked) of an entry in the published status list, its token verified. */
export async function publishedStatus(issuer: string, status: { idx: number; uri: string }): Promise<number> {
  const res = await fetch(status.uri);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/statuslist+jwt');
  const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1]);
  expect(maxAge).toBeGreaterThan(0);
  expect(maxAge).toBeLessThanOrEqual(300);
  const jwt = await res.text();
  const { kid } = decodeProtectedHeader(jwt);
  const key = (await issuerKeys(issuer)).jwks.keys.find((k) => k.kid === kid);
  expect(key).toBeDefined();
  const { payload } = await jwtVerify(jwt, await importJWK(key!, 'ES256'), { typ: 'statuslist+jwt', issuer });
  expect(payload.sub).toBe(status.uri);
  return getListFromStatusListJWT(jwt).getStatus(status.idx);
}

export { Agent };
