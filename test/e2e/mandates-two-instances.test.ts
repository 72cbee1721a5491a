/**
 * Mandates across two Kapija server processes on one PostgreSQL database: the representative acts
 * for the principal through instance A, the service uses the tokens at instance B, and the
 * principal withdraws the mandate on A's portal while B is being asked. From the moment the
 * withdrawal is answered, neither instance accepts the tokens (userinfo, introspection, refresh)
 * nor exchanges a token for the principal: nothing is cached per process.
 */
import * as oidc from 'openid-client';
import { Agent } from '../support/browserless.js';
import { openPortal, signInChoosing, submitForm, type SignInOptions } from '../support/sign-in.js';
import { createTestAccount, createTestClient } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';
import type { KapijaProcess } from '../support/spawn-kapija.js';
import { twoProcessesOnPg } from '../support/two-processes.js';
import type { Kapija } from '../../src/app.js';
import { ledgerChain } from '../../src/account/ledger.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

if (!pgAvailable()) {
  process.stdout.write('[skip] mandates-two-instances: PostgreSQL not reachable (two processes need a shared database)\n');
  test.skip('mandates on two instances (PostgreSQL not reachable)', () => undefined);
} else {
  describe('mandates on two server processes sharing one database', () => {
    const two = twoProcessesOnPg('kapija-mandates-two');
    let a: KapijaProcess;
    let b: KapijaProcess;
    let store: Kapija;
    beforeAll(() => ({ a, b, store } = two));

    /** Signs in at `url` as `who`, choosing `choice` on the representation page. */
    const signInFor = (agent: Agent, url: URL, who: SignInOptions, choice: string) => signInChoosing(agent, url, REDIRECT, who, { choice });

    test('withdrawn on A while B serves the tokens: from the answer on, neither instance accepts them', async () => {
      const principal = await createTestAccount(store, { givenName: 'Mira' });
      const representative = await createTestAccount(store);
      const rp = await createTestClient(store, { redirect_uris: [REDIRECT], scope: 'openid profile offline_access', kapija_accepts_representation: true, grant_types: ['authorization_code', 'refresh_token', EXCHANGE] });
      const m = await store.mandates.grant(principal.account.id, representative.username, { services: [rp.clientId], purposes: ['general'] });
      const atA = await oidc.discovery(new URL(a.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      const { supportsPKCE: _method, ...metadata } = atA.serverMetadata();
      const atB = new oidc.Configuration({ ...metadata, token_endpoint: `${b.url}/token`, userinfo_endpoint: `${b.url}/me`, introspection_endpoint: `${b.url}/token/introspection` }, rp.clientId, rp.clientSecret);
      oidc.allowInsecureRequests(atB);

      // Acting for the principal, signed in at A; the code redeemed at B.
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(atA, { redirect_uri: REDIRECT, scope: 'openid profile offline_access', prompt: 'consent', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const tokens = await oidc.authorizationCodeGrant(atB, await signInFor(new Agent('en'), url, representative, m.id), { pkceCodeVerifier: verifier });
      const principalSub = tokens.claims()!.sub;
      expect(principalSub).toBe(await store.subjectFor(principal.account.id, rp.clientId));
      expect(tokens.claims()!['act']).toEqual({ sub: await store.subjectFor(representative.account.id, rp.clientId) });
      // The representative's own token (for themselves) for the exchange, signed in at B.
      const ownVerifier = oidc.randomPKCECodeVerifier();
      const ownUrl = oidc.buildAuthorizationUrl(atA, { redirect_uri: REDIRECT, scope: 'openid profile', code_challenge: await oidc.calculatePKCECodeChallenge(ownVerifier), code_challenge_method: 'S256' });
      const viaB = new URL(`${ownUrl.pathname}${ownUrl.search}`, b.url);
      const own = await oidc.authorizationCodeGrant(atA, await signInFor(new Agent('en'), viaB, representative, 'self'), { pkceCodeVerifier: ownVerifier });
      const exchange = (base: string) =>
        fetch(`${base}/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: EXCHANGE, subject_token_type: AT_TYPE, subject_token: own.access_token, requested_subject: principalSub }),
        });
      const exchanged = (await (await exchange(b.url)).json()) as { access_token: string; mandate_id: string };
      expect(exchanged.mandate_id).toBe(m.id);

      // In use at B (and A).
      for (const config of [atA, atB]) {
        expect((await oidc.fetchUserInfo(config, tokens.access_token, principalSub))['given_name']).toBe('Mira');
        expect(await oidc.tokenIntrospection(config, exchanged.access_token)).toMatchObject({ active: true, sub: principalSub, mandate_id: m.id });
      }

      // B is asked without pause while the principal withdraws the mandate on A's portal.
      const portal = new Agent('en');
      const page = await openPortal(portal, a.url, principal, '/account/mandates');
      let asking = true;
      const answers: Array<{ sent: number; status: number }> = [];
      const hammer = (async () => {
        while (asking) {
          const sent = Date.now();
          const res = await fetch(`${b.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
          answers.push({ sent, status: res.status });
          await res.arrayBuffer();
        }
      })();
      const withdrawn = await submitForm(portal, page, /\/account\/mandates\/withdraw$/, { mandate_id: m.id });
      const answeredAt = Date.now();
      expect(withdrawn.status).toBe(303);
      await new Promise((r) => setTimeout(r, 200));
      asking = false;
      await hammer;
      // Every request sent to B after the withdrawal was answered was refused.
      expect(answers.filter((x) => x.sent > answeredAt && x.status !== 401)).toEqual([]);
      expect(answers.filter((x) => x.sent > answeredAt).length).toBeGreaterThan(0);

      for (const config of [atA, atB]) {
        await expect(oidc.fetchUserInfo(config, tokens.access_token, principalSub)).rejects.toThrow();
        await expect(oidc.fetchUserInfo(config, exchanged.access_token, principalSub)).rejects.toThrow();
        expect(await oidc.tokenIntrospection(config, exchanged.access_token)).toMatchObject({ active: false });
        expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: false });
      }
      await expect(oidc.refreshTokenGrant(atB, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      for (const base of [a.url, b.url]) {
        const res = await exchange(base);
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
      }
      // Both ledgers: granted, two uses (the sign-in at A, the exchange at B), withdrawn, in that order.
      for (const who of [principal, representative]) {
        const entries = (await store.audit.list({ chain: ledgerChain(who.account.id), action: 'ledger.' })).filter((e) => e.action.startsWith('ledger.mandate_')).reverse();
        expect(entries.map((e) => [e.action, e.details['how'] ?? null])).toEqual([
          ['ledger.mandate_granted', null],
          ['ledger.mandate_used', 'signin'],
          ['ledger.mandate_used', 'token_exchange'],
          ['ledger.mandate_withdrawn', null],
        ]);
      }
    }, 60_000);
  });
}
