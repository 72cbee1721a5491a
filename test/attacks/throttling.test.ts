/**
 * Attack cases against the sign-in throttles: a stranger must not be able to lock a citizen (or every
 * citizen) out, guessing stays bounded, and the counters keep nothing personal for longer than they
 * count. The citizen's address comes from X-Forwarded-For (TRUST_PROXY), as behind the load balancer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { signIn, submitForm } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';
import { stores } from '../support/databases.js';
import { DEVICE_COOKIE } from '../../src/interactions/router.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

/** A browser at its own address. */
class BrowserAt extends Agent {
  constructor(readonly ip: string) {
    super();
  }

  override request(url: string | URL, init: Parameters<Agent['request']>[1] = {}): Promise<Page> {
    return super.request(url, { ...init, headers: { 'x-forwarded-for': this.ip, ...init.headers } });
  }
}

let addresses = 0;
/** A fresh documentation address (RFC 5737) for each browser. */
const nextAddress = () => {
  addresses += 1;
  return `198.51.${100 + Math.floor(addresses / 250)}.${(addresses % 250) + 1}`;
};

describe.each(stores())('sign-in throttles on %s', (store) => {
  const server = kapijaForSuite({ store, env: { TRUST_PROXY: 'true' } });
  let rp: { clientId: string; clientSecret?: string | undefined };
  beforeAll(async () => {
    rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  });

  function authorize(): URL {
    const u = new URL('/auth', server.url);
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    u.search = new URLSearchParams({
      client_id: rp.clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      // A browser with a session is asked for its password again too.
      prompt: 'login',
    }).toString();
    return u;
  }

  async function loginPage(browser: Agent): Promise<Page> {
    const page = await browser.follow(await browser.request(authorize()), (u) => u.href.startsWith(REDIRECT));
    if (page instanceof URL || !/\/login"/.test(page.body)) throw new Error('no login page');
    return page;
  }

  /** Password attempts in one browser (one interaction); returns the statuses. */
  async function passwords(browser: Agent, username: string, password: string, times = 1): Promise<number[]> {
    let page = await loginPage(browser);
    const statuses: number[] = [];
    for (let i = 0; i < times; i += 1) {
      const res = await submitForm(browser, page, /\/login$/, { username, password });
      statuses.push(res.status);
      if (res.status === 401 || res.status === 429) page = res;
    }
    return statuses;
  }

  /** A passwordless passkey attempt offering `credentialId`, as static/webauthn.js sends it. */
  async function passkey(browser: BrowserAt, credentialId: string): Promise<number> {
    const page = await loginPage(browser);
    const csrf = /data-csrf="([^"]+)"/.exec(page.body)?.[1] ?? hiddenField(page.body, '_csrf') ?? '';
    const post = async (path: string, body: unknown) => {
      const url = new URL(path, page.url);
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf, 'x-forwarded-for': browser.ip, cookie: browser.jar.header(url) },
        body: JSON.stringify(body),
      });
      await res.text();
      return res.status;
    };
    expect(await post(`${page.url.pathname}/webauthn/options`, { purpose: 'passkey' })).toBe(200);
    const bogus = randomBytes(16).toString('base64url');
    return post(`${page.url.pathname}/passkey`, {
      response: {
        id: credentialId,
        rawId: credentialId,
        type: 'public-key',
        clientExtensionResults: {},
        response: { clientDataJSON: bogus, authenticatorData: bogus, signature: bogus, userHandle: bogus },
      },
    });
  }

  test('ASVS 5.0 V6.1.1 / V6.3.1: bogus passkey attempts are throttled per credential id and address, never for every citizen at once', async () => {
    const attacker = new BrowserAt(nextAddress());
    const offered = randomBytes(16).toString('base64url');
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) statuses.push(await passkey(attacker, offered));
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429]);
    // Another citizen elsewhere, with their own passkey, is not held back by the stranger.
    expect(await passkey(new BrowserAt(nextAddress()), randomBytes(16).toString('base64url'))).toBe(401);
    // Nor is the holder of the credential the stranger tried, at their own address.
    expect(await passkey(new BrowserAt(nextAddress()), offered)).toBe(401);
  });

  test('NIST 800-63B 5.2.2 / ASVS 5.0 V6.1.1: wrong passwords from a stranger\'s address do not lock the owner out, and still hold the stranger back', async () => {
    const citizen = await createTestAccount(server.kapija);
    const stranger = new BrowserAt(nextAddress());
    expect(await passwords(stranger, citizen.username, 'wrong-password', 7)).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // The owner, at home, signs in with the right password at once.
    const owner = new BrowserAt(nextAddress());
    expect(await passwords(owner, citizen.username, citizen.password)).toEqual([303]);
    // The stranger's address stays held back even with the right password.
    expect(await passwords(stranger, citizen.username, citizen.password)).toEqual([429]);
    // An unknown name is throttled exactly like a known one.
    expect(await passwords(new BrowserAt(nextAddress()), `nobody-${citizen.username}`, 'wrong-password', 6)).toEqual([401, 401, 401, 401, 401, 429]);
  });

  /** Strangers at 20 addresses, five guesses each (under the per-address delay), then one more. */
  async function guessFromEverywhere(username: string) {
    for (let i = 0; i < 20; i += 1) {
      expect(await passwords(new BrowserAt(nextAddress()), username, `guess-${i}`, 5)).toEqual([401, 401, 401, 401, 401]);
    }
    expect(await passwords(new BrowserAt(nextAddress()), username, 'guess-last')).toEqual([429]);
  }

  test('NIST 800-63B 5.2.2: at 100 failures in an hour from all addresses the name is held back, except in a browser that has signed in to it before', async () => {
    const citizen = await createTestAccount(server.kapija);
    const other = await createTestAccount(server.kapija);
    // The owner's browser has completed a sign-in before (it carries the device cookie).
    const home = new BrowserAt(nextAddress());
    await signIn(home, authorize(), REDIRECT, citizen);
    expect(home.jar.get(DEVICE_COOKIE)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await guessFromEverywhere(citizen.username);
    await guessFromEverywhere(other.username);
    // A new browser is held back now, even with the right password...
    expect(await passwords(new BrowserAt(nextAddress()), citizen.username, citizen.password)).toEqual([429]);
    // ...and so is one that makes up a device cookie.
    const forger = new BrowserAt(nextAddress());
    forger.jar.store([`${DEVICE_COOKIE}=${randomBytes(32).toString('base64url')}; Path=/`]);
    expect(await passwords(forger, citizen.username, citizen.password)).toEqual([429]);
    // The owner's own browser passes the ceiling, for the account it signed in to and no other.
    expect(await passwords(home, other.username, other.password)).toEqual([429]);
    expect(await passwords(home, citizen.username, citizen.password)).toEqual([303]);
  }, 180_000);

  test('GDPR Art. 5(1)(c): throttle counters keep no typed name, e-mail address or client address in clear', async () => {
    const typed = `Someone.${randomBytes(4).toString('hex')}@Example.org`;
    const browser = new BrowserAt(nextAddress());
    expect(await passwords(browser, typed, 'wrong-password')).toEqual([401]);
    const rows = (await server.kapija.db('rate_limits').select('key')) as Array<{ key: string }>;
    expect(rows.length).toBeGreaterThan(0);
    for (const { key } of rows) {
      expect(key.toLowerCase()).not.toContain(typed.toLowerCase());
      expect(key).not.toContain(browser.ip);
    }
  });

  test('GDPR Art. 5(1)(e): expired throttle counters are purged with the other expired rows', async () => {
    expect(await passwords(new BrowserAt(nextAddress()), `someone-${randomBytes(4).toString('hex')}`, 'wrong-password')).toEqual([401]);
    const rows = (await server.kapija.db('rate_limits').select('key')) as Array<{ key: string }>;
    expect(rows.length).toBeGreaterThan(1);
    // Time passes: every counter but one has ended.
    const kept = rows[0]!.key;
    await server.kapija.db('rate_limits').whereNot({ key: kept }).update({ expire: Date.now() - 1000 });
    await server.kapija.db('rate_limits').where({ key: kept }).update({ expire: Date.now() + 3_600_000 });
    const purged = await server.kapija.purge();
    expect(purged.rateLimits).toBe(rows.length - 1);
    const left = (await server.kapija.db('rate_limits').select('key')) as Array<{ key: string }>;
    expect(left.map((r) => r.key)).toEqual([kept]);
  });
});
