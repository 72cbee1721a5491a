/**
 * Signing in with a wallet end to end: a test PID issuer (test/support/wallet/test-issuer.ts, an
 * operator-added trusted issuer), a test wallet built from the OpenWallet Foundation libraries
 * (test/support/wallet/present.ts) and the browserless Agent holding the sign-in's cookies; the
 * relying party is openid-client. Every attack on the presentation and on its binding to the
 * browser is tried here.
 */
import * as oidc from 'openid-client';
import { CompactEncrypt, SignJWT, importJWK, type JWK } from 'jose';
import { Agent, formAction, type Page } from '../support/browserless.js';
import { submitForm } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg } from '../support/kapija.js';
import { holderKeyPair, startTestPidIssuer, type TestPidIssuer } from '../support/wallet/test-issuer.js';
import { postResponse, presentPid } from '../support/wallet/present.js';
import { translator, type Locale } from '../../src/i18n/index.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const HIGH = 'http://eidas.europa.eu/LoA/high';
const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
const unescape = (html: string) => html.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const t = translator('en' as Locale);

let highIssuer: TestPidIssuer;
let substantialIssuer: TestPidIssuer;
let strangerIssuer: TestPidIssuer;
beforeAll(async () => {
  [highIssuer, substantialIssuer, strangerIssuer] = await Promise.all([startTestPidIssuer(), startTestPidIssuer(), startTestPidIssuer()]);
});
afterAll(async () => {
  await Promise.all([highIssuer?.stop(), substantialIssuer?.stop(), strangerIssuer?.stop()]);
});

const server = kapijaForSuite(() => ({
  env: {
    WALLET_TRUSTED_ISSUERS: JSON.stringify([
      { issuer: highIssuer.issuer, level: 'high', jwks: highIssuer.jwks },
      { issuer: substantialIssuer.issuer, level: 'substantial', jwks_uri: substantialIssuer.jwksUri },
    ]),
  },
}));

let rp: { clientId: string; clientSecret?: string | undefined };
beforeAll(async () => {
  rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile' });
});

function authorize(extra: Record<string, string> = {}): URL {
  const u = new URL('/auth', server.url);
  u.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', ...extra }).toString();
  return u;
}

/** A citizen whose identity was verified with a JMBG, and a PID of that JMBG from `issuer`. */
async function citizenWithPid(issuer: TestPidIssuer = highIssuer, identity: 'high' | 'substantial' = 'high') {
  const jmbg = uniqueJmbg();
  const citizen = await createTestAccount(server.kapija, { jmbg, identity });
  const holder = await holderKeyPair();
  const { credential, idx } = await issuer.issue({ pan: jmbg, holder: holder.publicJwk });
  return { citizen, jmbg, holder, credential, idx };
}

interface WalletPage {
  agent: Agent;
  uid: string;
  page: Page;
  sameDevice: string;
  crossDevice: string;
  continueUrl: URL;
}

/** The sign-in page's "use a wallet" button, then the wallet page: its same-device link and the cross-device request. */
async function openWalletPage(agent: Agent = new Agent(), url: URL = authorize()): Promise<WalletPage> {
  const login = await agent.follow(await agent.request(url), isCallback);
  if (login instanceof URL) throw new Error('reached the service without signing in');
  const started = await submitForm(agent, login, /\/wallet\/start$/, {});
  expect(started.status).toBe(303);
  const page = await agent.request(new URL(started.headers.get('location')!, server.url));
  expect(page.status).toBe(200);
  const uid = /\/interaction\/([^/?]+)\/wallet/.exec(page.url.pathname)![1]!;
  const sameDevice = unescape(/href="(openid4vp:[^"]+)"/.exec(page.body)![1]!);
  const continueUrl = new URL(unescape(/href="(\/interaction\/[^"]+\/wallet\/identify\?request=[^"]+)"/.exec(page.body)![1]!), server.url);
  // The QR code carries the cross-device request: the same client, that request's URI.
  const same = new URL(sameDevice);
  const crossDevice = `openid4vp://?client_id=${encodeURIComponent(same.searchParams.get('client_id')!)}&request_uri=${encodeURIComponent(`${server.url}/wallet/request/${continueUrl.searchParams.get('request')!}`)}`;
  return { agent, uid, page, sameDevice, crossDevice, continueUrl };
}

