/**
 * The wallet round trip: a test wallet built from the OpenWallet Foundation libraries (OpenID4VCI
 * and OpenID4VP clients, @sd-jwt; none of Kapija's code) obtains Kapija's PID through the portal's
 * credential offer, then signs the citizen in to a relying party (openid-client) through Kapija by
 * presenting that PID. Only what the query asked for is disclosed; a tampered disclosure and a
 * revoked PID are refused, the revocation at once even when it was made at another instance that
 * shares the database.
 */
import { jest } from '@jest/globals';
import * as oidc from 'openid-client';
import { Agent, formAction, type Page } from '../support/browserless.js';
import { submitForm } from '../support/sign-in.js';
import { createTestClient, kapijaForSuite, type RunningKapija } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';
import { twoInstancesOnPg } from '../support/two-processes.js';
import { obtainPid, type HolderKey } from '../support/wallet/obtain.js';
import { presentPid } from '../support/wallet/present.js';
import { portalOffer, registerWallet, verifiedCitizen, walletSignIn, WALLET_REDIRECT } from '../support/wallet/fixtures.js';
import { translator, type Locale } from '../../src/i18n/index.js';
import { ACR } from '../../src/assurance/levels.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
const unescape = (html: string) => html.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const t = translator('en' as Locale);

/** A citizen verified at high who obtained Kapija's PID into the test wallet through the portal's offer. */
async function citizenWithKapijaPid(s: RunningKapija) {
  const walletClient = await registerWallet(s.kapija);
  const citizen = await verifiedCitizen(s.kapija, 'high');
  const agent = new Agent();
  const offer = await portalOffer(agent, s.url, citizen);
  const { credential, holderKey } = await obtainPid({ offer, clientId: walletClient, authorize: { redirectUri: WALLET_REDIRECT, signIn: walletSignIn(agent, citizen) } });
  return { citizen, credential, holderKey };
}

/** A new browser at the service's sign-in: "use a wallet", and the wallet page's same-device request. */
async function walletPage(s: RunningKapija, url: URL): Promise<{ agent: Agent; uid: string; sameDevice: string }> {
  const agent = new Agent();
  const login = await agent.follow(await agent.request(url), isCallback);
  if (login instanceof URL) throw new Error('reached the service without signing in');
  const started = await submitForm(agent, login, /\/wallet\/start$/, {});
  expect(started.status).toBe(303);
  const page = await agent.request(new URL(started.headers.get('location')!, s.url));
  expect(page.status).toBe(200);
  const uid = /\/interaction\/([^/?]+)\/wallet/.exec(page.url.pathname)![1]!;
  return { agent, uid, sameDevice: unescape(/href="(openid4vp:[^"]+)"/.exec(page.body)![1]!) };
}

/** From the wallet's redirect to the service's callback, through the consent page when asked. */
async function toService(agent: Agent, redirectUri: string): Promise<URL> {
  let step = await agent.follow(await agent.request(new URL(redirectUri)), isCallback);
  for (let i = 0; i < 3 && !(step instanceof URL); i += 1) {
    const page: Page = step;
    if (!formAction(page.body, /\/confirm$/)) throw new Error(`unexpected page ${page.url.pathname} (${page.status})`);
    step = await agent.follow(await submitForm(agent, page, /\/confirm$/, {}), isCallback);
  }
  if (!(step instanceof URL)) throw new Error('the sign-in did not reach the service');
  return step;
}

/** Presents `credential` at the service's sign-in and expects the refusal page for `reason`. */
async function expectRefused(s: RunningKapija, url: URL, credential: string, holderKey: HolderKey, reason: string, tamper?: (p: string) => string, fetcher?: typeof fetch) {
  const w = await walletPage(s, url);
  const presented = await presentPid(credential, holderKey, w.sameDevice, { ...(tamper ? { tamper } : {}), ...(fetcher ? { fetch: fetcher } : {}) });
  const page = await w.agent.follow(await w.agent.request(new URL(presented.body!.redirect_uri as string)), isCallback);
  if (page instanceof URL) throw new Error(`a ${reason} PID reached the service`);
  expect(page.url.pathname).toBe(`/interaction/${w.uid}/wallet/refused`);
  expect(page.status).toBe(403);
  expect(unescape(page.body)).toContain(t(`wallet.refused.${reason}` as never));
}

