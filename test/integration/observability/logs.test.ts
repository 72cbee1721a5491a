/**
 * A whole sign-in with logging at debug, written to memory: the log must carry request ids, and no
 * password, one-time code, client secret, token, cookie or personal data of the citizen.
 */
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { generate } from 'otplib/functional';
import { createLogger } from '../../../src/security/redact.js';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
let output = '';
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    output += chunk.toString('utf8');
    done();
  },
});
const server = kapijaForSuite({ env: { LOG_LEVEL: 'debug' }, options: { logger: createLogger('debug', sink) } });

test('a sign-in, token exchange, userinfo and refresh leave no secret or personal data in the log', async () => {
  const citizen = await createTestAccount(server.kapija, {
    givenName: 'Драгослава',
    familyName: 'Стефановић',
    email: `dragoslava.${Date.now()}@example.rs`,
    password: 'correct horse battery staple 7',
  });
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid profile email offline_access',
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const agent = new Agent();
  const callback = await signIn(agent, url, REDIRECT, citizen);
  const code = callback.searchParams.get('code')!;
  const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  expect(info.given_name).toBe('Драгослава');
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  // A failing password attempt is logged as a failure, still without the password typed.
  const wrong = await signIn(new Agent(), url, REDIRECT, { ...citizen, password: 'Wrong-Password-42!' }).catch((e: unknown) => e);
  expect(wrong).toBeInstanceOf(Error);

  // The log was really written at debug, per request, with ids.
  const lines = output.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const requests = lines.filter((l) => l.msg === 'request');
  expect(requests.length).toBeGreaterThan(8);
  expect(requests.every((l) => typeof l.requestId === 'string' && (l.requestId as string).length === 36)).toBe(true);
  expect(requests.some((l) => l.route === 'oidc:token')).toBe(true);

  const step = Math.floor(Date.now() / 30_000);
  const totpCodes = await Promise.all([-3, -2, -1, 0, 1, 2].map((d) => generate({ secret: citizen.totpSecret!, epoch: (step + d) * 30 })));
  // Every cookie value but the language's, which is a locale tag ("en") and no secret.
  const jar = (agent.jar as unknown as { cookies: Map<string, { value: string }> }).cookies;
  const cookies = [...jar.entries()].filter(([key]) => !/^(__Host-)?kapija\.lang\|/.test(key)).map(([, c]) => c.value);
  expect(cookies.length).toBeGreaterThan(1);
  const secrets: Record<string, string> = {
    password: citizen.password,
    wrongPassword: 'Wrong-Password-42!',
    clientSecret: rp.clientSecret!,
    code,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token!,
    idToken: tokens.id_token!,
    newAccessToken: refreshed.access_token,
    newRefreshToken: refreshed.refresh_token!,
    email: citizen.account.email!,
    username: citizen.username,
    givenName: 'Драгослава',
    familyName: 'Стефановић',
    birthdate: '1990-05-17',
    ...Object.fromEntries(cookies.map((c, i) => [`cookie${i}`, c])),
  };
  for (const [what, value] of Object.entries(secrets)) {
    expect({ what, found: output.includes(value) }).toEqual({ what, found: false });
  }
  for (const totp of totpCodes) {
    expect(totp).toMatch(/^\d{6}$/);
    expect(output).not.toMatch(new RegExp(`(?<!\\d)${totp}(?!\\d)`));
  }
});
