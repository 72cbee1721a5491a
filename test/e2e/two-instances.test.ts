/**
 * Two Kapija server processes behind one issuer on one PostgreSQL database, as behind a load
 * balancer: both start together on an empty database, and a citizen signed in at one is served by
 * the other — code redeemed at B, refresh at A, userinfo at B, the session cookie honoured by B.
 */
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';
import type { KapijaProcess } from '../support/spawn-kapija.js';
import { twoProcessesOnPg } from '../support/two-processes.js';
import type { Kapija } from '../../src/app.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

if (!pgAvailable()) {
  process.stdout.write('[skip] two-instances: PostgreSQL not reachable (two processes need a shared database)\n');
  test.skip('two instances share one PostgreSQL database (PostgreSQL not reachable)', () => undefined);
} else {
  describe('two server processes on one database', () => {
    const two = twoProcessesOnPg('kapija-two');
    let a: KapijaProcess;
    let b: KapijaProcess;
    let store: Kapija;
    let issuer: string;
    beforeAll(() => ({ a, b, store, issuer } = two));

    test('both are ready and publish the same keys and issuer', async () => {
      for (const p of [a, b]) {
        expect((await fetch(`${p.url}/readyz`)).status).toBe(200);
        expect(p.output()).toMatch(/"msg":"kapija listening"/);
        expect(p.output()).not.toMatch(/"level":(50|60)/);
      }
      const [jwksA, jwksB] = await Promise.all([a, b].map(async (p) => (await fetch(`${p.url}/jwks`)).json()));
      expect(jwksB).toEqual(jwksA);
      const disco = (await (await fetch(`${b.url}/.well-known/openid-configuration`)).json()) as { issuer: string };
      expect(disco.issuer).toBe(issuer);
    });

    test('sign in at A, redeem at B, refresh at A, userinfo at B; B honours A\'s session', async () => {
      const citizen = await createTestAccount(store);
      const rp = await createTestClient(store, { redirect_uris: [REDIRECT] });
      const atA = await oidc.discovery(new URL(a.url), rp.clientId, rp.clientSecret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      // The same issuer, with B's address for the back-channel endpoints.
      const { supportsPKCE: _method, ...metadata } = atA.serverMetadata();
      const atB = new oidc.Configuration(
        { ...metadata, token_endpoint: `${b.url}/token`, userinfo_endpoint: `${b.url}/me`, introspection_endpoint: `${b.url}/token/introspection` },
        rp.clientId,
        rp.clientSecret,
      );
      oidc.allowInsecureRequests(atB);

      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = oidc.buildAuthorizationUrl(atA, {
        redirect_uri: REDIRECT,
        scope: 'openid profile offline_access',
        prompt: 'consent',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      expect(url.origin).toBe(a.url);
      const agent = new Agent();
      const callback = await signIn(agent, url, REDIRECT, citizen);

      const tokens = await oidc.authorizationCodeGrant(atB, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
      expect(tokens.claims()!.sub).toBe(await store.subjectFor(citizen.account.id, rp.clientId));
      expect(tokens.claims()!.iss).toBe(issuer);
      // B signed it with the shared key: it verifies against A's JWKS
      await jwtVerify(tokens.id_token!, createRemoteJWKSet(new URL(`${a.url}/jwks`)), { issuer, audience: rp.clientId });
      expect(tokens.refresh_token).toBeTruthy();

      const refreshed = await oidc.refreshTokenGrant(atA, tokens.refresh_token!);
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      expect(refreshed.access_token).not.toBe(tokens.access_token);

      const info = await oidc.fetchUserInfo(atB, refreshed.access_token, tokens.claims()!.sub);
      expect(info.preferred_username).toBe(citizen.username);

      // the session made at A (cookie signed with the shared cookie keys) lets B answer prompt=none
      const silentVerifier = oidc.randomPKCECodeVerifier();
      const silent = oidc.buildAuthorizationUrl(atA, {
        redirect_uri: REDIRECT,
        scope: 'openid',
        prompt: 'none',
        code_challenge: await oidc.calculatePKCECodeChallenge(silentVerifier),
        code_challenge_method: 'S256',
      });
      const viaB = new URL(`${silent.pathname}${silent.search}`, b.url);
      const answer = await agent.follow(await agent.request(viaB), (u) => u.href.startsWith(REDIRECT));
      expect(answer).toBeInstanceOf(URL);
      expect((answer as URL).searchParams.get('error')).toBeNull();
      expect((answer as URL).searchParams.get('code')).toBeTruthy();

      // rotation is shared too: the refresh token already used at A is refused at B (and the grant revoked)
      await expect(oidc.refreshTokenGrant(atB, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.refreshTokenGrant(atA, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });
  });
}
