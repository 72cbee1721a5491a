/**
 * Serves Kapija's few static assets from memory, by an explicit allow-list (no directory serving).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';

interface Asset { body: Buffer; type: string; etag: string }

function findProjectFile(rel: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    const candidate = path.join(dir, rel);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`${rel} not found`);
}

export function staticAssets() {
  const require = createRequire(import.meta.url);
  const files: Record<string, { file: string; type: string }> = {
    '/static/kapija.css': { file: findProjectFile('static/kapija.css'), type: 'text/css; charset=utf-8' },
    '/static/webauthn.js': { file: findProjectFile('static/webauthn.js'), type: 'text/javascript; charset=utf-8' },
    '/static/copy.js': { file: findProjectFile('static/copy.js'), type: 'text/javascript; charset=utf-8' },
    '/static/wallet.js': { file: findProjectFile('static/wallet.js'), type: 'text/javascript; charset=utf-8' },
    '/static/simplewebauthn-browser.js': {
      file: path.join(path.dirname(require.resolve('@simplewebauthn/browser')), '..', 'dist', 'bundle', 'index.umd.min.js'),
      type: 'text/javascript; charset=utf-8',
    },
  };
  const assets = new Map<string, Asset>();
  for (const [route, { file, type }] of Object.entries(files)) {
    if (!fs.existsSync(file)) continue;
    const body = fs.readFileSync(file);
    assets.set(route, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return async (ctx: Context, next: Next): Promise<void> => {
    const asset = ctx.method === 'GET' || ctx.method === 'HEAD' ? assets.get(ctx.path) : undefined;
    if (!asset) return next();
    ctx.set('cache-control', 'public, max-age=3600');
    ctx.set('etag', asset.etag);
    if (ctx.get('if-none-match') === asset.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = asset.type;
    ctx.body = asset.body;
  };
}
