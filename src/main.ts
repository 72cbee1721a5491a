/**
 * Process entry: loadConfig() → open the store → migrate → createKapija() → listen.
 *
 * With WEB_CONCURRENCY=N > 1 the primary process migrates and creates the keys once, then forks N
 * workers (node:cluster) that share PORT; it restarts a worker that dies and, on SIGTERM, asks every
 * worker to stop and exits when they have. A worker (or the single process) stops on SIGTERM by
 * refusing new connections, finishing the requests in flight (at most SHUTDOWN_GRACE_MS) and closing
 * its database pool.
 */
import cluster from 'node:cluster';
import { createServer, type RequestListener, type Server } from 'node:http';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createKapija, openHandles } from './app.js';
import { migrate } from './store/db.js';
import { resolveMasterKey } from './security/master-key.js';
import pino from 'pino';
import { createLogger } from './security/redact.js';
import type { Logger } from 'pino';

/** How long in-flight requests may take to finish after SIGTERM before the process gives up. */
const SHUTDOWN_GRACE_MS = 10_000;
/** How often every instance looks for new or activated signing keys. */
const KEY_POLL_MS = 60_000;
/** How often each instance signs the heads of the audit chains that grew. */
const AUDIT_CHECKPOINT_MS = 60_000;
/** How often each instance looks for back-channel logouts and mail due for another attempt. */
const RETRY_POLL_MS = 15_000;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kapija: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const clustered = config.webConcurrency > 1;
  // Asynchronous, batched writes to stdout: lines are gathered until 4 KiB are pending or a second
  // has passed, so a busy instance makes one write per few dozen requests, not one per line. pino
  // flushes what is pending when the process exits; a killed process loses at most that second.
  const root = createLogger(config.logLevel, pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 1000 }));
  const logger = clustered && cluster.isWorker ? root.child({ worker: cluster.worker?.id }) : root;
  if (clustered && cluster.isPrimary) return runPrimary(config, logger);

  if (!cluster.isWorker) announce(config, logger);
  let kapija;
  try {
    kapija = await createKapija(config, { logger, migrate: !cluster.isWorker });
  } catch (err) {
    // What only the server needs (CERT_SIGNIN_URL beside CERT_TRUST_ANCHORS) is checked as it is built.
    if (err instanceof ConfigError) {
      process.stderr.write(`kapija: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const server = createServer(kapija.app.callback());
  server.keepAliveTimeout = 65_000;

  const timers = [
    setInterval(() => {
      kapija.purge().then(
        (n) => logger.debug(n, 'purged expired rows'),
        (err: unknown) => logger.warn({ err }, 'purge failed'),
      );
    }, config.purgeIntervalSeconds * 1000),
    setInterval(() => {
      kapija.checkpointAudit().then(
        (n) => n > 0 && logger.debug({ chains: n }, 'audit checkpoints signed'),
        (err: unknown) => logger.warn({ err }, 'audit checkpoints failed'),
      );
    }, AUDIT_CHECKPOINT_MS),
    setInterval(() => {
      kapija.refreshKeys().then(
        (changed) => changed && logger.info('signing keys changed: engine rebuilt'),
        (err: unknown) => logger.warn({ err }, 'key refresh failed'),
      );
    }, KEY_POLL_MS),
    setInterval(() => {
      kapija.deliverLogouts().then(
        (n) => n.delivered + n.rescheduled + n.abandoned > 0 && logger.debug(n, 'back-channel logout retries'),
        (err: unknown) => logger.warn({ err }, 'back-channel logout retries failed'),
      );
      kapija.deliverMail().then(
        (n) => n.sent + n.rescheduled + n.abandoned > 0 && logger.debug(n, 'mail retries'),
        (err: unknown) => logger.warn({ err }, 'mail retries failed'),
      );
    }, RETRY_POLL_MS),
  ];
  for (const t of timers) t.unref();

  let metricsServer: Server | undefined;
  if (cluster.isWorker) {
    // The primary aggregates every worker's registry for its METRICS_PORT.
    AggregatorRegistry.setRegistries([kapija.metrics.registry]);
  } else if (config.metricsPort) {
    metricsServer = await listen(createServer(kapija.operations), config.metricsPort, config.host);
  }

  await listen(server, config.port, config.host);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ issuer: config.issuer, port, store: config.database.client }, cluster.isWorker ? 'worker listening' : 'kapija listening');
  logger.flush();
  if (!cluster.isWorker) printNextSteps(config);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    for (const t of timers) clearInterval(t);
    const force = setTimeout(() => {
      logger.warn('requests still in flight at the end of the grace period');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    metricsServer?.close();
    server.close(() => {
      clearInterval(idle);
      kapija.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
    // Keep-alive connections become idle once their request is answered: close them as they do.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function announce(config: Config, logger: Logger): void {
  const master = resolveMasterKey(config);
  if (master.source !== 'env') {
    const line = '!'.repeat(78);
    process.stderr.write(
      `${line}\n! DEVELOPMENT MODE: secrets are encrypted with the key file ${master.source}\n` +
        `! ${master.generated ? 'It was just generated. ' : ''}Set MASTER_KEY (32 random bytes, base64) in production.\n${line}\n`,
    );
  }
  if (config.allowPrivateNetworkFetch) {
    logger.warn('ALLOW_PRIVATE_NETWORK_FETCH is on: outgoing requests may reach loopback and private addresses');
  }
}

/** In development: where Kapija answers, and the commands that make it useful (a citizen, a service, an administrator). */
function printNextSteps(config: Config): void {
  if (config.env !== 'development') return;
  process.stderr.write(
    `\nKapija is running: ${config.issuer}/ (start page; the account portal at ${config.issuer}/account, the console at ${config.issuer}/admin)\n` +
      `Next, in another terminal (see the README's Quick start):\n` +
      `  printf '%s\\n' 'a long passphrase' | npm run -s kapija -- user create --username ana.jovanovic --email ana@example.rs --email-verified\n` +
      `  npm run -s kapija -- client create --client-id porez --redirect-uri http://localhost:8080/callback --backchannel-logout-uri http://localhost:8080/backchannel-logout\n` +
      `  printf '%s\\n' 'a passphrase for the console' | npm run -s kapija -- admin create --username admin --create\n\n`,
  );
}

/**
 * Memory settings for the workers, each unless the operator set their own:
 * - a young generation of 4 MiB semi-spaces instead of V8's 16 (short-lived request garbage is
 *   collected sooner, in smaller pauses);
 * - the old generation may grow by half of what survived the last full collection before the next
 *   one (`--heap-growing-percent=50`) instead of V8's adaptive factor of up to four: a worker that
 *   started idle otherwise let ~30 MB of live objects grow to ~120 MB of heap under load before
 *   collecting (`--trace-gc`), which is most of its peak;
 * - two malloc arenas instead of eight per core (native buffers of the thread pool are not spread
 *   over arenas that are never given back).
 * Measured in A/B runs of the benchmark's workloads (b)–(g), worker peak resident memory: 144–157 MB
 * with the first and the last vs 177–226 MB without; 122–170 MB with all three vs 151–195 MB without
 * the heap factor; CPU per request the same within the runs' noise.
 */
const WORKER_V8_FLAGS: readonly (readonly [RegExp, string])[] = [
  [/--max[-_]semi[-_]space[-_]size\b/, '--max-semi-space-size=4'],
  [/--heap[-_]growing[-_]percent\b/, '--heap-growing-percent=50'],
];
function workerMemorySettings(execArgv: readonly string[], env: NodeJS.ProcessEnv): { execArgv: string[]; env: Record<string, string> } {
  const given = [...execArgv, env.NODE_OPTIONS ?? ''].join(' ');
  return {
    execArgv: [...execArgv, ...WORKER_V8_FLAGS.filter(([set]) => !set.test(given)).map(([, flag]) => flag)],
    env: { MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? '2' },
  };
}

/** The cluster's primary: prepares the database once, then runs and supervises the workers. */
async function runPrimary(config: Config, logger: Logger): Promise<void> {
  announce(config, logger);
  const handles = openHandles(config);
  try {
    await migrate(handles.db);
    await handles.keys.ensure();
  } finally {
    await handles.db.destroy();
  }

  let stopping = false;
  let listening = 0;
  const memory = workerMemorySettings(process.execArgv, process.env);
  cluster.setupPrimary({ execArgv: memory.execArgv });
  const fork = () => cluster.fork(memory.env);
  cluster.on('listening', () => {
    listening += 1;
    if (listening === config.webConcurrency) {
      logger.info({ issuer: config.issuer, port: config.port, workers: config.webConcurrency, store: config.database.client }, 'kapija listening');
      logger.flush();
      printNextSteps(config);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error({ worker: worker.id, code, signal }, 'worker died; starting another');
    setTimeout(fork, 1000).unref();
  });
  for (let i = 0; i < config.webConcurrency; i += 1) fork();

  let metricsServer: Server | undefined;
  if (config.metricsPort) {
    const aggregator = new AggregatorRegistry();
    const handler: RequestListener = (req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', workers: Object.keys(cluster.workers ?? {}).length }));
        return;
      }
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      aggregator.clusterMetrics().then(
        (body) => res.writeHead(200, { 'content-type': aggregator.contentType, 'cache-control': 'no-store' }).end(body),
        (err: unknown) => {
          logger.warn({ err }, 'metrics aggregation failed');
          res.writeHead(500).end();
        },
      );
    };
    metricsServer = await listen(createServer(handler), config.metricsPort, config.host);
  }

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down workers');
    metricsServer?.close();
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    let failed = false;
    let left = workers.length;
    if (left === 0) process.exit(0);
    const force = setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS + 2000);
    force.unref();
    for (const w of workers) {
      w.once('exit', (code) => {
        if (code !== 0) failed = true;
        left -= 1;
        if (left === 0) process.exit(failed ? 1 : 0);
      });
      w.process.kill(signal);
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function listen(server: Server, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`kapija: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
