/**
 * Every release of personal data is announced with the service, the claims and the channel (the
 * citizen's ledger records it), and every session's device and place are kept for the portal.
 */
import * as oidc from 'openid-client';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../../support/kapija.js';
import type { KapijaEvents } from '../../../src/events.js';
import { ledgerChain } from '../../../src/account/ledger.js';
import { createSessionDeviceRepository } from '../../../src/store/session-devices.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const server = kapijaForSuite();

test('ID token, userinfo and introspection releases name the service and exactly the claims that left', async () => {
  const releases: KapijaEvents['data.released'][] = [];
  server.kapija.events.on('data.released', (r) => void releases.push(r));
  const citizen = await createTestAccount(server.kapija);
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const cb = await signIn(new Agent('en'), url, REDIRECT, citizen);
  const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, idTokenExpected: true });
  await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  await oidc.tokenIntrospection(config, tokens.access_token);

  const mine = releases.filter((r) => r.accountId === citizen.account.id);
  expect(mine.map((r) => r.channel)).toEqual(['id_token', 'userinfo', 'introspection']);
  for (const r of mine) expect(r.clientId).toBe(rp.clientId);
  expect(mine[0]!.claims).toEqual(['sub']);
  expect(mine[1]!.claims).toEqual(['email', 'email_verified', 'sub']);
  expect(mine[2]!.claims).toContain('sub');
  expect(mine[2]!.claims).not.toContain('active');
  // The ID token's entry was written with the tokens themselves; the others before their response
  // was sent, which a failed entry withholds: every announced release is already in the ledger.
  expect(mine.map((r) => r.recorded)).toEqual([true, true, true]);
  const ledger = await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id) });
  const released = ledger.filter((e) => e.action === 'ledger.data_released').reverse();
  expect(released.map((e) => [e.clientId, e.details.channel, e.details.claims])).toEqual([
    [rp.clientId, 'id_token', ['sub']],
    [rp.clientId, 'userinfo', ['email', 'email_verified', 'sub']],
    [rp.clientId, 'introspection', mine[2]!.claims],
  ]);
  expect(await server.kapija.audit.verify(ledgerChain(citizen.account.id))).toMatchObject({ ok: true });

  const devices = await createSessionDeviceRepository(server.kapija.db).listForAccount(citizen.account.id);
  expect(devices).toHaveLength(1);
  expect(devices[0]!.ip).toMatch(/127\.0\.0\.1/);
  expect(devices[0]!.userAgent).toBeTruthy();
  const [session] = await server.kapija.sessions.listForAccount(citizen.account.id);
  expect(session!.uid).toBe(devices[0]!.sessionUid);
});
