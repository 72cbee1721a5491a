/**
 * What the benchmarks share: the load loops (closed and open), the CPU meter over /proc, the
 * workloads (b)–(g) against one issuer, starting a server process with its output in a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Agent } from '../test/support/browserless.js';
import pg from 'pg';
import { createKapija } from '../src/app.js';
import type { Config } from '../src/config.js';
import { createTestAccount, createTestClient } from '../test/support/kapija.js';
import { PKCE_CHALLENGE, withVerifier } from '../test/support/pkce.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
export const CORES = os.availableParallelism();
export const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIRECT = 'http://127.0.0.1:9/cb';
export const CONCURRENCY = 8;

export interface Result { name: string; target: 'kapija' | 'bare' | 'argon2' | 'fleet'; concurrency: number | string; ops: number; rate: number; p50: number; p99: number; errors: number; cpuMsPerOp?: CpuShare }

/** CPU milliseconds per operation spent by the server under test, PostgreSQL and the load generator. */
export interface CpuShare { server: number; postgres: number; generator: number }

const TICK_MS = 1000 / 100; // USER_HZ on Linux
/** utime + stime in ms of a process and its children threads (from /proc), 0 when it is gone. */
export function cpuMsOf(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0;
  }
}
export const childrenOf = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
export const postgresPids = () =>
  fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres');
    } catch {
      return false;
    }
  });
/** The processes (each with its children) the current measurement is aimed at. */
export const measured = { pids: [] as number[] };
/** Starts a CPU meter for the server process trees `measured.pids`, PostgreSQL and this process. */
export function cpuMeter() {
  const roots = [...measured.pids];
  const tree = () => roots.flatMap((p) => [p, ...childrenOf(p)]);
  const pgBefore = new Map(postgresPids().map((p) => [p, cpuMsOf(p)]));
  const serverBefore = new Map(tree().map((p) => [p, cpuMsOf(p)]));
  const self = process.cpuUsage();
  return (ops: number): CpuShare => {
    const delta = (before: Map<number, number>, pids: number[]) => pids.reduce((a, p) => a + cpuMsOf(p) - (before.get(p) ?? 0), 0);
    const gen = process.cpuUsage(self);
    const per = (ms: number) => Math.round((ms / Math.max(1, ops)) * 1000) / 1000;
    return { server: per(delta(serverBefore, tree())), postgres: per(delta(pgBefore, postgresPids())), generator: per((gen.user + gen.system) / 1000) };
  };
}

export const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);

/** Closed loop: `concurrency` virtual users repeat `op` for SECONDS. */
export async function closed(name: string, target: Result['target'], concurrency: number, op: (vu: number) => Promise<void>): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const meter = cpuMeter();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, vu) => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await op(vu);
          lat.push(performance.now() - t);
        } catch (err) {
          if (errors === 0 && process.env.BENCH_DEBUG) process.stderr.write(`${name}: ${String(err)}\n`);
          errors += 1;
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { name, target, concurrency, ops: lat.length, rate: lat.length / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), errors, cpuMsPerOp: meter(lat.length) };
}

/** Open loop at a fixed rate (for p99 at half the peak rate). */
export async function open(name: string, target: Result['target'], rate: number, op: (vu: number) => Promise<void>): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const n = Math.max(1, Math.floor(rate * SECONDS));
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i += 1) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      (async () => {
        const t = performance.now();
        try {
          await op(i % CONCURRENCY);
          lat.push(performance.now() - t);
        } catch {
          errors += 1;
        }
      })(),
    );
  }
  await Promise.all(pending);
  lat.sort((a, b) => a - b);
  return { name, target, concurrency: `${Math.round(rate)}/s`, ops: lat.length, rate, p50: pct(lat, 50), p99: pct(lat, 99), errors };
}

export function ok(res: Response, what: string) {
  if (!res.ok) throw new Error(`${what}: ${res.status}`);
  return res;
}

