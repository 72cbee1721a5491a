/**
 * Attack cases against what a service may receive: claims asked through the `claims` parameter
 * outside the service's registered scopes, `essential` used to make a claim non-refusable, and
 * refusals forgotten between browser sessions. Every case signs in for real and reads what was
 * actually released: the ID token, userinfo and the citizen's ledger.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Agent, checkedValues, type Page } from '../support/browserless.js';
import { openPortal, signIn, submitForm } from '../support/sign-in.js';
import { nextTotpCode } from '../support/totp.js';
import { stores } from '../support/databases.js';
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg, type RunningKapija } from '../support/kapija.js';
import { ledgerChain } from '../../src/account/ledger.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
type Citizen = Awaited<ReturnType<typeof createTestAccount>>;
type Rp = { clientId: string; clientSecret?: string | undefined };

const JMBG_ESSENTIAL = JSON.stringify({ id_token: { jmbg: { essential: true } }, userinfo: { jmbg: { essential: true } } });

function helpers(server: RunningKapija) {
  const authorize = (rp: Rp, params: Record<string, string>) => {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL('/auth', server.url);
    url.search = new URLSearchParams({
      client_id: rp.clientId,
      response_type: 'code',
      redirect_uri: REDIRECT,
      state: randomBytes(4).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...params,
    }).toString();
    return { url, verifier };
  };

  /** Redeems the code and reads userinfo: what the service actually received. */
  const received = async (rp: Rp, callback: URL, verifier: string) => {
    const error = callback.searchParams.get('error');
    if (error) throw new Error(`authorization failed: ${error}`);
    const res = await fetch(new URL('/token', server.url), {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    expect(res.status).toBe(200);
    const tokens = (await res.json()) as { id_token: string; access_token: string };
    const idToken = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    const info = await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(info.status).toBe(200);
    return { idToken, userinfo: (await info.json()) as Record<string, unknown>, accessToken: tokens.access_token };
  };

  const userinfo = async (accessToken: string) => {
    const info = await fetch(new URL('/me', server.url), { headers: { authorization: `Bearer ${accessToken}` } });
    expect(info.status).toBe(200);
    return (await info.json()) as Record<string, unknown>;
  };

  /** Signs in up to the consent page (login and TOTP), as a browser would; returns that page. */
  const toConsentPage = async (agent: Agent, url: URL, citizen: Citizen): Promise<Page> => {
    let page = (await agent.follow(await agent.request(url), () => false)) as Page;
    page = (await agent.follow(await submitForm(agent, page, /\/login$/, { username: citizen.username, password: citizen.password }), () => false)) as Page;
    page = (await agent.follow(await submitForm(agent, page, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) }), () => false)) as Page;
    expect(page.body).toContain('/confirm"');
    return page;
  };

  const confirm = async (agent: Agent, page: Page, claims: string[]): Promise<URL> => {
    const next = await agent.follow(await submitForm(agent, page, /\/confirm$/, { claims }), (u) => u.href.startsWith(REDIRECT));
    if (!(next instanceof URL)) throw new Error(`consent did not return to the service (${next.url.pathname}, ${next.status})`);
    return next;
  };

  /** The citizen's ledger entries of one kind. */
  const ledger = async (citizen: Citizen, action: string) =>
    (await server.kapija.audit.list({ chain: ledgerChain(citizen.account.id), limit: 100 })).filter((e) => e.action === action);

  /** Opens an /account page in `agent`, signing in to the portal first when needed. */
  const portal = (agent: Agent, citizen: Citizen, path: string): Promise<Page> => openPortal(agent, server.url, citizen, path);

  return { authorize, received, userinfo, toConsentPage, confirm, ledger, portal };
}

describe('the claims parameter and the registered scopes', () => {
  const server = kapijaForSuite();

  test('OIDC Core 5.5 / GDPR Art. 5(1)(c): a claims parameter never releases jmbg to a service not registered for the jmbg scope (consent page, ID token, userinfo, ledger)', async () => {
    const h = helpers(server);
    const citizen = await createTestAccount(server.kapija, { jmbg: '0101990710008' });
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile email offline_access' });
    const agent = new Agent('en');
    const { url, verifier } = h.authorize(rp, { scope: 'openid profile', claims: JMBG_ESSENTIAL });
    const page = await h.toConsentPage(agent, url, citizen);
    // the consent page neither asks for it nor lists it as required
    expect(page.body).not.toContain('value="jmbg"');
    expect(page.body).not.toContain('JMBG');
    const { idToken, userinfo } = await h.received(rp, await h.confirm(agent, page, checkedValues(page.body, 'claims')), verifier);
    expect(userinfo.given_name).toBe('Petar');
    expect(idToken.jmbg).toBeUndefined();
    expect(userinfo.jmbg).toBeUndefined();
    expect(JSON.stringify(idToken)).not.toContain('0101990710008');
    // the ledger names only what was released, and no consent to jmbg
    const released = await h.ledger(citizen, 'ledger.data_released');
    expect(released.length).toBeGreaterThanOrEqual(2);
    for (const e of released) expect(e.details.claims).not.toContain('jmbg');
    for (const e of await h.ledger(citizen, 'ledger.consent_given')) expect(e.details.claims).not.toContain('jmbg');
  });

  test('OIDC Core 5.5.1 / GDPR Art. 7(4): essential never makes the national identifier non-refusable; unticked, it is not released', async () => {
    const h = helpers(server);
    const citizen = await createTestAccount(server.kapija, { jmbg: '1705990712341' });
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile jmbg offline_access' });
    const agent = new Agent('en');
    const { url, verifier } = h.authorize(rp, { scope: 'openid profile jmbg', claims: JMBG_ESSENTIAL });
    const page = await h.toConsentPage(agent, url, citizen);
    // a box the citizen can leave unticked, and it starts unticked
    expect(page.body).toMatch(/<input type="checkbox"[^>]*value="jmbg"/);
    expect(checkedValues(page.body, 'claims')).not.toContain('jmbg');
    const ticked = checkedValues(page.body, 'claims');
    const { idToken, userinfo } = await h.received(rp, await h.confirm(agent, page, ticked), verifier);
    expect(idToken.jmbg).toBeUndefined();
    expect(userinfo.jmbg).toBeUndefined();
    expect(userinfo.given_name).toBe('Petar');
  });
});

