/**
 * Privacy by default: services in different sectors see different, unlinkable `sub` values for the
 * same citizen; services grouped under one sector share it; only a client registered as public
 * sees Kapija's account identifier.
 */
import * as oidc from 'openid-client';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';

const server = kapijaForSuite();

const agents = new Map<string, Agent>();

/** The `sub` a new service at `redirect` receives; one browser per citizen, so single sign-on spares the codes. */
async function subAt(citizen: Awaited<ReturnType<typeof createTestAccount>>, redirect: string, extra: Record<string, unknown> = {}) {
  if (!agents.has(citizen.username)) agents.set(citizen.username, new Agent());
  const rp = await createTestClient(server.kapija, { redirect_uris: [redirect], ...extra });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const cb = await signIn(agents.get(citizen.username)!, url, redirect, citizen);
  const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, idTokenExpected: true });
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  expect(info.sub).toBe(tokens.claims()!.sub);
  return tokens.claims()!.sub;
}

test('two sectors get unlinkable identifiers; one sector shares it; a public client sees the account id', async () => {
  const citizen = await createTestAccount(server.kapija);
  const tax = await subAt(citizen, 'http://127.0.0.1:9/cb');
  const health = await subAt(citizen, 'http://127.0.0.2:9/cb');
  const taxAgain = await subAt(citizen, 'http://127.0.0.1:9/other');
  const grouped = await subAt(citizen, 'http://127.0.0.3:9/cb', { kapija_sector: '127.0.0.1:9' });
  const open = await subAt(citizen, 'http://127.0.0.4:9/cb', { subject_type: 'public' });

  expect(tax).not.toBe(health);
  expect(tax).not.toContain(citizen.account.id);
  expect(health).not.toContain(citizen.account.id);
  expect(taxAgain).toBe(tax);
  expect(grouped).toBe(tax);
  expect(open).toBe(citizen.account.id);
  // stable: another citizen differs, the same citizen repeats
  const other = await createTestAccount(server.kapija);
  expect(await subAt(other, 'http://127.0.0.1:9/cb')).not.toBe(tax);
});