/** The operations (b)–(g) against one issuer. */
export function workloads(issuer: string, client: { id: string; secret: string }, vus: { agent: Agent; refresh: string; access: string }[]) {
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
  const token = async (params: Record<string, string>) =>
    (await ok(await fetch(`${issuer}/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(withVerifier(params)) }), 'token').json()) as Record<string, string>;
  const locks: Promise<void>[] = [];
  const etags = new Map<string, string>();
  const authorize = () => {
    const u = new URL(`${issuer}/auth`);
    u.search = new URLSearchParams({ client_id: client.id, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', state: randomBytes(6).toString('hex'), ...PKCE_CHALLENGE }).toString();
    return u;
  };
  return {
    authorize,
    token,
    '(b) SSO flow': async (vu: number) => {
      const agent = vus[vu]!.agent;
      const cb = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(REDIRECT));
      if (!(cb instanceof URL)) throw new Error('no callback');
      await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT });
    },
    // A refresh token is single-use: one virtual user's exchanges never overlap (reuse would revoke the grant).
    '(c) refresh rotation': (vu: number) => {
      const run = (locks[vu] ?? Promise.resolve()).then(async () => {
        const t = await token({ grant_type: 'refresh_token', refresh_token: vus[vu]!.refresh });
        if (!t.refresh_token) throw new Error('no rotation');
        vus[vu]!.refresh = t.refresh_token;
      });
      locks[vu] = run.catch(() => undefined);
      return run;
    },
    '(d) client credentials': async () => {
      await token({ grant_type: 'client_credentials' });
    },
    '(e) userinfo': async (vu: number) => {
      const r = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${vus[vu]!.access}` } });
      if (!r.ok) throw new Error(`userinfo ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    },
    '(f) introspection': async (vu: number) => {
      const r = await ok(await fetch(`${issuer}/token/introspection`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: vus[vu]!.access }) }), 'introspection');
      if (!((await r.json()) as { active: boolean }).active) throw new Error('inactive');
    },
    '(g) discovery + JWKS': async () => {
      await (await ok(await fetch(`${issuer}/.well-known/openid-configuration`), 'discovery')).arrayBuffer();
      await (await ok(await fetch(`${issuer}/jwks`), 'jwks')).arrayBuffer();
    },
    // As a relying party's HTTP cache does: it keeps each document with its ETag and asks again
    // with If-None-Match; a server that sends no ETag is asked unconditionally and answers in full.
    '(g) discovery + JWKS, revalidated': async () => {
      for (const url of [`${issuer}/.well-known/openid-configuration`, `${issuer}/jwks`]) {
        const etag = etags.get(url);
        const r = await fetch(url, etag ? { headers: { 'if-none-match': etag } } : {});
        if (r.status !== 304) ok(r, url);
        const kept = r.headers.get('etag');
        if (kept) etags.set(url, kept);
        await r.arrayBuffer();
      }
    },
  };
}


/**
 * Starts a server with its stdout and stderr going to a file, as a log driver would take them: a
 * pipe into this process would make the load generator the log shipper, and a pipe it drains late
 * blocks the server's synchronous log writes.
 */
export function startProcess(args: string[], env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-bench-log-')), 'out.log');
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const out = () => fs.readFileSync(logFile, 'utf8').slice(0, 100_000);
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => {
      clearInterval(poll);
      reject(new Error(`exited ${code}:\n${out()}`));
    };
    const poll = setInterval(() => {
      if (!ready.test(out())) return;
      clearInterval(poll);
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(child);
    }, 100);
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`timeout starting ${args.join(' ')}:\n${out()}`));
    }, 60_000);
    child.once('exit', onExit);
  });
}


export function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export const machineName = () => `${os.cpus()[0]?.model ?? 'cpu'} × ${CORES}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`;
export const versionsUsed = () => ({ node: process.version, 'oidc-provider': versionOf('oidc-provider'), knex: versionOf('knex'), pg: versionOf('pg'), argon2: versionOf('argon2') });

export function versionOf(pkg: string): string {
  return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}


/** 400 citizens (password + TOTP) who already consented to one service, and the service. */
export async function setUpCitizens(config: Config) {
  process.stdout.write('setting up citizens and the service…\n');
  const setup = await createKapija(config);
  const rp = await createTestClient(setup, { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
  const citizens: Awaited<ReturnType<typeof createTestAccount>>[] = [];
  for (let i = 0; i < 400; i += 1) {
    const c = await createTestAccount(setup);
    const grant = new setup.provider.Grant({ accountId: c.account.id, clientId: rp.clientId });
    grant.addOIDCScope('openid offline_access');
    await grant.save();
    citizens.push(c);
  }
  await setup.close();
  return { citizens, client: { id: rp.clientId, secret: rp.clientSecret! } };
}

/** A fresh PostgreSQL database for one benchmark run, and how to drop it. */
export async function benchDatabase(prefix: string) {
  const name = `${prefix}_${Date.now().toString(36)}`;
  const run = async (sql: string) => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  };
  await run(`create database ${name}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return { url, drop: () => run(`drop database if exists ${name} with (force)`).catch(() => undefined) };
}
