/**
 * Kapija as configured for production (NODE_ENV=production, https issuer behind a TLS-terminating
 * proxy, MASTER_KEY, PostgreSQL): the security headers and cookie attributes a browser gets.
 */
import { createTestClient, kapijaForSuite } from '../support/kapija.js';
import { pgAvailable } from '../support/databases.js';
import { PKCE_CHALLENGE } from '../support/pkce.js';

const REDIRECT = 'https://rp.example/cb';

if (!pgAvailable()) {
  process.stdout.write('[skip] production-headers: production needs PostgreSQL\n');
  test.skip('production headers and cookies (PostgreSQL not reachable)', () => undefined);
} else {
  const server = kapijaForSuite({ store: 'postgres', env: { NODE_ENV: 'production', ISSUER: 'https://kapija.example', TRUST_PROXY: 'true', ALLOW_PRIVATE_NETWORK_FETCH: 'false', SMTP_URL: 'smtp://127.0.0.1:9' } });
  let clientId: string;
  beforeAll(async () => {
    ({ clientId } = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] }));
  });

  const get = (path: string) => fetch(new URL(path, server.url), { redirect: 'manual', headers: { 'x-forwarded-proto': 'https', accept: 'text/html' } });

  test('ASVS 14.4.3-14.4.7 / OWASP clickjacking: CSP without unsafe-inline scripts and frame-ancestors none, HSTS, Referrer-Policy, nosniff on every page', async () => {
    for (const path of ['/register', '/recover', '/account', '/admin/login', '/.well-known/openid-configuration', '/nope']) {
      const res = await get(path);
      const csp = res.headers.get('content-security-policy') ?? '';
      const script = /script-src ([^;]*)/.exec(csp)?.[1] ?? /default-src ([^;]*)/.exec(csp)?.[1] ?? '';
      expect([path, script]).not.toEqual([path, expect.stringContaining('unsafe-inline')]);
      expect(script).toBeTruthy();
      expect([path, csp]).toEqual([path, expect.stringContaining("frame-ancestors 'none'")]);
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d{7,}/);
      expect(res.headers.get('referrer-policy')).toMatch(/no-referrer|same-origin|strict-origin/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  test('ASVS 3.4.1-3.4.3: every cookie is Secure, HttpOnly and SameSite in production', async () => {
    const auth = new URL('/auth', server.url);
    auth.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, ...PKCE_CHALLENGE }).toString();
    const cookies = [
      ...(await get(`${auth.pathname}${auth.search}`)).headers.getSetCookie(),
      ...(await get('/register')).headers.getSetCookie(),
      ...(await get('/register?lang=en')).headers.getSetCookie(),
    ];
    expect(cookies.length).toBeGreaterThan(2);
    for (const c of cookies) {
      expect([c, /;\s*secure/i.test(c)]).toEqual([c, true]);
      expect([c, /;\s*httponly/i.test(c)]).toEqual([c, true]);
      expect([c, /;\s*samesite=(lax|strict|none)/i.test(c)]).toEqual([c, true]);
    }
  });
}
