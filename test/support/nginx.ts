/**
 * A real nginx (Debian's package) as the TLS-terminating proxy of certificate sign-in, started by a
 * test on a free loopback port with everything (configuration, pid, logs, temporary files) in a
 * temporary folder. Its server block is the README's documented one, docs/nginx/kapija-eid.conf,
 * with the placeholders filled in.
 *
 * Suites using it run when nginx is installed and skip with a printed reason otherwise; under
 * CI=true a missing nginx fails them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NGINX_TEMPLATE = fileURLToPath(new URL('../../docs/nginx/kapija-eid.conf', import.meta.url));

/** The nginx binary: NGINX_PATH, else Debian's /usr/sbin/nginx; undefined when neither exists. */
export function nginxBinary(): string | undefined {
  const candidates = [process.env.NGINX_PATH, '/usr/sbin/nginx', '/usr/bin/nginx'].filter((p): p is string => Boolean(p));
  return candidates.find((p) => fs.existsSync(p));
}

/** `describe` when nginx is installed (or CI=true, where its absence must fail), else `describe.skip` with the reason printed. */
export const describeNginx: jest.Describe = (() => {
  if (nginxBinary() || process.env.CI === 'true') return describe;
  const skip = ((name: string, fn: () => void) => {
    console.log(`[skip] "${name}": nginx not installed (apt-get install nginx, or set NGINX_PATH)`);
    return describe.skip(name, fn);
  }) as jest.Describe;
  return Object.assign(skip, describe);
})();

/** Fills in the documented server block; every placeholder must be given. */
export function renderNginxTemplate(values: Record<string, string>): string {
  const text = fs.readFileSync(NGINX_TEMPLATE, 'utf8').replace(/\{\{(\w+)\}\}/g, (m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`nginx template: no value for ${m}`);
    return v;
  });
  return text;
}

/** A free loopback port (for a server whose address must be known before it starts). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, errorLog: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8').trim() : ''}`);
    const open = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > until) throw new Error(`nginx did not listen on ${port}: ${fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8').trim() : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningNginx {
  readonly port: number;
  readonly dir: string;
  readonly config: string;
  stop(): Promise<void>;
}

/**
 * Starts nginx in the foreground, one process (`master_process off`: it runs as the test's user and
 * reads and writes only its temporary folder), proxying to `upstream`.
 */
export async function startNginx(opts: { upstream: string; proxySecret: string; certFile: string; keyFile: string; port?: number }): Promise<RunningNginx> {
  const binary = nginxBinary();
  if (!binary) throw new Error('nginx is not installed (apt-get install nginx, or set NGINX_PATH); required under CI=true');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-nginx-'));
  const port = opts.port ?? (await freePort());
  const errorLog = path.join(dir, 'error.log');
  const server = renderNginxTemplate({
    listen: `127.0.0.1:${port}`,
    server_name: 'localhost',
    ssl_certificate: opts.certFile,
    ssl_certificate_key: opts.keyFile,
    proxy_secret: opts.proxySecret,
    upstream: opts.upstream,
  });
  const t = (name: string) => path.join(dir, name);
  const config = `daemon off;
master_process off;
pid ${t('nginx.pid')};
error_log ${errorLog} warn;
events { worker_connections 64; }
http {
    access_log ${t('access.log')};
    client_body_temp_path ${t('client_body')};
    proxy_temp_path ${t('proxy')};
    fastcgi_temp_path ${t('fastcgi')};
    uwsgi_temp_path ${t('uwsgi')};
    scgi_temp_path ${t('scgi')};
${server}
}
`;
  const configFile = t('nginx.conf');
  fs.writeFileSync(configFile, config);
  const child = spawn(binary, ['-p', dir, '-c', configFile, '-e', errorLog], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, child, errorLog);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message} ${stderr.trim()}`, { cause: err });
  }
  return {
    port,
    dir,
    config,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
