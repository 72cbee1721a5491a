/**
 * Two Kapija server processes on one PostgreSQL database, and the relying-party side of a load:
 * sign-ins through the real pages (signIn) and refresh-token exchanges, every response recorded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent, type Page } from '../support/browserless.js';
import { signIn, SignInError } from '../support/sign-in.js';
import { createTestAccount, createTestClient, testConfig } from '../support/kapija.js';
import { createPgDatabase, type TestDatabase } from '../support/databases.js';
import { freePort, spawnKapija, type KapijaProcess } from '../support/spawn-kapija.js';
import { createKapija, type Kapija } from '../../src/app.js';
import { PKCE_CHALLENGE, withVerifier } from '../support/pkce.js';

export const REDIRECT = 'http://127.0.0.1:9/cb';

/** One HTTP exchange as the load saw it: when it started and ended, where, and what came back. */
export interface Exchange {
  at: number;
  /** When the answer (or the network error) came back; set by the recorder. */
  end?: number;
  what: string;
  status: number | 'network';
  /** For a 503: whether the body says, in words a person or program understands, that Kapija is unavailable. */
  clear?: boolean;
}

export class Recorder {
  readonly log: Exchange[] = [];
  add(e: Exchange): void {
    this.log.push({ end: Date.now(), ...e });
  }
  /**
   * Status → count of the exchanges wholly before `start` (answered before it), wholly after `end`
   * (started at or after it) and the rest, which were in flight at some moment in between.
   */
  around(start: number, end: number): { before: Record<string, number>; during: Record<string, number>; after: Record<string, number> } {
    const out = { before: {} as Record<string, number>, during: {} as Record<string, number>, after: {} as Record<string, number> };
    for (const e of this.log) {
      const bucket = (e.end ?? e.at) < start ? out.before : e.at >= end ? out.after : out.during;
      bucket[String(e.status)] = (bucket[String(e.status)] ?? 0) + 1;
    }
    return out;
  }
}

const clearUnavailable = (status: number, body: string) =>
  status !== 503 || /temporarily_unavailable|service\.unavailable|temporarily unavailable|привремено|privremeno/i.test(body);

/**
 * An Agent that records every request it makes. Kapija builds every absolute URL from ISSUER (the
 * balancer's address in production); `route` sends what names the issuer's origin to the instance
 * this agent is talking to, as a balancer with stickiness would.
 */
export class RecordingAgent extends Agent {
  route: { issuer: string; base: string } | undefined;
  constructor(private readonly recorder: Recorder, private readonly what: string) {
    super('en');
  }
  override async request(url: string | URL, init: Parameters<Agent['request']>[1] = {}): Promise<Page> {
    const target = new URL(url);
    if (this.route && target.origin === new URL(this.route.issuer).origin) {
      const base = new URL(this.route.base);
      target.protocol = base.protocol;
      target.host = base.host;
    }
    url = target;
    const at = Date.now();
    try {
      const page = await super.request(url, init);
      this.recorder.add({ at, what: this.what, status: page.status, ...(page.status === 503 ? { clear: clearUnavailable(503, page.body) } : {}) });
      return page;
    } catch (err) {
      this.recorder.add({ at, what: this.what, status: 'network' });
      throw err;
    }
  }
}

export interface Fleet {
  a: KapijaProcess;
  b: KapijaProcess;
  issuer: string;
  store: Kapija;
  testDb: TestDatabase;
  client: { clientId: string; clientSecret: string };
  citizens: Awaited<ReturnType<typeof createTestAccount>>[];
  close(): Promise<void>;
}

