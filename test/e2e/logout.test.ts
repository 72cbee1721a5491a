/**
 * Signing out through Kapija: RP-initiated logout (confirmation page, redirect back with state,
 * session gone) and back-channel logout tokens delivered to the relying party and verified against
 * Kapija's JWKS. Back-channel delivery to loopback works only because test configurations set
 * ALLOW_PRIVATE_NETWORK_FETCH=true; without it oidc-provider's SSRF guard must stop it.
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { Agent } from '../support/browserless.js';
import { confirmLogout, signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, testConfig, type RunningKapija } from '../support/kapija.js';
import { createSqliteDatabase } from '../support/databases.js';
import { freePort, spawnKapija } from '../support/spawn-kapija.js';
import { createKapija } from '../../src/app.js';
import { startLogoutReceiver, type LogoutReceiver } from '../support/logout-receiver.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const AFTER_LOGOUT = 'http://127.0.0.1:9/signed-out';

/** What signedIn needs: where Kapija answers, and a handle on its store to create the citizen and the client. */
type Target = Pick<RunningKapija, 'kapija' | 'url'>;

async function signedIn(server: Target, receiver: LogoutReceiver) {
  const citizen = await createTestAccount(server.kapija);
  const rp = await createTestClient(server.kapija, {
    redirect_uris: [REDIRECT],
    post_logout_redirect_uris: [AFTER_LOGOUT],
    backchannel_logout_uri: receiver.url,
    backchannel_logout_session_required: true,
  });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const agent = new Agent();
  const callback = await signIn(agent, url, REDIRECT, citizen);
  const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
  return { citizen, rp, config, tokens, agent };
}

describe('with private network fetch allowed (test configuration)', () => {
  let receiver: LogoutReceiver;

  const server = kapijaForSuite();
  beforeAll(async () => {
    receiver = await startLogoutReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  test('RP-initiated logout confirms on a Kapija page, redirects back with state and ends the session', async () => {
    const { config, tokens, agent } = await signedIn(server, receiver);
    const state = oidc.randomState();
    const endSession = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: AFTER_LOGOUT,
      state,
    });

    const { confirmation, done } = await confirmLogout(agent, endSession);
    expect(confirmation.status).toBe(200);
    expect(confirmation.headers.get('content-type')).toMatch(/text\/html/);
    // Kapija's own page (its layout and its buttons), not the engine's bare default
    expect(confirmation.body).toMatch(/<html[^>]*lang="en"/);
    expect(confirmation.body).toMatch(/form="op\.logoutForm"[^>]*name="logout" value="yes"/);

    expect(done.status).toBeGreaterThanOrEqual(300);
    expect(done.status).toBeLessThan(400);
    const back = new URL(done.headers.get('location')!);
    expect(`${back.origin}${back.pathname}`).toBe(AFTER_LOGOUT);
    expect(back.searchParams.get('state')).toBe(state);
    expect(agent.jar.get('kapija.session')).toBeUndefined();

    // the session is gone: a silent authorization request now needs a login
    const silent = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      prompt: 'none',
    });
    const answer = await agent.follow(await agent.request(silent), (u) => u.href.startsWith(REDIRECT));
    expect(answer).toBeInstanceOf(URL);
    expect((answer as URL).searchParams.get('error')).toBe('login_required');
    expect((answer as URL).searchParams.get('code')).toBeNull();
  });

  test('an unregistered post_logout_redirect_uri gets an error page and no redirect', async () => {
    const { config, tokens, agent } = await signedIn(server, receiver);
    const endSession = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: 'http://127.0.0.1:9/not-registered',
    });
    const page = await agent.request(endSession);
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
    expect(page.body).toContain('post_logout_redirect_uri');
  });

  test('back-channel logout delivers a logout token that verifies against Kapija\'s JWKS', async () => {
    const { config, tokens, agent, rp, citizen } = await signedIn(server, receiver);
    const sid = tokens.claims()!.sid as string | undefined;
    expect(typeof sid).toBe('string');
    const before = receiver.tokens.length;

    const { done } = await confirmLogout(agent, oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }));
    expect(done.status).toBe(303);
    // oidc-provider awaits delivery before it answers, so the token has arrived by now
    expect(receiver.tokens.length).toBe(before + 1);
    const logoutToken = receiver.tokens.at(-1)!;

    expect(decodeProtectedHeader(logoutToken).typ).toBe('logout+jwt');
    const jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const { payload } = await jwtVerify(logoutToken, jwks, {
      issuer: server.url,
      audience: rp.clientId,
      typ: 'logout+jwt',
      maxTokenAge: '2 minutes',
    });
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(payload.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));
    expect(payload.sid).toBe(sid);
    expect(typeof payload.jti).toBe('string');
    expect(payload.nonce).toBeUndefined();

    // and the grant is revoked with the session: the access token no longer introspects as active
    const intro = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(intro.active).toBe(false);
  });

  test('a logout token signed by another key does not verify', async () => {
    const { config, tokens, agent } = await signedIn(server, receiver);
    await confirmLogout(agent, oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }));
    const [header, payload] = receiver.tokens.at(-1)!.split('.');
    const forged = `${header}.${payload}.${Buffer.from('not a signature').toString('base64url')}`;
    await expect(jwtVerify(forged, createRemoteJWKSet(new URL(`${server.url}/jwks`)))).rejects.toThrow();
  });
});

