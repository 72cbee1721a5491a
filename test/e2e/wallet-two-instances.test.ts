/**
 * Wallet sign-in across two Kapija instances behind one issuer on one PostgreSQL database, as behind
 * a load balancer: the browser starts at A, the wallet fetches the request and posts its answer at
 * B, the browser redeems at A. Two answers posted at once to A and B: one wins.
 */
import { Agent, type Page } from '../support/browserless.js';
import { submitForm } from '../support/sign-in.js';
import { createTestAccount, createTestClient, uniqueJmbg, type RunningKapija } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';
import { twoInstancesOnPg } from '../support/two-processes.js';
import { holderKeyPair, startTestPidIssuer, type TestPidIssuer } from '../support/wallet/test-issuer.js';
import { postResponse, presentPid } from '../support/wallet/present.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const isCallback = (u: URL) => u.href.startsWith(REDIRECT);
const unescape = (html: string) => html.replace(/&amp;/g, '&');

if (!pgAvailable()) {
  process.stdout.write('[skip] wallet-two-instances: PostgreSQL not reachable\n');
  test.skip('wallet sign-in across two instances (PostgreSQL not reachable)', () => undefined);
} else {
  describe('wallet sign-in across two instances on one PostgreSQL', () => {
    let pid: TestPidIssuer;
    beforeAll(async () => {
      pid = await startTestPidIssuer();
    });
    afterAll(async () => {
      await pid?.stop();
    });
    const two = twoInstancesOnPg(() => ({ WALLET_TRUSTED_ISSUERS: JSON.stringify([{ issuer: pid.issuer, level: 'high', jwks: pid.jwks }]) }));
    let a: RunningKapija;
    let b: RunningKapija;
    /** The wallet reaches B for everything published under the issuer (A's address). */
    let viaB: typeof fetch;
    beforeAll(() => ({ a, b, viaB } = two));

    async function start(agent: Agent, clientId: string): Promise<{ sameDevice: string; crossDevice: string; continuePath: string }> {
      const auth = new URL('/auth', a.url);
      auth.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }).toString();
      const login = (await agent.follow(await agent.request(auth), isCallback)) as Page;
      const started = await submitForm(agent, login, /\/wallet\/start$/, {});
      const page = await agent.request(new URL(started.headers.get('location')!, a.url));
      const sameDevice = unescape(/href="(openid4vp:[^"]+)"/.exec(page.body)![1]!);
      const crossId = /wallet\/identify\?request=([A-Za-z0-9_-]+)/.exec(page.body)![1]!;
      const clientIdParam = new URL(sameDevice).searchParams.get('client_id')!;
      const continuePath = unescape(/href="(\/interaction\/[^"]+\/wallet\/identify\?request=[^"]+)"/.exec(page.body)![1]!);
      return { continuePath, sameDevice, crossDevice: `openid4vp://?client_id=${encodeURIComponent(clientIdParam)}&request_uri=${encodeURIComponent(`${a.url}/wallet/request/${crossId}`)}` };
    }

    test('started at A, fetched and answered at B, redeemed at A; the same answer posted to A and B at once is taken once', async () => {
      const jmbg = uniqueJmbg();
      await createTestAccount(a.kapija, { jmbg });
      const rp = await createTestClient(a.kapija, { redirect_uris: [REDIRECT] });
      const holder = await holderKeyPair();
      const { credential } = await pid.issue({ pan: jmbg, holder: holder.publicJwk });

      const agent = new Agent();
      const { sameDevice } = await start(agent, rp.clientId);
      const presented = await presentPid(credential, holder.privateJwk, sameDevice, { fetch: viaB });
      expect(presented.status).toBe(200);
      const redirect = new URL(presented.body!.redirect_uri as string);
      expect(redirect.origin).toBe(a.url);
      const next = await agent.follow(await agent.request(redirect), isCallback);
      // Signed in: the consent page (or the service) follows, not a refusal.
      if (!(next instanceof URL)) expect(next.url.pathname).toMatch(/^\/interaction\/[^/]+$/);

      // A race: one answer, posted to both instances at once.
      const racer = new Agent();
      const { crossDevice, continuePath } = await start(racer, rp.clientId);
      const built = await presentPid(credential, holder.privateJwk, crossDevice, { fetch: viaB, skipPost: true });
      const results = await Promise.all([postResponse(built.responseUri, built.responseJwe), postResponse(built.responseUri.replace(a.url, b.url), built.responseJwe)]);
      // The loser is refused whether it came after the winner (404: nothing awaits an answer) or beside it (400: answered already).
      const [won, lost] = [...results].sort((x, y) => x.status - y.status);
      expect(won!.status).toBe(200);
      expect([400, 404]).toContain(lost!.status);
      expect(lost!.body).toMatchObject({ error: 'invalid_request' });
      // The browser redeems the one answer, at B, once.
      expect((await racer.request(new URL(continuePath, b.url))).status).toBe(303);
      expect([400, 401]).toContain((await racer.request(new URL(continuePath, a.url))).status);
    });
  });
}
