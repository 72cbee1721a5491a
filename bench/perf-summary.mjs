#!/usr/bin/env node
/**
 * Groups the samples of `perf record -g` files of Kapija's processes (BENCH_PERF=1 npm run bench,
 * see bench/run.ts): where the CPU went, by what ran (the kernel, V8's garbage collector and
 * compiler, OpenSSL, each npm package's JavaScript, each of Kapija's modules) and by the nearest of
 * Kapija's own modules on the stack. With the operations measured (written beside each file by the
 * benchmark) it prints milliseconds per operation.
 *   node bench/perf-summary.mjs /tmp/kapija-perf/<workload>.data     one workload in detail
 *   node bench/perf-summary.mjs --table /tmp/kapija-perf/*.data       one Markdown row per workload
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const args = process.argv.slice(2);
const table = args[0] === '--table';
const files = table ? args.slice(1) : args;
if (!files.length) {
  process.stderr.write('usage: node bench/perf-summary.mjs [--table] <perf.data>...\n');
  process.exit(2);
}

/** What one frame is: a JavaScript function's package or Kapija module, or a native category. */
function kindOf(sym, dso) {
  if (dso.includes('kernel')) return 'kernel';
  if (sym.startsWith('JS:') || sym.startsWith('LazyCompile:') || sym.startsWith('Function:')) {
    const url = sym.replace(/^[^ ]* /, '');
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (pkg) return `js ${pkg[1]}`;
    const own = /dist\/src\/(.+?)\.js/.exec(url);
    if (own) return `kapija ${own[1]}`;
    if (/node:|internal\//.test(url)) return 'js node core';
    return 'js other';
  }
  if (/Heap|Scaveng|MarkCompact|Marking|Sweeper|Evacuat|GCTracer|MinorMS|ConcurrentMark|RememberedSet|PagedSpace|Compactor/.test(sym)) return 'v8 gc';
  if (/compiler::|maglev::|Turbofan|interpreter::|Compile|BytecodeAnalysis/.test(sym)) return 'v8 compile';
  if (/libcrypto|libssl/.test(dso) || /^ossl_|^EVP_|^SHA|^sha\d|^HMAC|^aes|^bn_|^BN_|^RSA|^rsaz/.test(sym)) return 'openssl';
  if (dso.includes('argon2')) return 'argon2';
  return 'native';
}

function summarise(file) {
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'pid,period,ip,sym,dso'], { maxBuffer: 1 << 30, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const self = new Map();
  const caller = new Map();
  let total = 0;
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim());
    if (lines.length < 2) continue;
    const period = Number(lines[0].trim().split(/\s+/)[1]) || 1;
    const kinds = lines.slice(1).map((l) => {
      const m = /^\s*[0-9a-f]+\s+(.*)\s+\(([^)]*)\)\s*$/.exec(l);
      return m ? kindOf(m[1].replace(/\+0x[0-9a-f]+$/, ''), m[2]) : 'native';
    });
    total += period;
    // Builtins and runtime functions are charged to the JavaScript that called them.
    const own = kinds[0] === 'native' ? (kinds.find((k) => k.startsWith('js ') || k.startsWith('kapija ')) ?? 'native') : kinds[0];
    add(self, own, period);
    add(caller, kinds.find((k) => k.startsWith('kapija ')) ?? '(no Kapija frame)', period);
  }
  const sidecar = `${file}.json`;
  const meta = fs.existsSync(sidecar) ? JSON.parse(fs.readFileSync(sidecar, 'utf8')) : { workload: file, ops: 0 };
  return { file, total, self, caller, ...meta };
}

/** The columns of the table: what ran, grouped. */
const GROUPS = [
  ['kernel (sockets, scheduling)', (k) => k === 'kernel'],
  ['Node HTTP and streams', (k) => k === 'js node core'],
  ['V8 GC', (k) => k === 'v8 gc'],
  ['V8 compiler', (k) => k === 'v8 compile'],
  ['other native', (k) => k === 'native' || k === 'js other'],
  ['oidc-provider', (k) => k === 'js oidc-provider' || k === 'js jose' || k === 'js @koa/cors'],
  ['pg, knex, tarn', (k) => /^js (pg|pg-protocol|pg-types|knex|tarn|pg-pool|postgres-)/.test(k)],
  ['Koa and its helpers', (k) => /^js (koa|koa-compose|delegates|type-is|mime-types|on-finished|ee-first|vary|parseurl|statuses|http-errors|accepts|negotiator|content-type|cookies|keygrip|fresh|destroy|encodeurl|escape-html|only|koa-body|co-body|raw-body|@koa\/router|path-to-regexp|koa-helmet|helmet)$/.test(k)],
  ['logging (pino)', (k) => /^js (pino|sonic-boom|quick-format-unescaped|fast-redact|pino-std-serializers|thread-stream|on-exit-leak-free|atomic-sleep|safe-stable-stringify)$/.test(k)],
  ['metrics (prom-client)', (k) => /^js (prom-client|tdigest|bintrees)$/.test(k)],
  ['OpenSSL', (k) => k === 'openssl'],
  ['argon2id', (k) => k === 'argon2'],
  ["Kapija's modules", (k) => k.startsWith('kapija ')],
];

const summaries = files.map(summarise);
if (table) {
  const ms = (s, v) => (s.ops ? (v / 1e6 / s.ops).toFixed(3) : ((v / s.total) * 100).toFixed(1) + ' %');
  process.stdout.write(`| workload | ms on CPU per op | ${GROUPS.map(([g]) => g).join(' | ')} | other libraries |\n`);
  process.stdout.write(`| --- | ---: | ${GROUPS.map(() => '---:').join(' | ')} | ---: |\n`);
  for (const s of summaries) {
    const sums = GROUPS.map(() => 0);
    let rest = 0;
    for (const [k, v] of s.self) {
      const i = GROUPS.findIndex(([, test]) => test(k));
      if (i >= 0) sums[i] += v;
      else rest += v;
    }
    process.stdout.write(`| ${s.workload} | ${ms(s, s.total)} | ${sums.map((v) => ms(s, v)).join(' | ')} | ${ms(s, rest)} |\n`);
  }
} else {
  for (const s of summaries) {
    const show = (title, m, n) => {
      process.stdout.write(`\n${title}\n`);
      for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
        const per = s.ops ? `  ${(v / 1e6 / s.ops).toFixed(3).padStart(7)} ms/op` : '';
        process.stdout.write(`${((v / s.total) * 100).toFixed(1).padStart(5)} %${per}  ${k}\n`);
      }
    };
    process.stdout.write(`${s.workload}: ${(s.total / 1e6).toFixed(0)} ms on CPU${s.ops ? ` over ${s.ops} operations (${(s.total / 1e6 / s.ops).toFixed(3)} ms/op)` : ''}\n`);
    show('by what ran (builtins and runtime charged to their JavaScript caller)', s.self, 30);
    show("by the nearest of Kapija's modules on the stack", s.caller, 20);
  }
}
