/**
 * A real relying party (openid-client v6) signs a citizen in through Kapija: authorization code
 * with PKCE, ID token verified against JWKS, userinfo, refresh rotation, introspection, revocation.
 */
import * as oidc from 'openid-client';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

const server = kapijaForSuite();

async function discover(clientId: string, secret: string | undefined) {
  return oidc.discovery(new URL(server.url), clientId, secret, secret ? undefined : oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

async function codeFlow(scope = 'openid profile email offline_access') {
  const citizen = await createTestAccount(server.kapija, { givenName: 'Јована', familyName: 'Јовановић' });
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  const config = await discover(rp.clientId, rp.clientSecret);
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
    prompt: 'consent',
  });
  const agent = new Agent();
  const callback = await signIn(agent, url, REDIRECT, citizen);
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  return { citizen, rp, config, tokens, agent };
}

describe('authorization code flow with PKCE', () => {
  test('issues a verified ID token carrying only the claims of the granted scopes', async () => {
    const { citizen, tokens, config, rp } = await codeFlow('openid email');
    const claims = tokens.claims()!;
    // pairwise by default: the service sees its own identifier, not Kapija's account id
    expect(claims.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));
    expect(claims.sub).not.toBe(citizen.account.id);
    expect(claims.iss).toBe(server.url);
    // password + TOTP: two factors, eIDAS substantial
    expect(claims.acr).toBe('http://eidas.europa.eu/LoA/substantial');
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims.given_name).toBeUndefined();
    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(info.email).toBe(citizen.account.email);
    expect(info.email_verified).toBe(true);
    // profile was not granted: nothing of it leaves
    expect(info.given_name).toBeUndefined();
    expect(info.preferred_username).toBeUndefined();
    expect(tokens.refresh_token).toBeUndefined();
  });

  test('releases profile claims when the profile scope is granted', async () => {
    const { citizen, tokens, config } = await codeFlow('openid profile');
    const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    expect(info).toMatchObject({ given_name: 'Јована', family_name: 'Јовановић', preferred_username: citizen.username });
    expect(info.email).toBeUndefined();
  });

  test('rotates refresh tokens and revokes the grant when a used one is presented again', async () => {
    const { tokens, config } = await codeFlow();
    expect(tokens.refresh_token).toBeTruthy();
    const first = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(first.refresh_token).toBeTruthy();
    expect(first.refresh_token).not.toBe(tokens.refresh_token);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // reuse detection revoked the whole grant: the rotated token is dead too
    await expect(oidc.refreshTokenGrant(config, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const intro = await oidc.tokenIntrospection(config, first.access_token);
    expect(intro.active).toBe(false);
  });

  test('introspects and revokes access tokens', async () => {
    const { tokens, config, rp } = await codeFlow('openid');
    const active = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(active).toMatchObject({ active: true, client_id: rp.clientId });
    await oidc.tokenRevocation(config, tokens.access_token);
    const after = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(after.active).toBe(false);
  });
});