/** From a page of the sign-in to the service: consent when asked. */
async function finish(agent: Agent, first: Page): Promise<URL> {
  let step = await agent.follow(first, isCallback);
  for (let i = 0; i < 3 && !(step instanceof URL); i += 1) {
    const page: Page = step;
    if (!formAction(page.body, /\/confirm$/)) throw new Error(`unexpected page ${page.url.pathname} (${page.status}): ${page.body.slice(0, 400)}`);
    step = await agent.follow(await submitForm(agent, page, /\/confirm$/, {}), isCallback);
  }
  if (!(step instanceof URL)) throw new Error('the sign-in did not reach the service');
  return step;
}

/** The page a same-device answer's redirect leads to (a refusal page, or the next step). */
async function followRedirect(agent: Agent, redirectUri: unknown): Promise<Page> {
  expect(typeof redirectUri).toBe('string');
  const step = await agent.follow(await agent.request(new URL(redirectUri as string)), isCallback);
  if (step instanceof URL) throw new Error('reached the service');
  return step;
}

/** A hand-made answer encrypted to the request's key (its client_metadata), as a wallet would post it. */
async function encryptTo(request: Record<string, unknown>, payload: Record<string, unknown>, alg = 'ECDH-ES'): Promise<string> {
  const jwk = (request.client_metadata as { jwks: { keys: JWK[] } }).jwks.keys[0]!;
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg, enc: 'A128GCM', kid: jwk.kid! })
    .encrypt(await importJWK({ ...jwk, alg }, alg));
}

/** Presents with the test wallet on the same device and expects the refusal page for `reason`. */
async function expectRefusal(reason: string, present: (w: WalletPage) => Promise<{ body?: Record<string, unknown> }>) {
  const w = await openWalletPage();
  const answer = await present(w);
  const page = await followRedirect(w.agent, answer.body?.redirect_uri);
  expect(page.url.pathname).toBe(`/interaction/${w.uid}/wallet/refused`);
  expect(page.status).toBe(403);
  expect(unescape(page.body)).toContain(t(`wallet.refused.${reason}` as never));
  return w;
}

