/**
 * `npm run bench:queries`: the SQL statements Kapija makes for one operation of each benchmark
 * workload, on PostgreSQL (in one process, after a warm-up). Each statement is a round trip, and a
 * round trip's CPU (socket writes and reads on both sides) is most of a protocol request's cost.
 * BENCH_PG_URL names the server (default postgres://postgres@127.0.0.1:5432/postgres); set
 * QUERIES_VERBOSE=1 to print the statements.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { Agent } from '../test/support/browserless.js';
import { signIn } from '../test/support/sign-in.js';
import { createTestAccount, createTestClient, startKapija } from '../test/support/kapija.js';
import { createPgDatabase } from '../test/support/databases.js';
import { PKCE_CHALLENGE, withVerifier } from '../test/support/pkce.js';

process.env.KAPIJA_TEST_PG_URL ??= process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIRECT = 'http://127.0.0.1:9/cb';
const testDb = await createPgDatabase();
const running = await startKapija({ testDb });
const { kapija, url } = running;
try {
  const rp = await createTestClient(kapija, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
  const citizen = await createTestAccount(kapija);
  const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`;
  const token = async (params: Record<string, string>) => {
    const r = await fetch(`${url}/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(withVerifier(params)) });
    if (!r.ok) throw new Error(`token ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, string>;
  };
  const authorize = (extra: Record<string, string> = {}) => {
    const u = new URL(`${url}/auth`);
    u.search = new URLSearchParams({ client_id: rp.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid offline_access', state: randomBytes(6).toString('hex'), ...PKCE_CHALLENGE, ...extra }).toString();
    return u;
  };
  const agent = new Agent();
  const first = await token({ grant_type: 'authorization_code', code: (await signIn(agent, authorize({ prompt: 'consent' }), REDIRECT, citizen)).searchParams.get('code')!, redirect_uri: REDIRECT });
  let tokens = first;
  let refresh = first.refresh_token!;

  // Every statement reaches a pg Client, whether knex built it or it is a prepared one (store/db.ts).
  const statements: string[] = [];
  const query = pg.Client.prototype.query as (...a: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const c = args[0] as string | { text: string; name?: string; values?: unknown[] };
    // The oidc-provider model a payload statement is about (Session, Grant, …) is one of its values.
    const models = typeof c === 'string' ? [] : (c.values ?? []).filter((v) => typeof v === 'string' && /^[A-Z][A-Za-z]+$/.test(v));
    statements.push(typeof c === 'string' ? c : `${c.name ? `[prepared ${c.name}${models.length ? ` ${models.join(',')}` : ''}] ` : ''}${c.text}`);
    return query.apply(this, args);
  } as typeof pg.Client.prototype.query;
  // With QUERIES_VERBOSE, each request Kapija receives is a line among its statements.
  if (process.env.QUERIES_VERBOSE) {
    const emit = http.Server.prototype.emit as (...a: unknown[]) => boolean;
    http.Server.prototype.emit = function (this: http.Server, event: string, ...rest: unknown[]) {
      if (event === 'request') {
        const req = rest[0] as http.IncomingMessage;
        statements.push(`-- ${req.method ?? ''} ${(req.url ?? '').split('?')[0]!}`);
      }
      return emit.call(this, event, ...rest);
    } as typeof http.Server.prototype.emit;
  }
  const ops: Record<string, () => Promise<unknown>> = {
    '(a) full sign-in': async () => {
      const a = new Agent();
      const cb = await signIn(a, authorize(), REDIRECT, citizen);
      await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT });
    },
    '(b) SSO flow': async () => {
      const cb = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(REDIRECT));
      if (!(cb instanceof URL)) throw new Error('no callback');
      tokens = await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT });
    },
    '(c) refresh rotation': async () => {
      const t = await token({ grant_type: 'refresh_token', refresh_token: refresh });
      refresh = t.refresh_token!;
    },
    '(d) client credentials': () => token({ grant_type: 'client_credentials' }),
    '(e) userinfo': async () => {
      const r = await fetch(`${url}/me`, { headers: { authorization: `Bearer ${tokens.access_token!}` } });
      if (!r.ok) throw new Error(`userinfo ${r.status}`);
    },
    '(f) introspection': async () => {
      const r = await fetch(`${url}/token/introspection`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: tokens.access_token! }) });
      if (!((await r.json()) as { active: boolean }).active) throw new Error('inactive');
    },
    '(g) discovery + JWKS': async () => {
      await (await fetch(`${url}/.well-known/openid-configuration`)).arrayBuffer();
      await (await fetch(`${url}/jwks`)).arrayBuffer();
    },
  };
  for (const [name, op] of Object.entries(ops)) {
    await op(); // warm-up: caches as a running instance has them
    await new Promise((r) => setTimeout(r, 50));
    statements.length = 0;
    await op();
    await new Promise((r) => setTimeout(r, 50)); // work a response leaves behind (ledger, metrics)
    process.stdout.write(`${name.padEnd(24)} ${String(statements.filter((s) => !s.startsWith('-- ')).length).padStart(3)} statements\n`);
    if (process.env.QUERIES_VERBOSE) for (const s of statements) process.stdout.write(`    ${s.replace(/\s+/g, ' ').slice(0, 160)}\n`);
  }
} finally {
  await running.stop();
  await testDb.drop();
}
