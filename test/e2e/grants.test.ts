/**
 * The grants and client types Kapija accepts, and the ones it refuses, exercised by a real relying
 * party (openid-client v6): client credentials, private_key_jwt, public clients with PKCE, PAR, JAR,
 * DPoP; implicit and password grants refused; redirect_uri compared exactly.
 */
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

const server = kapijaForSuite();

function discover(clientId: string, secret?: string, auth?: oidc.ClientAuth) {
  return oidc.discovery(new URL(server.url), clientId, secret, auth, { execute: [oidc.allowInsecureRequests] });
}

async function keyPair(alg: 'ES256' | 'RS256' = 'ES256') {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `k-${Math.random().toString(36).slice(2)}`;
  return { privateKey, publicKey, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

async function pkce() {
  const verifier = oidc.randomPKCECodeVerifier();
  return { verifier, challenge: await oidc.calculatePKCECodeChallenge(verifier) };
}

/** The authorization request parameters of a code flow with PKCE. */
async function codeParams(scope = 'openid') {
  const { verifier, challenge } = await pkce();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  return {
    verifier,
    state,
    nonce,
    params: { redirect_uri: REDIRECT, scope, code_challenge: challenge, code_challenge_method: 'S256', state, nonce },
  };
}

/** Error parameters of a redirect, from the query or the fragment. */
function redirectParams(location: string): URLSearchParams {
  const u = new URL(location);
  const merged = new URLSearchParams(u.search);
  for (const [k, v] of new URLSearchParams(u.hash.slice(1))) merged.append(k, v);
  return merged;
}

async function tokenRequest(body: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('client credentials', () => {
  test('a machine client gets an access token that introspects as its own', async () => {
    const rp = await createTestClient(server.kapija, {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: undefined,
    });
    const config = await discover(rp.clientId, rp.clientSecret);
    const tokens = await oidc.clientCredentialsGrant(config);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.id_token).toBeUndefined();
    const intro = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(intro).toMatchObject({ active: true, client_id: rp.clientId });
    expect(intro.sub).toBeUndefined();
  });

  test('a client not registered for client_credentials is refused', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const config = await discover(rp.clientId, rp.clientSecret);
    // oidc-provider answers invalid_request here (lib/actions/token.js), not RFC 6749's unauthorized_client
    await expect(oidc.clientCredentialsGrant(config)).rejects.toMatchObject({
      error: 'invalid_request',
      error_description: 'requested grant type is not allowed for this client',
    });
  });

  test('a wrong client secret is invalid_client', async () => {
    const rp = await createTestClient(server.kapija, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    const res = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic(rp.clientId, 'wrong') });
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });
});

describe('private_key_jwt client authentication', () => {
  test('a client proves itself with a JWT signed by its registered key', async () => {
    const key = await keyPair('ES256');
    const rp = await createTestClient(server.kapija, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [key.jwk] },
    });
    const citizen = await createTestAccount(server.kapija);
    const config = await discover(rp.clientId, undefined, oidc.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }));
    const { verifier, state, nonce, params } = await codeParams();
    const callback = await signIn(new Agent(), oidc.buildAuthorizationUrl(config, params), REDIRECT, citizen);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()!.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));
  });

  test('a JWT signed by another key is invalid_client', async () => {
    const registered = await keyPair('ES256');
    const other = await keyPair('ES256');
    const rp = await createTestClient(server.kapija, {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [registered.jwk] },
    });
    const config = await discover(rp.clientId, undefined, oidc.PrivateKeyJwt({ key: other.privateKey, kid: registered.kid }));
    await expect(oidc.clientCredentialsGrant(config)).rejects.toMatchObject({ error: 'invalid_client' });
    const good = await discover(rp.clientId, undefined, oidc.PrivateKeyJwt({ key: registered.privateKey, kid: registered.kid }));
    await expect(oidc.clientCredentialsGrant(good)).resolves.toMatchObject({ access_token: expect.any(String) });
  });
});