describe('signing in with a wallet', () => {
  test('the sign-in page offers the wallet in three languages; the wallet page has the link, the QR code and "continue"', async () => {
    for (const [locale, text] of [['en', 'Sign in with a digital identity wallet'], ['sr-Latn', 'Prijavi se novčanikom digitalnog identiteta'], ['sr-Cyrl', 'Пријави се новчаником дигиталног идентитета']] as const) {
      const agent = new Agent(locale);
      const login = (await agent.follow(await agent.request(authorize({ ui_locales: locale })), isCallback)) as Page;
      expect(unescape(login.body)).toContain(text);
    }
    const w = await openWalletPage();
    expect(w.sameDevice).toMatch(/^openid4vp:\/\/\?client_id=x509_san_dns%3A127\.0\.0\.1&request_uri=/);
    expect(w.page.body).toMatch(/<img class="qr" src="data:image\/png;base64,/);
    expect(w.page.headers.get('cache-control')).toBe('no-store');
    // Reloading the page shows the same requests (no new rows while neither was used).
    const again = await w.agent.request(w.page.url);
    expect(again.body).toContain(w.continueUrl.searchParams.get('request')!);
  });

  test('same device: the wallet presents the PID, only the JMBG is disclosed, and the service gets acr high, amr hwk + pin + pop + mfa', async () => {
    const { holder, credential, jmbg } = await citizenWithPid();
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', acr_values: HIGH, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const w = await openWalletPage(new Agent(), url);
    // The key pair as obtain.ts returns it (its privateJwk is used).
    const presented = await presentPid(credential, holder, w.sameDevice);
    expect(presented.status).toBe(200);
    // The request: signed, by reference, encrypted answers to a per-request key, the DCQL query for the PID's JMBG alone.
    expect(presented.request).toMatchObject({ response_mode: 'direct_post.jwt', response_type: 'vp_token', client_id: 'x509_san_dns:127.0.0.1' });
    // dcql writes out the defaults: one credential, bound to the holder's key.
    expect(presented.request.dcql_query).toEqual({
      credentials: [{ id: 'pid', format: 'dc+sd-jwt', multiple: false, require_cryptographic_holder_binding: true, meta: { vct_values: ['urn:eudi:pid:1'] }, claims: [{ path: ['personal_administrative_number'] }] }],
    });
    // Selective disclosure: one disclosure, the JMBG; the names and date of birth stay in the wallet.
    const disclosures = presented.presentation.split('~').slice(1, -1);
    expect(disclosures).toHaveLength(1);
    expect(JSON.parse(Buffer.from(disclosures[0]!, 'base64url').toString())).toEqual([expect.any(String), 'personal_administrative_number', jmbg]);
    expect(presented.presentation).not.toContain(Buffer.from('Petrović').toString('base64url'));

    const callback = await finish(w.agent, await w.agent.request(new URL(presented.body!.redirect_uri as string)));
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    const id = tokens.claims() as Record<string, unknown>;
    expect(id.acr).toBe(HIGH);
    expect([...(id.amr as string[])].sort()).toEqual(['hwk', 'mfa', 'pin', 'pop']);
  });

  test('cross device: the page polls, the browser that started the sign-in continues; a substantial issuer gives substantial, amr swk', async () => {
    const { holder, credential } = await citizenWithPid(substantialIssuer);
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const w = await openWalletPage(new Agent(), url);
    const statusUrl = new URL(`/interaction/${w.uid}/wallet/status?request=${w.continueUrl.searchParams.get('request')!}`, server.url);
    const poll = async () => JSON.parse((await w.agent.request(statusUrl, { headers: { accept: 'application/json' } })).body) as { status: string };
    expect(await poll()).toEqual({ status: 'pending' });
    // "Continue" before the wallet answered: nothing to redeem, and nothing is spent.
    expect((await w.agent.request(w.continueUrl)).status).toBe(401);

    const presented = await presentPid(credential, holder.privateJwk, w.crossDevice);
    expect(presented.status).toBe(200);
    expect(presented.body).toEqual({});
    expect(await poll()).toEqual({ status: 'ready' });
    // Another browser can neither poll nor redeem this sign-in.
    const stranger = new Agent();
    expect((await stranger.request(statusUrl, { headers: { accept: 'application/json' } })).status).toBe(400);
    expect((await stranger.request(w.continueUrl)).status).toBe(400);

    const callback = await finish(w.agent, await w.agent.request(w.continueUrl));
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    const id = tokens.claims() as Record<string, unknown>;
    expect(id.acr).toBe(SUBSTANTIAL);
    expect([...(id.amr as string[])].sort()).toEqual(['mfa', 'pin', 'pop', 'swk']);
    expect(substantialIssuer.statusFetches()).toBeGreaterThan(0);
  });

  test('the level is never above the account\'s identity level: a high PID for an identity verified at substantial signs in at substantial', async () => {
    const { holder, credential } = await citizenWithPid(highIssuer, 'substantial');
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const w = await openWalletPage(new Agent(), url);
    const presented = await presentPid(credential, holder.privateJwk, w.sameDevice);
    const callback = await finish(w.agent, await w.agent.request(new URL(presented.body!.redirect_uri as string)));
    const id = (await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier })).claims() as Record<string, unknown>;
    expect(id.acr).toBe(SUBSTANTIAL);
  });

  test('a revoked PID is refused', async () => {
    const { holder, credential, idx } = await citizenWithPid();
    highIssuer.revoke(idx);
    await expectRefusal('revoked', (w) => presentPid(credential, holder.privateJwk, w.sameDevice));
  });

  test('an expired PID is refused', async () => {
    const jmbg = uniqueJmbg();
    await createTestAccount(server.kapija, { jmbg });
    const holder = await holderKeyPair();
    const { credential } = await highIssuer.issue({ pan: jmbg, holder: holder.publicJwk, exp: Math.floor(Date.now() / 1000) - 3600 });
    await expectRefusal('expired', (w) => presentPid(credential, holder.privateJwk, w.sameDevice));
  });

  test.each([
    ['signed by another key than the issuer\'s', 'forged'],
    ['unreachable', 'down'],
  ] as const)('a status list %s: the PID is refused (its status cannot be known)', async (_what, mode) => {
    const { holder, credential } = await citizenWithPid();
    highIssuer.serveStatus(mode);
    try {
      await expectRefusal('revoked', (w) => presentPid(credential, holder.privateJwk, w.sameDevice));
    } finally {
      highIssuer.serveStatus('ok');
    }
  });

  test('a tampered disclosure is refused', async () => {
    const { holder, credential } = await citizenWithPid();
    const other = uniqueJmbg();
    await expectRefusal('invalid', (w) =>
      presentPid(credential, holder.privateJwk, w.sameDevice, {
        tamper: (p) => {
          const parts = p.split('~');
          const [salt, name] = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as [string, string, string];
          parts[1] = Buffer.from(JSON.stringify([salt, name, other])).toString('base64url');
          return parts.join('~');
        },
      }),
    );
  });

  test('a wallet that discloses more than the query asked for is refused', async () => {
    const { holder, credential } = await citizenWithPid();
    await expectRefusal('disclosure', (w) => presentPid(credential, holder.privateJwk, w.sameDevice, { disclose: ['personal_administrative_number', 'given_name'] }));
  });

  test('a PID from an issuer Kapija does not trust is refused, and so is one claiming a trusted issuer but signed by another key', async () => {
    const jmbg = uniqueJmbg();
    await createTestAccount(server.kapija, { jmbg });
    const holder = await holderKeyPair();
    const stranger = await strangerIssuer.issue({ pan: jmbg, holder: holder.publicJwk });
    await expectRefusal('untrusted_issuer', (w) => presentPid(stranger.credential, holder.privateJwk, w.sameDevice));
    const forged = await strangerIssuer.issue({ pan: jmbg, holder: holder.publicJwk, iss: highIssuer.issuer });
    await expectRefusal('invalid', (w) => presentPid(forged.credential, holder.privateJwk, w.sameDevice));
  });

  test.each([
    ['another nonce', { nonce: 'not-the-request-nonce' }],
    ['another audience', { aud: 'x509_san_dns:verifier.example' }],
    ['a stale iat', { iat: Math.floor(Date.now() / 1000) - 3600 }],
  ])('a key-binding JWT with %s is refused', async (_what, kb) => {
    const { holder, credential } = await citizenWithPid();
    await expectRefusal('binding', (w) => presentPid(credential, holder.privateJwk, w.sameDevice, { kb }));
  });

  test('a key-binding JWT signed by another key than the credential\'s is refused', async () => {
    const { credential } = await citizenWithPid();
    const thief = await holderKeyPair();
    await expectRefusal('binding', (w) => presentPid(credential, thief.privateJwk, w.sameDevice));
  });

  test('a PID whose JMBG belongs to no verified identity: a clear page, nobody is signed in', async () => {
    const holder = await holderKeyPair();
    const { credential } = await highIssuer.issue({ pan: uniqueJmbg(), holder: holder.publicJwk });
    await expectRefusal('no_account', (w) => presentPid(credential, holder.privateJwk, w.sameDevice));
  });

  test('replays are refused: the request fetched twice, the answer posted twice or to another request, the response code redeemed twice', async () => {
    const { holder, credential } = await citizenWithPid();
    const w = await openWalletPage();
    const presented = await presentPid(credential, holder.privateJwk, w.sameDevice);
    // The request object is served once.
    const requestUri = new URL(w.sameDevice).searchParams.get('request_uri')!;
    const again = await fetch(requestUri);
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ error: 'invalid_request_uri' });
    // The same answer again: the request was answered.
    const replay = await postResponse(presented.responseUri, presented.responseJwe);
    expect(replay.status).toBe(404);
    expect(replay.body).toMatchObject({ error: 'invalid_request' });
    // The answer to another request (of another sign-in): not encrypted to that request's key.
    const other = await openWalletPage();
    const otherRequest = new URL(other.sameDevice).searchParams.get('request_uri')!;
    expect((await fetch(otherRequest)).status).toBe(200);
    const moved = await postResponse(otherRequest.replace('/wallet/request/', '/wallet/response/'), presented.responseJwe);
    expect(moved.status).toBe(400);
    // The response code: once.
    const redirect = new URL(presented.body!.redirect_uri as string);
    const first = await w.agent.request(redirect);
    expect(first.status).toBe(303);
    const second = await w.agent.request(redirect);
    expect([400, 401]).toContain(second.status);
  });

  test('the response code from another browser is refused, and leaves it usable by the browser that started the sign-in', async () => {
    const { holder, credential } = await citizenWithPid();
    const w = await openWalletPage();
    const presented = await presentPid(credential, holder.privateJwk, w.sameDevice);
    const redirect = new URL(presented.body!.redirect_uri as string);
    const attacker = new Agent();
    const stolen = await attacker.request(redirect);
    expect(stolen.status).toBe(400);
    expect(stolen.body).toContain(t('error.interaction.expired'));
    // An attacker's own sign-in cannot redeem it either: the code is bound to the interaction it was made for.
    const theirs = await openWalletPage(attacker);
    const swapped = new URL(`/interaction/${theirs.uid}/wallet/identify?response_code=${redirect.searchParams.get('response_code')!}`, server.url);
    expect((await attacker.request(swapped)).status).toBe(401);
    await finish(w.agent, await w.agent.request(redirect));
  });

  test('an answer after the request expired is refused; an answer redeemed after expiry is refused', async () => {
    const { holder, credential } = await citizenWithPid();
    const w = await openWalletPage();
    const expire = () => server.kapija.db('wallet_presentations').where({ interaction_uid: w.uid }).update({ expires_at: Date.now() - 1 });
    // Fetched in time, answered too late.
    const built = await presentPid(credential, holder.privateJwk, w.sameDevice, { skipPost: true });
    await expire();
    expect((await postResponse(built.responseUri, built.responseJwe)).status).toBe(404);

    // Answered in time, redeemed too late.
    const w2 = await openWalletPage();
    const presented = await presentPid(credential, holder.privateJwk, w2.sameDevice);
    await server.kapija.db('wallet_presentations').where({ interaction_uid: w2.uid }).update({ expires_at: Date.now() - 1 });
    expect((await w2.agent.request(new URL(presented.body!.redirect_uri as string))).status).toBe(401);
  });

  test('bad input to the wallet endpoints is a JSON error, never a 500', async () => {
    const junk = await postResponse(`${server.url}/wallet/response/${'a'.repeat(32)}`, 'not-a-jwe');
    expect(junk.status).toBe(404);
    const malformed = await fetch(`${server.url}/wallet/response/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(malformed.status).toBe(400);
    const w = await openWalletPage();
    const requestUri = new URL(w.sameDevice).searchParams.get('request_uri')!;
    expect((await fetch(requestUri)).status).toBe(200);
    const empty = await fetch(requestUri.replace('/wallet/request/', '/wallet/response/'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'response=' });
    expect(empty.status).toBe(400);
    expect((await fetch(`${server.url}/wallet/request/nope`)).status).toBe(404);
  });

  test('a PID presented without the claim the query asks for does not answer the query (dcql), and is refused', async () => {
    const { holder, credential } = await citizenWithPid();
    await expectRefusal('invalid', (w) => presentPid(credential, holder.privateJwk, w.sameDevice, { disclose: [] }));
  });

  test('hand-made answers: not encrypted, encrypted with another algorithm, or without this request\'s state are not read, and leave the request answerable', async () => {
    const { holder, credential } = await citizenWithPid();
    const w = await openWalletPage();
    const built = await presentPid(credential, holder.privateJwk, w.sameDevice, { skipPost: true });
    const state = built.request.state as string;
    const body = { vp_token: { pid: [built.presentation] }, state };
    // Signed by the holder but not encrypted: Kapija asked for an encrypted answer and accepts no signed one.
    const signed = await new SignJWT(body).setProtectedHeader({ alg: 'ES256' }).sign(await importJWK(holder.privateJwk, 'ES256'));
    // Encrypted to the request's key, but with key wrapping Kapija did not offer.
    const wrapped = await encryptTo(built.request, body, 'ECDH-ES+A128KW');
    const stateless = await encryptTo(built.request, { vp_token: body.vp_token });
    const otherState = await encryptTo(built.request, { ...body, state: `${state}x` });
    for (const answer of [signed, wrapped, stateless, otherState]) {
      const res = await postResponse(built.responseUri, answer);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_request' });
    }
    // The wallet's own answer is still taken.
    const real = await postResponse(built.responseUri, built.responseJwe);
    expect(real.status).toBe(200);
    await finish(w.agent, await w.agent.request(new URL(real.body.redirect_uri as string)));
  });

  test('a wallet\'s error response (the citizen declined) is a refusal; with another state it is not read', async () => {
    const { holder, credential } = await citizenWithPid();
    const w = await openWalletPage();
    const built = await presentPid(credential, holder.privateJwk, w.sameDevice, { skipPost: true });
    const state = built.request.state as string;
    const forged = await postResponse(built.responseUri, await encryptTo(built.request, { error: 'access_denied', state: 'another' }));
    expect(forged.status).toBe(400);
    const declined = await postResponse(built.responseUri, await encryptTo(built.request, { error: 'access_denied', state }));
    expect(declined.status).toBe(200);
    const page = await followRedirect(w.agent, declined.body.redirect_uri);
    expect(page.url.pathname).toBe(`/interaction/${w.uid}/wallet/refused`);
    expect(unescape(page.body)).toContain(t('wallet.refused.invalid' as never));
    // Answered once: the presentation that follows is too late.
    expect((await postResponse(built.responseUri, built.responseJwe)).status).toBe(404);
  });

  test.each([
    ['a second credential query id the query does not have', (p: string) => ({ pid: [p], other: [p] })],
    ['two presentations for a query that allows one', (p: string) => ({ pid: [p, p] })],
    ['no presentation for the PID query', (p: string) => ({ other: [p] })],
  ])('a vp_token with %s is refused', async (_what, vpToken) => {
    const { holder, credential } = await citizenWithPid();
    await expectRefusal('invalid', async (w) => {
      const built = await presentPid(credential, holder.privateJwk, w.sameDevice, { skipPost: true });
      return postResponse(built.responseUri, await encryptTo(built.request, { vp_token: vpToken(built.presentation), state: built.request.state }));
    });
  });

  test('an address posting unreadable answers is held back after 100 in an hour (the wallet endpoint cannot be used to guess)', async () => {
    // The suite's earlier tests posted a few unreadable answers from this address too.
    let answered = 0;
    let held: Response | undefined;
    for (let i = 0; i <= 100 && !held; i += 1) {
      const res = await fetch(`${server.url}/wallet/response/${'b'.repeat(31)}${i % 10}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'response=garbage' });
      if (res.status === 429) held = res;
      else {
        expect(res.status).toBe(404);
        answered += 1;
      }
    }
    expect(answered).toBeGreaterThan(80);
    expect(held?.status).toBe(429);
    if (!held) return;
    expect(Number(held.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await held.json()).toMatchObject({ error: 'temporarily_unavailable' });
  });
});
