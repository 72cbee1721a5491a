/**
 * The README's Quick start, word for word, on a fresh data folder: the commands are read from the
 * README's fenced blocks (a README change breaks this test), then run as a new operator would run
 * them: `npm start`, the CLI (a citizen, a service, an administrator), the example relying party
 * with the printed client secret. The citizen then signs in through the example, enrolling her
 * first second factor as the pages ask, and signs out; the example logs the verified back-channel
 * logout Kapija sent it. Every process is stopped and none is left running.
 *
 * Only what must differ on a test machine is substituted: Kapija's port and issuer (PORT, ISSUER:
 * localhost:3000 → a free port), the example's port (its PORT: localhost:8080 → a free port) and
 * the data folder (DATA_DIR → a new temporary folder). `npm install` is not run: the dependencies
 * are installed already.
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, formAction, type Page } from '../support/browserless.js';
import { confirmLogout, submitForm } from '../support/sign-in.js';
import { nextTotpCode } from '../support/totp.js';
import { freePort } from '../support/spawn-kapija.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TIMEOUT = 120_000;

/** The text of the README's "## Quick start" section, up to the next level-2 heading. */
function quickStartSection(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Quick start\n');
  if (start < 0) throw new Error('the README has no "## Quick start" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The commands of a shell block: comments dropped, continuation lines joined. */
function commandsOf(block: string): string[] {
  const commands: string[] = [];
  let pending = '';
  for (const raw of block.split('\n')) {
    const line = raw.replace(/\s+#\s.*$/, '').trimEnd();
    if (/^\s*#/.test(line) || (!line.trim() && !pending)) continue;
    const joined = pending ? `${pending} ${line.trim()}` : line.trim();
    if (joined.endsWith('\\')) pending = joined.slice(0, -1).trimEnd();
    else {
      commands.push(joined);
      pending = '';
    }
  }
  return commands;
}

function quickStartBlocks(): string[][] {
  return [...quickStartSection().matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => commandsOf(m[1]!));
}

interface Child {
  readonly child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts a command in its own process group (so that the test can tell whether anything is left of it). */
function start(command: string, args: string[], env: Record<string, string>): Child {
  const child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Process ids still alive in the process group `pgid`. */
function processesOfGroup(pgid: number): number[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,pgid='], { encoding: 'utf8' });
  return ps
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([pid, group]) => group === pgid && pid !== undefined && !Number.isNaN(pid))
    .map(([pid]) => pid!);
}

function commandOf(pid: number): string {
  try {
    return execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).trim();
  } catch {
    return '(ended)';
  }
}

/** Runs one line of the README in a shell, as an operator pastes it. */
function runLine(line: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', line], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms: number, alive?: Child): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (alive && alive.child.exitCode !== null) throw new Error(`${what}: the process exited with ${alive.child.exitCode}:\n${alive.output()}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${alive ? `:\n${alive.output()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(p: Child | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(timer);
}

const started: Child[] = [];
let dataDir: string | undefined;

afterAll(async () => {
  // Only reached with something left when the test failed half-way: leave no process behind.
  for (const p of started) {
    await stop(p);
    for (const pid of processesOfGroup(p.child.pid!)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('follows the README Quick start word for word: start, CLI, example service, first sign-in with TOTP enrolment, back-channel logout received', async () => {
  // 1. What the README says, checked before anything runs.
  const blocks = quickStartBlocks();
  expect(blocks.length).toBeGreaterThanOrEqual(2);
  const [setup, example] = blocks as [string[], string[]];
  expect(setup[0]).toBe('npm install');
  expect(setup[1]).toBe('npm start');
  const cli = setup.slice(2);
  const citizenLine = cli.find((l) => / npm run -s kapija -- user create /.test(l));
  const clientLine = cli.find((l) => /^npm run -s kapija -- client create /.test(l));
  const adminLine = cli.find((l) => / npm run -s kapija -- admin create .*--create\b/.test(l));
  expect(citizenLine).toMatch(/^printf '%s\\n' '[^']+' \| npm run -s kapija -- user create --username \S+ /);
  expect(clientLine).toContain('--client-id porez');
  expect(clientLine).toContain('--redirect-uri http://localhost:8080/callback');
  expect(clientLine).toContain('--backchannel-logout-uri http://localhost:8080/backchannel-logout');
  expect(adminLine).toMatch(/^printf '%s\\n' '[^']+' \| npm run -s kapija -- admin create --username \S+ --create$/);
  expect(cli).toHaveLength(3);
  expect(example).toHaveLength(1);
  const rpLine = example[0]!;
  const rpCommand = /^((?:[A-Z_]+=\S+ )+)(npx tsx examples\/relying-party\/server\.ts)$/.exec(rpLine);
  expect(rpCommand).not.toBeNull();
  const rpAssignments = Object.fromEntries(rpCommand![1]!.trim().split(' ').map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  expect(rpAssignments).toEqual({ ISSUER: 'http://localhost:3000', CLIENT_ID: 'porez', CLIENT_SECRET: '…' });

  const [, password, username] = /^printf '%s\\n' '([^']+)' \| npm run -s kapija -- user create --username (\S+)/.exec(citizenLine!)!;
  const givenName = /--given-name (\S+)/.exec(citizenLine!)?.[1];
  const familyName = /--family-name (\S+)/.exec(citizenLine!)?.[1];

  // 2. What differs on a test machine: the ports and the data folder (a fresh one).
  const kapijaPort = await freePort();
  const rpPort = await freePort();
  const local = (line: string) => line.replaceAll('localhost:3000', `localhost:${kapijaPort}`).replaceAll('localhost:8080', `localhost:${rpPort}`);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-quick-start-'));
  const issuer = `http://localhost:${kapijaPort}`;
  const shellEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), npm_config_update_notifier: 'false' };
  const kapijaEnv = { ...shellEnv, PORT: String(kapijaPort), ISSUER: issuer, DATA_DIR: dataDir };

  // 3. npm start, and wait until Kapija answers.
  const kapija = start('npm', ['start'], kapijaEnv);
  started.push(kapija);
  await waitFor(
    'Kapija answering at its start page',
    async () => (await fetch(`${issuer}/`).catch(() => undefined))?.status === 200,
    60_000,
    kapija,
  );
  await waitFor('the next steps printed', () => kapija.output().includes(`Kapija is running: ${issuer}/`), 10_000, kapija);
  expect(fs.existsSync(path.join(dataDir, 'master.key'))).toBe(true);
  // The start-up's next steps name the README's administrator command.
  expect(kapija.output()).toContain(`  ${adminLine!}\n`);

  // 4. The CLI lines, as they stand.
  const citizen = await runLine(local(citizenLine!), kapijaEnv);
  expect(citizen).toMatchObject({ code: 0, stderr: expect.not.stringMatching(/kapija:|error/i) });
  expect(citizen.stdout).toContain(`user ${username}`);
  const client = await runLine(local(clientLine!), kapijaEnv);
  expect(client).toMatchObject({ code: 0, stderr: expect.not.stringMatching(/kapija:|error/i) });
  const secret = /client secret \(shown once\): (\S+)/.exec(client.stdout)?.[1];
  expect(secret).toBeTruthy();
  const admin = await runLine(local(adminLine!), kapijaEnv);
  expect(admin).toMatchObject({ code: 0, stderr: expect.not.stringMatching(/kapija:|error/i) });
  expect(admin.stdout).toMatch(/is now an admin/);

  // 5. The example service with the printed secret, on its own port (its PORT setting).
  const rpEnv = { ...shellEnv, PORT: String(rpPort), ...rpAssignments, ISSUER: local(rpAssignments.ISSUER!), CLIENT_SECRET: secret! };
  const [rpProgram, ...rpArgs] = rpCommand![2]!.split(' ');
  const rp = start(rpProgram!, rpArgs, rpEnv);
  started.push(rp);
  const rpUrl = `http://localhost:${rpPort}`;
  await waitFor('the example printing its address', () => rp.output().includes(`relying party on ${rpUrl}/ `), 60_000, rp);

  // 6. The citizen opens the example and signs in: password, first TOTP key, recovery codes, consent.
  const agent = new Agent();
  const welcome = await agent.request(`${rpUrl}/`);
  expect(welcome.body).toContain('href="/login"');
  const login = await agent.request(`${rpUrl}/login`);
  expect(login.status).toBe(302);
  const isCallback = (u: URL) => u.href.startsWith(`${rpUrl}/callback`);
  let step: Page | URL = await agent.follow(login, isCallback);
  const seen: string[] = [];
  for (let i = 0; i < 8 && !(step instanceof URL); i += 1) {
    const page: Page = step;
    let next: Page;
    if (formAction(page.body, /\/interaction\/[^/]+\/login$/)) {
      seen.push('password');
      next = await submitForm(agent, page, /\/login$/, { username: username!, password: password! });
    } else if (formAction(page.body, /\/totp\/enrol$/)) {
      seen.push('enrol');
      const key = /data-totp-secret>([^<]+)</.exec(page.body)?.[1]?.replace(/\s/g, '');
      expect(key).toBeTruthy();
      next = await submitForm(agent, page, /\/totp\/enrol$/, { code: await nextTotpCode(key!) });
    } else if (/data-recovery-codes/.test(page.body) && formAction(page.body, /\/continue$/)) {
      seen.push('recovery codes');
      next = await submitForm(agent, page, /\/continue$/, {});
    } else if (formAction(page.body, /\/confirm$/)) {
      seen.push('consent');
      next = await submitForm(agent, page, /\/confirm$/, {});
    } else {
      throw new Error(`unexpected page ${page.url.pathname} (${page.status}) after ${seen.join(', ')}:\n${page.body.slice(0, 2000)}`);
    }
    expect(next.status).toBeLessThan(400);
    step = await agent.follow(next, isCallback);
  }
  expect(seen).toEqual(['password', 'enrol', 'recovery codes', 'consent']);
  expect(step).toBeInstanceOf(URL);
  const back = await agent.request(step as URL);
  expect(back.status).toBe(302);
  const signedIn = await agent.request(new URL(back.headers.get('location')!, rpUrl));
  expect(signedIn.status).toBe(200);
  expect(signedIn.body).toContain('Signed in as');
  expect(signedIn.body).toContain(`${givenName} ${familyName}`);

  // 7. "Sign out" at the example: Kapija ends the session and notifies the example by back channel.
  expect(rp.output()).not.toMatch(/back-channel logout received/);
  const out = await agent.request(`${rpUrl}/logout`, { method: 'POST' });
  expect(out.status).toBe(302);
  const endSession = new URL(out.headers.get('location')!);
  expect(endSession.origin).toBe(issuer);
  const { done } = await confirmLogout(agent, endSession);
  const home = await agent.follow(done, (u) => u.href === `${rpUrl}/`);
  expect(home).toEqual(new URL(`${rpUrl}/`));
  await waitFor('the example logging the back-channel logout', () => /back-channel logout received for sid \S+: token verified/.test(rp.output()), 10_000);
  expect((await agent.request(`${rpUrl}/`)).body).toContain('not signed in');
  // Nothing personal in the example's log: neither the citizen's names, e-mail nor subject.
  expect(rp.output()).not.toContain(username!);
  expect(rp.output()).not.toContain(givenName!);

  // 8. Stop both as an operator does: Kapija by SIGTERM to `npm start` (a service manager's stop:
  // npm execs node, so the signal reaches Kapija); the example by Ctrl-C in its terminal, a SIGINT
  // to its foreground process group (npx passes SIGTERM on to a shell only, which leaves tsx behind).
  await stop(kapija);
  process.kill(-rp.child.pid!, 'SIGINT');
  await stop(rp);
  expect(kapija.child.signalCode ?? kapija.child.exitCode).not.toBe('SIGKILL');
  const left = () => [...processesOfGroup(kapija.child.pid!), ...processesOfGroup(rp.child.pid!)];
  await waitFor('every process of npm start and of the example ending', () => left().length === 0, 10_000).catch(() => undefined);
  expect(left().map((pid) => `${pid} ${commandOf(pid)}`)).toEqual([]);
  expect(kapija.output()).toContain('shutting down');
}, TIMEOUT);
