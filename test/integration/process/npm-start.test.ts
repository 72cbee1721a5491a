/**
 * `npm start` as an operator runs it: SIGTERM to npm's process id stops Kapija too, leaving no
 * process of the tree behind (npm forwards the signal to the script's shell, which must hand it on).
 */
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnKapija } from '../../support/spawn-kapija.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Every descendant of `pid` (ps, as /proc is Linux-only). */
function descendants(pid: number): number[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of rows) {
      if (parent !== p) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('SIGTERM to npm start stops Kapija: no process of the tree survives', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-npm-start-'));
  const port = await freePort();
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), DATA_DIR: dataDir, PORT: String(port), ISSUER: `http://localhost:${port}`, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  npm.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  let tree: number[] = [];
  try {
    const deadline = Date.now() + 30_000;
    while (!/"msg":"kapija listening"/.test(out)) {
      if (npm.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not become ready:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    tree = descendants(npm.pid!);
    expect(tree.length).toBeGreaterThan(0);
    npm.kill('SIGTERM');
    await exited;
    const until = Date.now() + 12_000;
    while (tree.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(tree.filter(alive)).toEqual([]);
    expect(out).toMatch(/"msg":"shutting down"/);
  } finally {
    for (const pid of [npm.pid!, ...tree].filter(alive)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);

test('in development the start prints the URL and the next three commands: a citizen, a service, an administrator', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-dev-lines-'));
  const kapija = await spawnKapija({ NODE_ENV: 'development', DATA_DIR: dataDir, ISSUER: 'http://localhost:3999', MASTER_KEY: '' });
  try {
    // The lines go to stderr just after the ready line on stdout: the two pipes may be read in either order.
    const until = Date.now() + 5_000;
    while (!kapija.output().includes('admin create') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const out = kapija.output();
    expect(out).toContain('Kapija is running: http://localhost:3999/');
    expect(out).toMatch(/npm run -s kapija -- user create --username \S+/);
    expect(out).toMatch(/npm run -s kapija -- client create --client-id \S+ --redirect-uri http:\/\/localhost:8080\/callback/);
    expect(out).toMatch(/npm run -s kapija -- admin create --username \S+ --create/);
  } finally {
    await kapija.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  // Not in test or production runs.
  const quiet = await spawnKapija({ DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-dev-lines-')), ISSUER: 'http://localhost:3998', MASTER_KEY: Buffer.alloc(32, 1).toString('base64') });
  await quiet.stop();
  expect(quiet.output()).not.toContain('Kapija is running');
}, 60_000);