describe.each(stores())('refusals remembered (%s)', (store) => {
  const server = kapijaForSuite({ store });

  /** A service registered for jmbg and a citizen who refused it on the consent page (first browser). */
  const refusedOnce = async () => {
    const h = helpers(server);
    // Each citizen has a JMBG of their own: verified identities never share one.
    const jmbg = uniqueJmbg();
    const citizen = await createTestAccount(server.kapija, { jmbg });
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile email jmbg offline_access' });
    const first = h.authorize(rp, { scope: 'openid profile jmbg' });
    const agent = new Agent('en');
    const page = await h.toConsentPage(agent, first.url, citizen);
    const ticked = checkedValues(page.body, 'claims').filter((c) => c !== 'jmbg');
    const got = await h.received(rp, await h.confirm(agent, page, ticked), first.verifier);
    expect(got.userinfo.jmbg).toBeUndefined();
    return { h, citizen, rp, jmbg };
  };

  test('OIDC Core 3.1.2.4 / GDPR Art. 7(3): a refused claim stays refused in a later browser session, without a consent page, even when the service asks for it as essential', async () => {
    const { h, citizen, rp } = await refusedOnce();
    const laterBrowser = new Agent('en');
    for (const params of [{ scope: 'openid profile jmbg' }, { scope: 'openid profile jmbg', claims: JMBG_ESSENTIAL }] as Array<Record<string, string>>) {
      const later = h.authorize(rp, params);
      // consent: false aborts if a consent page is shown: the refusal holds without asking again
      const cb = await signIn(laterBrowser, later.url, REDIRECT, { ...citizen, consent: false });
      const { idToken, userinfo } = await h.received(rp, cb, later.verifier);
      expect(idToken.jmbg).toBeUndefined();
      expect(userinfo.jmbg).toBeUndefined();
      expect(userinfo.given_name).toBe('Petar');
    }
    for (const e of await h.ledger(citizen, 'ledger.data_released')) expect(e.details.claims).not.toContain('jmbg');
  });

  test('GDPR Art. 7(3) / ASVS 5.0 V3.5.1 (CSRF): the citizen sees a refused claim in /account/services and changes it; a refusal made there holds at once', async () => {
    const { h, citizen, rp, jmbg } = await refusedOnce();
    const browser = new Agent('en');
    let services = await h.portal(browser, citizen, '/account/services');
    expect(services.body).toMatch(/<input type="checkbox"[^>]*value="jmbg"/);
    expect(checkedValues(services.body, 'claims')).not.toContain('jmbg');
    expect(checkedValues(services.body, 'claims')).toContain('given_name');
    // without the CSRF token the change is refused
    const forged = await browser.request(new URL('/account/services/claims', server.url), { form: { client_id: rp.clientId, claims: [...checkedValues(services.body, 'claims'), 'jmbg'] } });
    expect(forged.status).toBe(403);
    expect(checkedValues((await h.portal(browser, citizen, '/account/services')).body, 'claims')).not.toContain('jmbg');

    const allowed = await submitForm(browser, services, /\/account\/services\/claims$/, { client_id: rp.clientId, claims: [...checkedValues(services.body, 'claims'), 'jmbg'] });
    expect(allowed.status).toBe(303);
    services = await h.portal(browser, citizen, '/account/services');
    expect(checkedValues(services.body, 'claims')).toContain('jmbg');
    const later = h.authorize(rp, { scope: 'openid profile jmbg' });
    // signed in to the portal in this browser: a session that never signed in to the service
    const got = await h.received(rp, await signIn(browser, later.url, REDIRECT, { ...citizen, consent: false }), later.verifier);
    expect(got.userinfo.jmbg).toBe(jmbg);

    // refused again in the portal: not released any more, not even with the token already issued
    const refused = await submitForm(browser, services, /\/account\/services\/claims$/, { client_id: rp.clientId, claims: checkedValues(services.body, 'claims').filter((c) => c !== 'jmbg') });
    expect(refused.status).toBe(303);
    expect((await h.userinfo(got.accessToken)).jmbg).toBeUndefined();
    // the citizen's data export names the refusal
    const exported = await browser.request(new URL('/account/data/export.json', server.url), { headers: { accept: 'application/json' } });
    expect(exported.status).toBe(200);
    expect((JSON.parse(exported.body) as { refused_claims: unknown[] }).refused_claims).toEqual([{ service: rp.clientId, claims: ['jmbg'] }]);
    const again = h.authorize(rp, { scope: 'openid profile jmbg', claims: JMBG_ESSENTIAL });
    const last = await h.received(rp, await signIn(browser, again.url, REDIRECT, { ...citizen, consent: false }), again.verifier);
    expect(last.idToken.jmbg).toBeUndefined();
    expect(last.userinfo.jmbg).toBeUndefined();
  });
});
