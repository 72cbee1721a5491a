/**
 * `npm test`: runs jest twice. First every suite but test/faults/, in parallel; then test/faults/
 * alone, one file at a time, because those suites load the machine and time recovery (a killed
 * process, a restart of a private PostgreSQL server they start themselves) and would slow or be
 * slowed by any other suite running beside them. Arguments go to both runs (a path filter that matches
 * nothing in one run is not an error). With `--outputFile=F` (and `--json`), F receives both runs'
 * results summed, so CI's closing "N passed, N failed" counts every test.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const node = [process.execPath, '--experimental-vm-modules', '--no-warnings=ExperimentalWarning'];

const args = process.argv.slice(2);
let outputFile;
const passed = [];
for (let i = 0; i < args.length; i += 1) {
  const a = args[i];
  if (a.startsWith('--outputFile=')) outputFile = a.slice('--outputFile='.length);
  else if (a === '--outputFile') outputFile = args[(i += 1)];
  else passed.push(a);
}

// When the machine's PostgreSQL last started, read before any suite: the fault run checks at its end
// that no suite restarted it (test/faults/postgres-restart.test.ts).
const started = spawnSync('psql', [process.env.KAPIJA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', '-Atc', 'select pg_postmaster_start_time()::text'], { encoding: 'utf8' });
if (started.status === 0 && started.stdout.trim()) process.env.KAPIJA_MACHINE_PG_STARTED = started.stdout.trim();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-jest-'));
const runs = [
  { name: 'main', config: 'jest.config.js' },
  { name: 'faults', config: 'jest.faults.config.js' },
];
let status = 0;
const results = [];
for (const run of runs) {
  const out = path.join(tmp, `${run.name}.json`);
  const extra = outputFile ? [`--outputFile=${out}`] : [];
  const r = spawnSync(node[0], [...node.slice(1), jest, '--config', run.config, '--passWithNoTests', ...passed, ...extra], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
  if (outputFile && fs.existsSync(out)) results.push(JSON.parse(fs.readFileSync(out, 'utf8')));
}

if (outputFile) {
  const sum = (key) => results.reduce((n, r) => n + (r[key] ?? 0), 0);
  const merged = {
    ...(results[0] ?? {}),
    success: results.length === runs.length && results.every((r) => r.success),
    testResults: results.flatMap((r) => r.testResults ?? []),
  };
  for (const key of ['numFailedTestSuites', 'numFailedTests', 'numPassedTestSuites', 'numPassedTests', 'numPendingTestSuites', 'numPendingTests', 'numRuntimeErrorTestSuites', 'numTodoTests', 'numTotalTestSuites', 'numTotalTests']) {
    merged[key] = sum(key);
  }
  if (results.length < runs.length) merged.numFailedTests += 1; // a run that wrote nothing failed outright
  fs.writeFileSync(outputFile, JSON.stringify(merged));
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exit(status);
