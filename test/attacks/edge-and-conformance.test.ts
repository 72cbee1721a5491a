/**
 * Attack cases at Kapija's edge (request headers a client or a proxy chooses) and protocol
 * conformance cases, each named after the standard it defends.
 */
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, startKapija, type RunningKapija } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

/** One request with headers fetch() would not send as given (Host), or an absolute-form target. */
function raw(base: string, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: target, method, headers: { accept: 'application/json', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every absolute URL anywhere in a JSON document. */
function urlsIn(doc: unknown): string[] {
  if (typeof doc === 'string') return /^https?:\/\//i.test(doc) ? [doc] : [];
  if (Array.isArray(doc)) return doc.flatMap(urlsIn);
  if (doc && typeof doc === 'object') return Object.values(doc).flatMap(urlsIn);
  return [];
}

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

describe('published URLs come from ISSUER, never from request headers', () => {
  let server: RunningKapija;
  afterEach(async () => {
    await server?.stop();
  });

  const expectOwnUrls = async (s: RunningKapija) => {
    const res = await fetch(`${s.url}/.well-known/openid-configuration`);
    const doc = (await res.json()) as Record<string, unknown>;
    const { acr_values_supported: _acrs, ...endpoints } = doc; // acr values are names, not addresses
    const urls = urlsIn(endpoints);
    expect(urls.length).toBeGreaterThan(5);
    for (const u of urls) expect([u, new URL(u).origin]).toEqual([u, new URL(s.url).origin]);
    expect(doc.authorization_endpoint).toBe(`${s.url}/auth`);
    expect(doc.token_endpoint).toBe(`${s.url}/token`);
  };

  test('RFC 8414 §3.2 / OIDC Discovery 4.3 / OWASP Host header injection: a hostile first discovery request (Host, absolute-form target) does not change what every service reads', async () => {
    server = await startKapija();
    const first = await raw(server.url, '/.well-known/openid-configuration', { host: 'evil.example' });
    expect(first.status).toBe(200);
    expect(first.body).not.toContain('evil.example');
    await expectOwnUrls(server);
    const absolute = await raw(server.url, 'http://evil.example/.well-known/openid-configuration', { host: 'evil.example' });
    expect(absolute.body).not.toContain('evil.example');
  });

  test('RFC 8414 §3.2 / OWASP Host header injection: behind the proxy (TRUST_PROXY) X-Forwarded-Host does not poison discovery, neither after a key rotation swaps the engine', async () => {
    server = await startKapija({ env: { TRUST_PROXY: 'true' } });
    const first = await raw(server.url, '/.well-known/openid-configuration', { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' });
    expect(first.body).not.toContain('evil.example');
    await expectOwnUrls(server);
    await server.kapija.keys.rotateSigning();
    expect(await server.kapija.refreshKeys()).toBe(true);
    const afterSwap = await raw(server.url, '/.well-known/openid-configuration', { host: 'evil.example', 'x-forwarded-host': 'evil.example' });
    expect(afterSwap.body).not.toContain('evil.example');
    await expectOwnUrls(server);
  });

  test('OWASP Host header injection: the redirect to the sign-in pages names no host a request chose', async () => {
    server = await startKapija({ env: { TRUST_PROXY: 'true' } });
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const { challenge } = pkce();
    const q = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' });
    const res = await raw(server.url, `/auth?${q}`, { host: 'evil.example', 'x-forwarded-host': 'evil.example', accept: 'text/html' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toMatch(/^\/interaction\/[\w-]+$/);
    expect(new URL(res.headers.location!, server.url).origin).toBe(new URL(server.url).origin);
  });
});

describe('client addresses behind the proxy', () => {
  test('ASVS 5.0 V4.1.3 / OWASP IP spoofing: with TRUST_PROXY the address is the one the proxy appended to X-Forwarded-For, not one the client wrote in front of it', async () => {
    const server = await startKapija({ env: { TRUST_PROXY: 'true' } });
    try {
      const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
      const seen: string[] = [];
      server.kapija.events.on('signin.failure', (e) => void seen.push(e.ip));
      const agent = new Agent();
      const { challenge } = pkce();
      const auth = new URL('/auth', server.url);
      auth.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' }).toString();
      const login = await agent.follow(await agent.request(auth), () => false);
      if (login instanceof URL) throw new Error('no login page');
      const csrf = /name="_csrf" value="([^"]+)"/.exec(login.body)![1]!;
      for (let i = 0; i < 3; i += 1) {
        const spoofed = `198.51.100.${i + 1}`;
        const res = await agent.request(new URL(`${login.url.pathname}/login`, server.url), {
          form: { _csrf: csrf, username: 'nobody', password: 'wrong' },
          headers: { 'x-forwarded-for': `${spoofed}, 203.0.113.5` },
        });
        expect(res.status).toBe(401);
      }
      expect(seen).toEqual(['203.0.113.5', '203.0.113.5', '203.0.113.5']);
    } finally {
      await server.stop();
    }
  });

  test('ASVS 5.0 V4.1.3: TRUST_PROXY_HOPS=2 takes the address the outer of two proxies appended', async () => {
    const server = await startKapija({ env: { TRUST_PROXY: 'true', TRUST_PROXY_HOPS: '2' } });
    try {
      expect(server.kapija.app.maxIpsCount).toBe(2);
      const ctx = server.kapija.app.createContext(
        Object.assign(new http.IncomingMessage(null as never), { headers: { 'x-forwarded-for': '198.51.100.9, 203.0.113.5, 10.0.0.2' }, url: '/' }),
        new http.ServerResponse(new http.IncomingMessage(null as never)),
      );
      expect(ctx.ip).toBe('203.0.113.5');
    } finally {
      await server.stop();
    }
  });
});

describe('protocol conformance', () => {
  const server = kapijaForSuite();
  let rp: { clientId: string; clientSecret?: string | undefined };
  beforeAll(async () => {
    rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  });
  const basic = () => `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret}`).toString('base64')}`;
  const params = (extra: Record<string, string> = {}) => ({ client_id: rp.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, ...extra });

  test('OIDC Core 3.1.2.1: the authorization endpoint accepts POST with a form-encoded body like GET', async () => {
    const { challenge } = pkce();
    const agent = new Agent();
    const res = await agent.request(new URL('/auth', server.url), { form: params({ code_challenge: challenge, code_challenge_method: 'S256', state: 'st-1' }) });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/\/interaction\/[\w-]+$/);
    // The engine read the body: a sign-in through the POSTed request ends at the service with its state.
    const citizen = await createTestAccount(server.kapija);
    const cb = await signIn(agent, new URL(res.headers.get('location')!, server.url), REDIRECT, citizen);
    expect(cb.searchParams.get('state')).toBe('st-1');
    expect(cb.searchParams.get('code')).toBeTruthy();
  });

  test('RFC 9700 §2.1.1 / OAuth 2.1 §4.1.1: a confidential client must use PKCE (S256) too', async () => {
    const without = await fetch(new URL(`/auth?${new URLSearchParams(params())}`, server.url), { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(without.status).toBe(303);
    const to = new URL(without.headers.get('location')!, server.url);
    expect(to.href.startsWith(REDIRECT)).toBe(true);
    expect(to.searchParams.get('error')).toBe('invalid_request');
    const plain = await fetch(new URL(`/auth?${new URLSearchParams(params({ code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }))}`, server.url), { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(new URL(plain.headers.get('location')!, server.url).searchParams.get('error')).toBe('invalid_request');
  });

  test('W3C Fetch CORS / RFC 6454 §7.1: the opaque origin "null" is never allowed, on the token endpoint nor elsewhere', async () => {
    const token = await fetch(new URL('/token', server.url), { method: 'POST', headers: { origin: 'null', authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    expect(token.headers.get('access-control-allow-origin')).not.toBe('null');
    const preflight = await fetch(new URL('/token', server.url), { method: 'OPTIONS', headers: { origin: 'null', 'access-control-request-method': 'POST' } });
    expect(preflight.headers.get('access-control-allow-origin')).not.toBe('null');
    for (const path of ['/.well-known/openid-configuration', '/jwks', '/me']) {
      const res = await fetch(new URL(path, server.url), { headers: { origin: 'null' } });
      expect([path, res.headers.get('access-control-allow-origin')]).not.toEqual([path, 'null']);
    }
  });

  test('RFC 7662 §2.1 / RFC 6749 §5.2: introspection without client authentication is 401 invalid_client with WWW-Authenticate', async () => {
    const res = await fetch(new URL('/token/introspection', server.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: 'token=abc' });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const wrong = await fetch(new URL('/token/introspection', server.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${rp.clientId}:wrong`).toString('base64')}` }, body: 'token=abc' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  test('GDPR Art. 5(1)(c),(e) / ePrivacy Art. 5(3): the device cookie lives 90 days, is renewed on use, and every cookie is listed on /cookies in three languages, linked from every page', async () => {
    const citizen = await createTestAccount(server.kapija);
    const agent = new Agent();
    const deviceCookies: string[] = [];
    const original = agent.jar.store.bind(agent.jar);
    agent.jar.store = (set) => {
      deviceCookies.push(...set.filter((c) => c.startsWith('kapija.device=')));
      original(set);
    };
    for (let i = 0; i < 2; i += 1) {
      const { challenge } = pkce();
      await signIn(agent, new URL(`/auth?${new URLSearchParams(params({ code_challenge: challenge, code_challenge_method: 'S256', prompt: 'login' }))}`, server.url), REDIRECT, citizen);
    }
    // Set at the first sign-in and set again (same value, a fresh 90 days) at the second.
    expect(deviceCookies.length).toBeGreaterThanOrEqual(2);
    for (const c of deviceCookies) {
      const days = (Date.parse(/expires=([^;]+)/i.exec(c)?.[1] ?? '') - Date.now()) / (24 * 3600 * 1000);
      expect([c, Math.round(days)]).toEqual([c, 90]);
      expect(c.split(';')[0]).toBe(deviceCookies[0]!.split(';')[0]);
    }

    const names = ['kapija.session', 'kapija.interaction', 'kapija.resume', 'kapija.csrf', 'kapija.lang', 'kapija.device', 'kapija.trusted', 'kapija.account', 'kapija.admin', 'kapija.reenrol'];
    for (const lang of ['sr-Cyrl', 'sr-Latn', 'en']) {
      const page = await new Agent(lang).request(new URL(`/cookies?lang=${lang}`, server.url));
      expect(page.status).toBe(200);
      expect(page.body).toContain(`lang="${lang}"`);
      for (const n of names) expect([lang, n, page.body.includes(n)]).toEqual([lang, n, true]);
      expect(page.body).toMatch(/90/);
    }
    for (const path of ['/register', '/recover', '/cookies', '/nope']) {
      const page = await new Agent().request(new URL(path, server.url));
      expect([path, /<footer[\s\S]*href="\/cookies"[\s\S]*<\/footer>/.test(page.body)]).toEqual([path, true]);
    }
    // Two full sign-ins with TOTP: on a loaded machine this takes longer than jest's default.
  }, 90_000);

  test('ASVS 5.0 V3.4.x / CSP3 form-action: pages restrict where forms post, and a sign-in with consent still reaches the service', async () => {
    const page = await new Agent().request(new URL('/register', server.url));
    expect(page.headers.get('content-security-policy')).toMatch(/form-action 'self'/);
    const citizen = await createTestAccount(server.kapija);
    const { challenge } = pkce();
    const cb = await signIn(new Agent(), new URL(`/auth?${new URLSearchParams(params({ code_challenge: challenge, code_challenge_method: 'S256', prompt: 'consent' }))}`, server.url), REDIRECT, citizen);
    expect(cb.searchParams.get('code')).toBeTruthy();
  });
});

const production = pgAvailable() ? describe : describe.skip;
production('in production (PostgreSQL)', () => {
  const server = kapijaForSuite({ store: 'postgres', env: { NODE_ENV: 'production', ISSUER: 'https://kapija.example', TRUST_PROXY: 'true', ALLOW_PRIVATE_NETWORK_FETCH: 'false', SMTP_URL: 'smtp://127.0.0.1:9' } });

  test('OWASP Host header injection: the redirect from http to https goes to ISSUER, not to the Host the request named', async () => {
    const res = await raw(server.url, '/register?x=1', { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http', accept: 'text/html' });
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe('https://kapija.example/register?x=1');
  });

  test('ASVS 5.0 V13.4.x / OWASP information exposure: /metrics is not served on the public port in production', async () => {
    expect(server.kapija.config.metricsPort).toBeDefined();
    const res = await raw(server.url, '/metrics', { 'x-forwarded-proto': 'https' });
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('kapija_');
  });

  test('RFC 6265bis §4.1.3.2: the site-wide CSRF and language cookies carry the __Host- prefix in production', async () => {
    const res = await raw(server.url, '/register?lang=en', { 'x-forwarded-proto': 'https', accept: 'text/html' });
    const cookies = (res.headers['set-cookie'] ?? []) as string[];
    expect(cookies.length).toBeGreaterThan(1);
    for (const c of cookies) {
      expect([c, c.startsWith('__Host-')]).toEqual([c, true]);
      expect([c, /;\s*path=\/(;|$)/i.test(c) && /;\s*secure/i.test(c) && !/;\s*domain=/i.test(c)]).toEqual([c, true]);
    }
  });
});
