/**
 * Attack cases against the protocol and the sessions, each named after the check and the standard it
 * comes from. Cases already covered elsewhere are listed in docs/threat-model.md, not repeated here.
 */
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, startKapija } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { PKCE_CHALLENGE, withVerifier } from '../support/pkce.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
let rp: { clientId: string; clientSecret?: string | undefined };

const server = kapijaForSuite({ env: { ADMIN_MIN_ACR: 'substantial' } });
beforeAll(async () => {
  rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
});

const basic = () => `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret}`).toString('base64')}`;
function authorize(extra: Record<string, string> = {}): URL {
  const u = new URL('/auth', server.url);
  u.search = new URLSearchParams({ client_id: rp.clientId, response_type: 'code', scope: 'openid offline_access', redirect_uri: REDIRECT, prompt: 'consent', ...PKCE_CHALLENGE, ...extra }).toString();
  return u;
}
async function post(path: string, params: Record<string, string>, auth = basic()) {
  const res = await fetch(new URL(path, server.url), { method: 'POST', headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
const redeem = (code: string, extra: Record<string, string> = {}) => post('/token', withVerifier({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, ...extra }));

describe('authorization codes and PKCE', () => {
  test('RFC 9700 §4.2.4 / OIDC Core 3.1.3.2: a reused authorization code fails and revokes the tokens issued with it', async () => {
    const citizen = await createTestAccount(server.kapija);
    const cb = await signIn(new Agent(), authorize(), REDIRECT, citizen);
    const first = await redeem(cb.searchParams.get('code')!);
    expect(first.status).toBe(200);
    const again = await redeem(cb.searchParams.get('code')!);
    expect(again.status).toBe(400);
    expect(again.json.error).toBe('invalid_grant');
    const introspected = await post('/token/introspection', { token: first.json.access_token as string });
    expect(introspected.json.active).toBe(false);
    const refreshed = await post('/token', { grant_type: 'refresh_token', refresh_token: first.json.refresh_token as string });
    expect(refreshed.json.error).toBe('invalid_grant');
  });

  test('RFC 9700 §2.1.1 (PKCE downgrade): a code requested with a code_challenge cannot be redeemed without its verifier', async () => {
    const citizen = await createTestAccount(server.kapija);
    const verifier = randomBytes(32).toString('base64url');
    const { createHash } = await import('node:crypto');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const cb = await signIn(new Agent(), authorize({ code_challenge: challenge, code_challenge_method: 'S256' }), REDIRECT, citizen);
    const code = cb.searchParams.get('code')!;
    const without = await post('/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(without.status).toBe(400);
    expect(without.json.error).toBe('invalid_grant');
    const wrong = await redeem(code, { code_verifier: randomBytes(32).toString('base64url') });
    expect(wrong.json.error).toBe('invalid_grant');
    expect((await redeem(code, { code_verifier: verifier })).status).toBe(200);
  });

  test('RFC 9700 §4.1.3 / OIDC Core 3.1.2.1 (redirect URI exact matching): no prefix, suffix, query, fragment, case or other host is followed', async () => {
    const variants = [
      'http://127.0.0.1:9/cb/',
      'http://127.0.0.1:9/cb/evil',
      'http://127.0.0.1:9/cbx',
      'http://127.0.0.1:9/cb?x=1',
      'http://127.0.0.1:9/cb#frag',
      'http://127.0.0.1:9/CB',
      'http://127.0.0.1:99/cb',
      'http://127.0.0.1:9@evil.example/cb',
      'http://evil.example/cb',
      'https://127.0.0.1:9/cb',
      '//evil.example/cb',
    ];
    for (const redirect_uri of variants) {
      const res = await fetch(authorize({ redirect_uri }), { redirect: 'manual', headers: { accept: 'text/html' } });
      expect([res.status, redirect_uri]).toEqual([400, redirect_uri]);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toMatch(/redirect_uri/);
    }
  });
});

describe('sessions and prompts', () => {
  test('OIDC Core 3.1.2.1 (prompt=none without a session): login_required at the registered redirect URI, with state', async () => {
    const res = await fetch(authorize({ prompt: 'none', state: 'st-1' }), { redirect: 'manual' });
    const to = new URL(res.headers.get('location')!);
    expect(`${to.origin}${to.pathname}`).toBe(REDIRECT);
    expect(to.searchParams.get('error')).toBe('login_required');
    expect(to.searchParams.get('state')).toBe('st-1');
    expect(to.searchParams.get('code')).toBeNull();
  });

  test('OIDC Core 3.1.2.1 (max_age): an older sign-in is asked to authenticate again, and auth_time tells when', async () => {
    const citizen = await createTestAccount(server.kapija);
    const agent = new Agent();
    await signIn(agent, authorize(), REDIRECT, citizen);
    await new Promise((r) => setTimeout(r, 2100));
    const silent = await fetch(authorize({ prompt: 'none', max_age: '1', scope: 'openid' }), { redirect: 'manual', headers: { cookie: agent.jar.header(new URL(server.url)) } });
    expect(new URL(silent.headers.get('location')!).searchParams.get('error')).toBe('login_required');
    const interactive = await agent.request(authorize({ max_age: '1', scope: 'openid' }));
    expect(interactive.headers.get('location')).toMatch(/^\/interaction\//);
    const fresh = await agent.request(authorize({ max_age: '3600', scope: 'openid', prompt: 'none' }));
    const code = new URL(fresh.headers.get('location')!).searchParams.get('code')!;
    const tokens = await redeem(code);
    const claims = JSON.parse(Buffer.from((tokens.json.id_token as string).split('.')[1]!, 'base64url').toString()) as { auth_time: number };
    expect(typeof claims.auth_time).toBe('number');
  });

  test('ASVS 3.2.1 / NIST 800-63B 7.1 (session fixation): sign-in issues a new session id; a planted one gains nothing', async () => {
    const citizen = await createTestAccount(server.kapija);
    const agent = new Agent();
    const planted = randomBytes(16).toString('base64url');
    agent.jar.store([`kapija.session=${planted}; path=/`]);
    await signIn(agent, authorize(), REDIRECT, citizen);
    expect(agent.jar.get('kapija.session')).toBeTruthy();
    expect(agent.jar.get('kapija.session')).not.toBe(planted);
    // the attacker's browser, holding the planted value, is not signed in
    const attacker = await fetch(authorize({ prompt: 'none', scope: 'openid' }), { redirect: 'manual', headers: { cookie: `kapija.session=${planted}` } });
    expect(new URL(attacker.headers.get('location')!).searchParams.get('error')).toBe('login_required');
  });

  test('RFC 8725 §3.1-3.2 / OIDC Core 10.1 (ID token alg none, key confusion): no none or HMAC algorithm, no symmetric key, none accepted for a client', async () => {
    const disco = (await (await fetch(new URL('/.well-known/openid-configuration', server.url))).json()) as Record<string, string[]>;
    for (const key of ['id_token_signing_alg_values_supported', 'userinfo_signing_alg_values_supported', 'request_object_signing_alg_values_supported', 'token_endpoint_auth_signing_alg_values_supported']) {
      expect((disco[key] ?? []).filter((a) => a === 'none' || /^HS/.test(a))).toEqual([]);
    }
    const jwks = (await (await fetch(new URL('/jwks', server.url))).json()) as { keys: Record<string, string>[] };
    for (const k of jwks.keys) {
      expect(k.kty).not.toBe('oct');
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(k[priv]).toBeUndefined();
    }
    for (const alg of ['none', 'HS256']) {
      await expect(server.kapija.provider.Client.validate({ client_id: `x-${alg}`, client_secret: 'x'.repeat(40), redirect_uris: [REDIRECT], id_token_signed_response_alg: alg } as never)).rejects.toThrow();
    }
    const citizen = await createTestAccount(server.kapija);
    const cb = await signIn(new Agent(), authorize(), REDIRECT, citizen);
    const header = decodeProtectedHeader((await redeem(cb.searchParams.get('code')!)).json.id_token as string);
    expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
    expect(['RS256', 'ES256', 'EdDSA']).toContain(header.alg);
  });
});

describe('forms', () => {
  test('ASVS 4.2.2 (CSRF): every form of the portal, the console and self-service refuses a post without its token', async () => {
    const citizen = await createTestAccount(server.kapija);
    const admin = await createTestAccount(server.kapija);
    await createRoleRepository(server.kapija.db).grant(admin.account.id, 'admin', 'test');
    const signedIn = async (start: string, callback: string, who: typeof citizen) => {
      const agent = new Agent();
      const first = await agent.request(new URL(start, server.url));
      const cb = await signIn(agent, new URL(first.headers.get('location')!, server.url), `${server.url}${callback}`, who);
      await agent.request(cb);
      return agent;
    };
    const portal = await signedIn('/account', '/account/callback', citizen);
    const console_ = await signedIn('/admin/login', '/admin/callback', admin);
    const anonymous = new Agent();
    const forms: [Agent, string][] = [
      ...['/account/password', '/account/email', '/account/sessions/end', '/account/services/revoke', '/account/security/remove', '/account/security/recovery-codes', '/account/security/totp', '/account/delete'].map((p) => [portal, p] as [Agent, string]),
      ...['/admin/clients', `/admin/clients/${rp.clientId}`, `/admin/clients/${rp.clientId}/secret`, `/admin/clients/${rp.clientId}/disable`, `/admin/clients/${rp.clientId}/delete`, `/admin/citizens/${citizen.account.id}/lock`, '/admin/sessions/end', '/admin/logout'].map((p) => [console_, p] as [Agent, string]),
      ...['/register', '/verify-email', '/recover', '/recover/reset', '/not-me'].map((p) => [anonymous, p] as [Agent, string]),
    ];
    // Each agent holds its CSRF cookie: only the token in the form is missing, or is another browser's.
    await anonymous.request(new URL('/register', server.url));
    for (const [agent, path] of forms) {
      for (const token of [undefined, 'forged', '']) {
        const res = await agent.request(new URL(path, server.url), { form: { ...(token === undefined ? {} : { _csrf: token }), id: 'x', client: rp.clientId, confirm: 'on' } });
        expect([path, res.status]).toEqual([path, 403]);
      }
    }
    // the client and the citizen are untouched
    expect(await server.kapija.clients.find(rp.clientId)).toBeTruthy();
  });
});

describe('session limits (NIST SP 800-63B 4.2.3 AAL2, ASVS 3.3.2)', () => {
  test('idle limit: a session unused for SESSION_IDLE_SECONDS ends; use keeps it alive', async () => {
    const idle = await startKapija({ env: { SESSION_IDLE_SECONDS: '3' } });
    try {
      const client = await createTestClient(idle.kapija, { redirect_uris: [REDIRECT] });
      const citizen = await createTestAccount(idle.kapija);
      const agent = new Agent();
      const url = (prompt?: string) => {
        const u = new URL('/auth', idle.url);
        u.search = new URLSearchParams({ client_id: client.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, ...PKCE_CHALLENGE, ...(prompt ? { prompt } : {}) }).toString();
        return u;
      };
      await signIn(agent, url(), REDIRECT, citizen);
      const silent = async () => new URL((await agent.request(url('none'))).headers.get('location')!, idle.url).searchParams;
      for (let i = 0; i < 3; i += 1) {
        await new Promise((r) => setTimeout(r, 1500));
        expect((await silent()).get('code')).toBeTruthy(); // used every 1.5 s: still alive after 4.5 s
      }
      await new Promise((r) => setTimeout(r, 4000));
      expect((await silent()).get('error')).toBe('login_required');
    } finally {
      await idle.stop();
    }
  }, 30_000);

  test('absolute limit: use does not push the end of a session past SESSION_TTL_SECONDS after sign-in', async () => {
    const abs = await startKapija({ env: { SESSION_TTL_SECONDS: '60', SESSION_IDLE_SECONDS: '1800' } });
    try {
      const client = await createTestClient(abs.kapija, { redirect_uris: [REDIRECT] });
      const citizen = await createTestAccount(abs.kapija);
      const agent = new Agent();
      const u = new URL('/auth', abs.url);
      u.search = new URLSearchParams({ client_id: client.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, ...PKCE_CHALLENGE }).toString();
      const signedInAt = Math.floor(Date.now() / 1000);
      await signIn(agent, u, REDIRECT, citizen);
      const expiry = async () => {
        u.searchParams.set('prompt', 'none');
        const res = await agent.request(u);
        expect(new URL(res.headers.get('location')!).searchParams.get('code')).toBeTruthy();
        const cookie = res.headers.getSetCookie().find((c) => c.startsWith('kapija.session='))!;
        return Date.parse(/expires=([^;]+)/i.exec(cookie)![1]!) / 1000;
      };
      const first = await expiry();
      await new Promise((r) => setTimeout(r, 2100));
      const later = await expiry();
      expect(later).toBe(first);
      expect(later).toBeLessThanOrEqual(signedInAt + 62);
    } finally {
      await abs.stop();
    }
  }, 30_000);
});