const authorizeAt = (s: RunningKapija, clientId: string) => {
  const u = new URL('/auth', s.url);
  u.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }).toString();
  return u;
};

describe("Kapija's PID, from the credential offer to a sign-in with it", () => {
  const server = kapijaForSuite();

  test('obtained through the offer, presented at a service: only the JMBG is disclosed, the service sees the citizen at substantial', async () => {
    const { citizen, credential, holderKey } = await citizenWithKapijaPid(server);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid' });
    const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });

    const w = await walletPage(server, url);
    const entries = jest.spyOn(server.kapija.pid, 'statusOf');
    const lists = jest.spyOn(server.kapija.pid, 'statusList');
    const presented = await presentPid(credential, holderKey, w.sameDevice);
    expect(presented.status).toBe(200);
    // Its status is the one entry read from the registry, not a whole status list built.
    expect(entries).toHaveBeenCalledTimes(1);
    expect(lists).not.toHaveBeenCalled();
    entries.mockRestore();
    lists.mockRestore();
    // The PID holds five disclosures; the presentation carries the one the query asked for.
    expect(credential.split('~').slice(1, -1)).toHaveLength(5);
    const disclosed = presented.presentation.split('~').slice(1, -1).map((d) => JSON.parse(Buffer.from(d, 'base64url').toString()) as unknown[]);
    expect(disclosed.map((d) => d[1])).toEqual(['personal_administrative_number']);
    expect(disclosed[0]![2]).toBe(citizen.jmbg);

    const callback = await toService(w.agent, presented.body!.redirect_uri as string);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    const id = tokens.claims() as Record<string, unknown>;
    expect(id.sub).toBe(await server.kapija.subjectFor(citizen.account.id, rp.clientId));
    // Kapija's own PIDs count as substantial (no key attestation shows a secure element), though the identity is high.
    expect(id.acr).toBe(ACR.substantial);
    expect([...(id.amr as string[])].sort()).toEqual(['mfa', 'pin', 'pop', 'swk']);
  });

  test('a tampered disclosure is refused, and a PID the citizen revoked is refused at once', async () => {
    const { citizen, credential, holderKey } = await citizenWithKapijaPid(server);
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid' });
    const otherJmbg = (await verifiedCitizen(server.kapija, 'high')).jmbg;
    await expectRefused(server, authorizeAt(server, rp.clientId), credential, holderKey, 'invalid', (p) => {
      const parts = p.split('~');
      const [salt, name] = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as [string, string, string];
      parts[1] = Buffer.from(JSON.stringify([salt, name, otherJmbg])).toString('base64url');
      return parts.join('~');
    });

    const [issued] = await server.kapija.pid.list(citizen.account.id);
    await server.kapija.pid.revokeOwn(citizen.account.id, issued!.id);
    await expectRefused(server, authorizeAt(server, rp.clientId), credential, holderKey, 'revoked');
  });
});

if (!pgAvailable()) {
  process.stdout.write('[skip] wallet-round-trip across instances: PostgreSQL not reachable\n');
  test.skip('a PID revoked at one instance is refused at another (PostgreSQL not reachable)', () => undefined);
} else {
  describe('two instances on one PostgreSQL', () => {
    const two = twoInstancesOnPg();
    let a: RunningKapija;
    let viaB: typeof fetch;
    beforeAll(() => ({ a, viaB } = two));

    test('a PID revoked at one instance is refused at the other at once, though that one had just accepted it', async () => {
      const { citizen, credential, holderKey } = await citizenWithKapijaPid(a);
      const rp = await createTestClient(a.kapija, { redirect_uris: [REDIRECT], scope: 'openid' });
      // The browser is at A; the wallet reaches B for everything under the issuer (A's address), so
      // B verifies the presentation and reads the status list.
      const w = await walletPage(a, authorizeAt(a, rp.clientId));
      const presented = await presentPid(credential, holderKey, w.sameDevice, { fetch: viaB });
      expect(presented.status).toBe(200);
      expect(await toService(w.agent, presented.body!.redirect_uri as string)).toBeInstanceOf(URL);
      // Revoked at A; B refuses the next presentation.
      const [issued] = await a.kapija.pid.list(citizen.account.id);
      await a.kapija.pid.revokeOwn(citizen.account.id, issued!.id);
      await expectRefused(a, authorizeAt(a, rp.clientId), credential, holderKey, 'revoked', undefined, viaB);
    });
  });
}