describe('with private network fetch refused (ALLOW_PRIVATE_NETWORK_FETCH=false)', () => {
  let receiver: LogoutReceiver;

  const server = kapijaForSuite({ env: { ALLOW_PRIVATE_NETWORK_FETCH: 'false', NODE_ENV: 'test' } });
  beforeAll(async () => {
    receiver = await startLogoutReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  test('a back-channel logout to 127.0.0.1 is not delivered, and the citizen is still signed out', async () => {
    expect(server.kapija.config.allowPrivateNetworkFetch).toBe(false);
    const errors: string[] = [];
    const onError = (_ctx: unknown, err: Error) => errors.push(err.message);
    server.kapija.provider.on('backchannel.error', onError);
    try {
      const { config, tokens, agent } = await signedIn(server, receiver);
      const { done } = await confirmLogout(
        agent,
        oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: AFTER_LOGOUT }),
      );
      expect(done.status).toBe(303);
      expect(done.headers.get('location')).toMatch(/^http:\/\/127\.0\.0\.1:9\/signed-out/);
      expect(receiver.tokens).toHaveLength(0);
      expect(errors).toHaveLength(1);
    } finally {
      server.kapija.provider.off('backchannel.error', onError);
    }
  });
});

describe('in a real server process with private network fetch refused', () => {
  test('oidc-provider\'s SSRF guard stops the back-channel logout to 127.0.0.1', async () => {
    const db = createSqliteDatabase();
    const port = await freePort();
    const env = { ...db.env, ISSUER: `http://127.0.0.1:${port}`, MASTER_KEY: randomBytes(32).toString('base64') };
    // an in-process handle on the same SQLite file creates the citizen and the client
    const kapija = await createKapija(testConfig(env));
    const receiver = await startLogoutReceiver();
    const child = await spawnKapija({ ...env, ALLOW_PRIVATE_NETWORK_FETCH: 'false', LOG_LEVEL: 'info' }, { port });
    try {
      const { config, tokens, agent } = await signedIn({ kapija, url: child.url }, receiver);
      const { done } = await confirmLogout(agent, oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }));
      expect(done.status).toBe(303);
      expect(receiver.tokens).toHaveLength(0);
      // the refusal is oidc-provider's own guard, not Kapija's fail-closed fallback for a missing guard
      expect(child.output()).not.toContain('failed to setup SSRF protection');
      expect(child.output()).not.toContain('SSRF protection is unavailable');
    } finally {
      await child.stop();
      await receiver.close();
      await kapija.close();
      await db.drop();
    }
  });
});
