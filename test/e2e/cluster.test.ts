/**
 * The real server in cluster mode: two workers share one port, and SIGTERM lets a request in flight
 * (a sign-in whose password check takes about a second) finish before the process exits 0.
 */
import { createKapija } from '../../src/app.js';
import { Agent } from '../support/browserless.js';
import { submitForm } from '../support/sign-in.js';
import { createTestAccount, createTestClient, testConfig } from '../support/kapija.js';
import { createSqliteDatabase } from '../support/databases.js';
import fs from 'node:fs';
import { freePort, spawnKapija, type KapijaProcess } from '../support/spawn-kapija.js';
import { PKCE_CHALLENGE } from '../support/pkce.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
// A deliberately slow password hash: the sign-in POST then takes long enough to be caught by SIGTERM.
const SLOW = { ARGON2_TIME_COST: '100' };
const testDb = createSqliteDatabase();
let server: KapijaProcess;
let issuer: string;
let citizen: Awaited<ReturnType<typeof createTestAccount>>;
let clientId: string;

beforeAll(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  const setup = await createKapija(testConfig({ ...testDb.env, ...SLOW, ISSUER: issuer }));
  citizen = await createTestAccount(setup, { totp: false });
  ({ clientId } = await createTestClient(setup, { redirect_uris: [REDIRECT] }));
  await setup.close();
  server = await spawnKapija({ ...testDb.env, ...SLOW, ISSUER: issuer, WEB_CONCURRENCY: '2' }, { port, timeoutMs: 40_000 });
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await testDb.drop();
});

const exitOf = (p: KapijaProcess) =>
  new Promise<number | null>((resolve) => {
    // 'close', not 'exit': the last lines of output may arrive after the exit.
    p.child.once('close', (code) => resolve(code));
  });

test('the workers start with the memory settings the primary gives them', () => {
  const primary = server.child.pid!;
  const workers = fs.readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  expect(workers).toHaveLength(2);
  for (const pid of workers) {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline).toContain('--max-semi-space-size=4');
    expect(cmdline).toContain('--heap-growing-percent=50');
    expect(fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=2');
  }
});

test('both workers serve the one port, and SIGTERM finishes the request in flight and exits 0', async () => {
  // The primary announces once both workers listen; their own lines may reach the pipe just after.
  for (let i = 0; i < 50 && (server.output().match(/"msg":"worker listening"/g) ?? []).length < 2; i += 1) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(server.output().match(/"msg":"worker listening"/g)).toHaveLength(2);
  for (let i = 0; i < 8; i += 1) {
    const res = await fetch(`${server.url}/.well-known/openid-configuration`, { headers: { connection: 'close' } });
    expect(res.status).toBe(200);
  }
  // Request lines are batched and written at least once a second.
  const workersSeen = () =>
    new Set(
      server
        .output()
        .split('\n')
        .filter((l) => l.includes('"route":"oidc:discovery"'))
        .map((l) => (JSON.parse(l) as { worker: number }).worker),
    );
  let workers = workersSeen();
  for (let i = 0; i < 30 && workers.size < 2; i += 1) {
    await new Promise((r) => setTimeout(r, 100));
    workers = workersSeen();
  }
  expect(workers.size).toBe(2);

  const agent = new Agent();
  const authorize = new URL('/auth', issuer);
  authorize.search = new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', ...PKCE_CHALLENGE }).toString();
  const page = await agent.follow(await agent.request(authorize), (u) => u.href.startsWith(REDIRECT));
  if (page instanceof URL) throw new Error('expected the login page');
  const inFlight = submitForm(agent, page, /\/login$/, { username: citizen.username, password: citizen.password });
  await new Promise((r) => setTimeout(r, 250));
  const exited = exitOf(server);
  server.child.kill('SIGTERM');
  const answered = await inFlight;
  expect(answered.status).toBe(303); // the password was checked and the flow moved on
  // Log lines are written asynchronously: the output is complete once the processes have exited.
  expect(await exited).toBe(0);
  const lines = server.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; time: number; route?: string; worker?: number });
  const login = lines.find((l) => l.route === '/interaction/:uid/login')!;
  if (!login) console.log(lines.map((l) => JSON.stringify(l)).join('\n'));
  const stopped = lines.find((l) => l.msg === 'shutting down' && l.worker === login.worker)!;
  expect(stopped.time).toBeLessThan(login.time); // the request was still running when its worker was told to stop
  expect(server.output()).toMatch(/"msg":"shutting down workers"/);
  expect(server.output().match(/"msg":"shutting down"/g)).toHaveLength(2);
}, 60_000);