describe('public clients', () => {
  test('must use PKCE: an authorization request without code_challenge is refused', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] }, { public: true });
    const config = await discover(rp.clientId, undefined, oidc.None());
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 'xyz' });
    const res = await new Agent().request(url);
    expect(res.status).toBe(303);
    const params = redirectParams(res.headers.get('location')!);
    expect(params.get('error')).toBe('invalid_request');
    expect(params.get('error_description')).toMatch(/PKCE/);
    expect(params.get('state')).toBe('xyz');
    expect(params.get('code')).toBeNull();
  });

  test('the plain PKCE method is refused', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] }, { public: true });
    const config = await discover(rp.clientId, undefined, oidc.None());
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: oidc.randomPKCECodeVerifier(),
      code_challenge_method: 'plain',
    });
    const res = await new Agent().request(url);
    expect(redirectParams(res.headers.get('location')!).get('error')).toBe('invalid_request');
  });

  test('cannot authenticate with a client secret, and redeems its code once with the PKCE verifier', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] }, { public: true });
    const citizen = await createTestAccount(server.kapija);
    const config = await discover(rp.clientId, undefined, oidc.None());
    const { verifier, state, nonce, params } = await codeParams();
    const callback = await signIn(new Agent(), oidc.buildAuthorizationUrl(config, params), REDIRECT, citizen);
    const code = callback.searchParams.get('code')!;

    const withSecret = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      { authorization: basic(rp.clientId, 'any-secret') },
    );
    expect(withSecret.status).toBe(401);
    expect(withSecret.json.error).toBe('invalid_client');

    const wrongVerifier = await tokenRequest({
      grant_type: 'authorization_code',
      client_id: rp.clientId,
      code,
      redirect_uri: REDIRECT,
      code_verifier: oidc.randomPKCECodeVerifier(),
    });
    expect(wrongVerifier.status).toBe(400);
    expect(wrongVerifier.json.error).toBe('invalid_grant');

    // failed attempts do not burn the code (whoever intercepted it cannot deny the real client); the
    // client with the verifier and no secret redeems it once
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()!.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));
    expect(tokens.refresh_token).toBeUndefined();
    await expect(
      oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('pushed authorization requests (RFC 9126)', () => {
  test('authorize with a request_uri from the PAR endpoint; the request_uri is single-use', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const citizen = await createTestAccount(server.kapija);
    const config = await discover(rp.clientId, rp.clientSecret);
    const { verifier, state, nonce, params } = await codeParams();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, params);
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(url.searchParams.get('redirect_uri')).toBeNull();
    const callback = await signIn(new Agent(), url, REDIRECT, citizen);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()!.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));

    const again = await new Agent().request(url);
    expect(again.status).toBe(303);
    const p = redirectParams(again.headers.get('location')!);
    expect(p.get('error')).toBe('invalid_request_uri');
    expect(p.get('code')).toBeNull();
  });

  test('the PAR endpoint requires client authentication', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const res = await fetch(`${server.url}/request`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ client_id: rp.clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
  });
});

describe('signed request objects (JAR, RFC 9101)', () => {
  async function jarClient() {
    const key = await keyPair('ES256');
    const rp = await createTestClient(server.kapija, {
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'private_key_jwt',
      request_object_signing_alg: 'ES256',
      jwks: { keys: [key.jwk] },
    });
    return { key, rp };
  }

  test('a request object signed by the client\'s key is honoured', async () => {
    const { key, rp } = await jarClient();
    const citizen = await createTestAccount(server.kapija);
    const config = await discover(rp.clientId, undefined, oidc.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }));
    const { verifier, state, nonce, params } = await codeParams();
    const url = await oidc.buildAuthorizationUrlWithJAR(config, params, { key: key.privateKey, kid: key.kid });
    expect(url.searchParams.get('request')).toBeTruthy();
    expect(url.searchParams.get('scope')).toBeNull();
    const callback = await signIn(new Agent(), url, REDIRECT, citizen);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    expect(tokens.claims()!.nonce).toBe(nonce);
  });

  test('a request object signed by another key is refused without a code', async () => {
    const { key, rp } = await jarClient();
    const other = await keyPair('ES256');
    const config = await discover(rp.clientId, undefined, oidc.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }));
    const { params } = await codeParams();
    const url = await oidc.buildAuthorizationUrlWithJAR(config, params, { key: other.privateKey as CryptoKey, kid: key.kid });
    const res = await new Agent().request(url);
    // the redirect goes only to a registered redirect_uri of the client, with the error and no code
    expect(res.status).toBe(303);
    const location = res.headers.get('location')!;
    expect(location.startsWith(`${REDIRECT}?`)).toBe(true);
    const p = redirectParams(location);
    expect(p.get('error')).toBe('invalid_request_object');
    expect(p.get('code')).toBeNull();
  });
});

