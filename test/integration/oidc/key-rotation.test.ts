/**
 * Scheduled signing-key rotation with an injected clock: the next key is published ahead of use,
 * signs after the activation delay, and every instance on the database swaps its engine without a
 * restart; the emergency rotation signs at once.
 */
import * as oidc from 'openid-client';
import { decodeProtectedHeader } from 'jose';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const DAY = 24 * 3600 * 1000;
let clock = Date.now();
let a: RunningKapija;
let b: RunningKapija;

beforeAll(async () => {
  a = await startKapija({ options: { now: () => clock } });
  b = await startKapija({ testDb: a.testDb, options: { now: () => clock } });
});
afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

async function rsaKids(server: RunningKapija): Promise<string[]> {
  const res = await fetch(`${server.url}/jwks`);
  const { keys } = (await res.json()) as { keys: { kid: string; alg: string }[] };
  return keys.filter((k) => k.alg === 'RS256').map((k) => k.kid);
}

/** Signs a new citizen in and returns the kid of the ID token's signature. */
async function idTokenKid(server: RunningKapija): Promise<string> {
  const citizen = await createTestAccount(server.kapija);
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const callback = await signIn(new Agent(), url, REDIRECT, citizen);
  // openid-client verifies the signature against the published JWKS.
  const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
  return decodeProtectedHeader(tokens.id_token!).kid!;
}

test('keys rotate on schedule, are published an activation delay ahead, and every instance follows', async () => {
  const [first] = await rsaKids(a);
  expect(await rsaKids(a)).toEqual([first]);
  expect(await idTokenKid(a)).toBe(first);

  clock += 89 * DAY;
  expect(await a.kapija.refreshKeys()).toBe(false);

  clock += 2 * DAY;
  expect(await a.kapija.refreshKeys()).toBe(true);
  const published = await rsaKids(a);
  expect(published).toHaveLength(2);
  expect(published[0]).toBe(first); // the current key still signs; the next one is only published
  const next = published[1]!;
  expect(await idTokenKid(a)).toBe(first);
  // The other instance has not looked yet; a second rotation attempt there adds nothing.
  expect(await rsaKids(b)).toEqual([first]);
  expect(await b.kapija.refreshKeys()).toBe(true);
  expect(await rsaKids(b)).toEqual([first, next]);
  expect(await a.kapija.refreshKeys()).toBe(false);

  clock += 3600 * 1000 + 1000; // KEY_ACTIVATION_DELAY_SECONDS default: one hour
  expect(await a.kapija.refreshKeys()).toBe(true);
  expect(await b.kapija.refreshKeys()).toBe(true);
  expect(await rsaKids(a)).toEqual([next, first]); // the old key stays published to verify
  expect(await rsaKids(b)).toEqual([next, first]);
  expect(await idTokenKid(a)).toBe(next);
  expect(await idTokenKid(b)).toBe(next);
});

test('an emergency rotation signs at once', async () => {
  const [current] = await rsaKids(a);
  const [fresh] = await a.kapija.keys.rotateSigning().then(async () => {
    expect(await a.kapija.refreshKeys()).toBe(true);
    return rsaKids(a);
  });
  expect(fresh).not.toBe(current);
  expect(await idTokenKid(a)).toBe(fresh);
  expect(await rsaKids(a)).toContain(current);
});
