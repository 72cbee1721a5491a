/**
 * Ending a citizen's session from the server side (what the account portal and the administrators
 * use): the session is listed by account, ending it revokes its grants' tokens and delivers a
 * back-channel logout token for its sid; other sessions live on.
 */
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../../support/kapija.js';
import { startLogoutReceiver, type LogoutReceiver } from '../../support/logout-receiver.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
let receiver: LogoutReceiver;

const server = kapijaForSuite();
beforeAll(async () => {
  receiver = await startLogoutReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

test('ending one session revokes its tokens, tells the service, and leaves the other session alone', async () => {
  const citizen = await createTestAccount(server.kapija);
  const rp = await createTestClient(server.kapija, {
    redirect_uris: [REDIRECT],
    backchannel_logout_uri: receiver.url,
    backchannel_logout_session_required: true,
  });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const browserSession = async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const cb = await signIn(new Agent(), url, REDIRECT, citizen);
    return oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, idTokenExpected: true });
  };
  const first = await browserSession();
  const second = await browserSession();

  const sessions = await server.kapija.sessions.listForAccount(citizen.account.id);
  expect(sessions).toHaveLength(2);
  for (const s of sessions) expect(s.clients.map((c) => c.clientId)).toEqual([rp.clientId]);
  const firstSid = first.claims()!.sid;
  const target = sessions.find((s) => s.clients[0]!.sid === firstSid)!;
  expect(target).toBeDefined();

  // another account cannot end it
  expect(await server.kapija.sessions.end(target.id, { accountId: 'someone-else' })).toBeUndefined();

  const ended = await server.kapija.sessions.end(target.id, { accountId: citizen.account.id });
  expect(ended!.deliveries).toEqual([{ clientId: rp.clientId, backchannel: 'delivered' }]);
  expect(ended!.grantsRevoked).toHaveLength(1);

  await expect(oidc.refreshTokenGrant(config, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await oidc.tokenIntrospection(config, first.access_token)).active).toBe(false);
  await expect(oidc.refreshTokenGrant(config, second.refresh_token!)).resolves.toHaveProperty('access_token');

  expect(receiver.tokens).toHaveLength(1);
  const { payload, protectedHeader } = await jwtVerify(receiver.tokens[0]!, createRemoteJWKSet(new URL(`${server.url}/jwks`)), {
    issuer: server.url,
    audience: rp.clientId,
  });
  expect(protectedHeader.typ).toBe('logout+jwt');
  expect(payload).toMatchObject({ sub: await server.kapija.subjectFor(citizen.account.id, rp.clientId), sid: firstSid });
  expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });

  const all = await server.kapija.sessions.endAllForAccount(citizen.account.id);
  expect(all).toHaveLength(1);
  expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
  await expect(oidc.refreshTokenGrant(config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
});

test('a service whose back-channel endpoint fails is reported as failed, and the session still ends', async () => {
  const citizen = await createTestAccount(server.kapija);
  const rp = await createTestClient(server.kapija, {
    redirect_uris: [REDIRECT],
    backchannel_logout_uri: 'http://127.0.0.1:9/nothing-listens-here',
    backchannel_logout_session_required: true,
  });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  await signIn(new Agent(), url, REDIRECT, citizen);
  const [session] = await server.kapija.sessions.listForAccount(citizen.account.id);
  const ended = await server.kapija.sessions.end(session!.id);
  expect(ended!.deliveries).toHaveLength(1);
  expect(ended!.deliveries[0]).toMatchObject({ clientId: rp.clientId, backchannel: 'failed' });
  expect(await server.kapija.sessions.listForAccount(citizen.account.id)).toEqual([]);
});