describe('DPoP (RFC 9449)', () => {
  test('binds the access token to the client\'s key; a bearer presentation of it is refused', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const citizen = await createTestAccount(server.kapija);
    const config = await discover(rp.clientId, rp.clientSecret);
    const dpopKey = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(config, dpopKey);
    const { verifier, state, nonce, params } = await codeParams();
    const callback = await signIn(new Agent(), oidc.buildAuthorizationUrl(config, params), REDIRECT, citizen);
    const tokens = await oidc.authorizationCodeGrant(
      config,
      callback,
      { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce },
      undefined,
      { DPoP },
    );
    expect(tokens.token_type.toLowerCase()).toBe('dpop');

    const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub, { DPoP });
    expect(info.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));

    const intro = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(intro.active).toBe(true);
    expect(intro.token_type).toBe('DPoP');
    const jkt = (intro.cnf as { jkt?: string } | undefined)?.jkt;
    expect(jkt).toBe(await calculateJkt(dpopKey.publicKey));

    const asBearer = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate') ?? '').toMatch(/invalid_token|DPoP/);
  });
});

async function calculateJkt(publicKey: CryptoKey): Promise<string> {
  const { calculateJwkThumbprint } = await import('jose');
  return calculateJwkThumbprint(await exportJWK(publicKey));
}

describe('refused flows', () => {
  test('implicit (response_type=id_token token) is refused with no token in the redirect', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const url = new URL(`${server.url}/auth`);
    url.search = new URLSearchParams({
      client_id: rp.clientId,
      response_type: 'id_token token',
      redirect_uri: REDIRECT,
      scope: 'openid',
      nonce: 'n-0S6_WzA2Mj',
      state: 's1',
    }).toString();
    const res = await new Agent().request(url);
    const location = res.headers.get('location');
    expect(location).toBeTruthy();
    expect(location!.startsWith(REDIRECT)).toBe(true);
    const p = redirectParams(location!);
    expect(p.get('error')).toBe('unsupported_response_type');
    expect(p.get('access_token')).toBeNull();
    expect(p.get('id_token')).toBeNull();
  });

  test('grant_type=password is refused', async () => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const citizen = await createTestAccount(server.kapija);
    const res = await tokenRequest(
      { grant_type: 'password', username: citizen.username, password: citizen.password, scope: 'openid' },
      { authorization: basic(rp.clientId, rp.clientSecret!) },
    );
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('unsupported_grant_type');
    expect(res.json.access_token).toBeUndefined();
  });

  test.each([
    ['a prefix', 'http://127.0.0.1:9/c'],
    ['an extra path segment', `${REDIRECT}/extra`],
    ['an extra query', `${REDIRECT}?next=https://evil.example`],
    ['another port', 'http://127.0.0.1:10/cb'],
    ['a trailing slash', `${REDIRECT}/`],
  ])('redirect_uri must match exactly: %s gets an error page, no redirect', async (_name, redirectUri) => {
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const config = await discover(rp.clientId, rp.clientSecret);
    const { params } = await codeParams();
    const url = oidc.buildAuthorizationUrl(config, { ...params, redirect_uri: redirectUri });
    const res = await new Agent().request(url);
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.body).toContain('redirect_uri');
  });
});