/** Two processes on a fresh database of the tests' PostgreSQL, or of the server at `pgServerUrl`. */
export async function startFleet(citizens: number, pgServerUrl?: string): Promise<Fleet> {
  const testDb = await createPgDatabase(pgServerUrl);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-faults-'));
  const [portA, portB] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${portA}`;
  const env = { ISSUER: issuer, MASTER_KEY: randomBytes(32).toString('base64'), DATA_DIR: dataDir, ...testDb.env, DATABASE_POOL_MAX: '5' };
  const [a, b] = await Promise.all([spawnKapija(env, { port: portA, timeoutMs: 40_000 }), spawnKapija(env, { port: portB, timeoutMs: 40_000 })]);
  const store = await createKapija(testConfig(env));
  const rp = await createTestClient(store, { redirect_uris: [REDIRECT] });
  const list = [];
  for (let i = 0; i < citizens; i += 1) list.push(await createTestAccount(store));
  return {
    a,
    b,
    issuer,
    store,
    testDb,
    client: { clientId: rp.clientId, clientSecret: rp.clientSecret! },
    citizens: list,
    async close() {
      await Promise.all([a.stop(), b.stop()]);
      await store.close().catch(() => undefined);
      await testDb.drop().catch(() => undefined);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function authorizeUrl(base: string, clientId: string, extra: Record<string, string> = {}): URL {
  const u = new URL('/auth', base);
  u.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: 'openid offline_access',
    prompt: 'consent',
    state: randomBytes(8).toString('hex'),
    ...PKCE_CHALLENGE,
    ...extra,
  }).toString();
  return u;
}

export interface TokenAnswer {
  status: number | 'network';
  body: Record<string, unknown>;
}

/** POST /token with client_secret_basic, recorded. */
export async function token(recorder: Recorder | undefined, base: string, fleet: Fleet, params: Record<string, string>, what = 'token'): Promise<TokenAnswer> {
  const at = Date.now();
  const basic = Buffer.from(`${encodeURIComponent(fleet.client.clientId)}:${encodeURIComponent(fleet.client.clientSecret)}`).toString('base64');
  try {
    const res = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(withVerifier(params)).toString(),
    });
    const text = await res.text();
    recorder?.add({ at, what, status: res.status, ...(res.status === 503 ? { clear: clearUnavailable(503, text) } : {}) });
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { raw: text };
    }
    return { status: res.status, body };
  } catch {
    recorder?.add({ at, what, status: 'network' });
    return { status: 'network', body: {} };
  }
}

/** A citizen's sign-in at `base` and the code's exchange: the agent (session cookie) and the tokens. */
export async function signInAndRedeem(recorder: Recorder, base: string, fleet: Fleet, citizen: Fleet['citizens'][number]) {
  const agent = new RecordingAgent(recorder, 'sign-in');
  agent.route = { issuer: fleet.issuer, base };
  const callback = await signIn(agent, authorizeUrl(base, fleet.client.clientId), REDIRECT, citizen);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code: ${callback.href}`);
  const tokens = await token(recorder, base, fleet, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, 'code');
  if (tokens.status !== 200) throw new Error(`code exchange answered ${tokens.status}: ${JSON.stringify(tokens.body)}`);
  return { agent, refreshToken: tokens.body.refresh_token as string, accessToken: tokens.body.access_token as string };
}

/** Whether the agent's session at Kapija still signs it in silently (prompt=none), at `base`. */
export async function silentSignIn(agent: Agent, base: string, fleet: Fleet): Promise<{ ok: boolean; detail: string }> {
  const url = authorizeUrl(base, fleet.client.clientId, { prompt: 'none', scope: 'openid' });
  if (agent instanceof RecordingAgent) agent.route = { issuer: fleet.issuer, base };
  const end = await agent.follow(await agent.request(url), (u) => u.href.startsWith(REDIRECT));
  if (!(end instanceof URL)) return { ok: false, detail: `page ${end.url.pathname} ${end.status}` };
  const code = end.searchParams.get('code');
  if (!code) return { ok: false, detail: end.searchParams.get('error') ?? 'no code' };
  const tokens = await token(undefined, base, fleet, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
  return { ok: tokens.status === 200, detail: `code exchange ${tokens.status}` };
}

export function isSignInError(err: unknown): err is SignInError {
  return err instanceof SignInError;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
