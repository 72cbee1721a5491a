/**
 * Process entry: loadConfig() → open the store → migrate → createKapija() → listen.
 */
import { createServer } from 'node:http';
import { ConfigError, loadConfig } from './config.js';
import { createKapija } from './app.js';
import { resolveMasterKey } from './security/master-key.js';
import { createLogger } from './security/redact.js';

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
  const logger = createLogger(config.logLevel);
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

  const kapija = await createKapija(config, { logger });
  const server = createServer(kapija.app.callback());
  server.keepAliveTimeout = 65_000;

  const purge = setInterval(() => {
    kapija.purge().then(
      (n) => logger.debug(n, 'purged expired rows'),
      (err: unknown) => logger.warn({ err }, 'purge failed'),
    );
  }, config.purgeIntervalSeconds * 1000);
  purge.unref();

  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ issuer: config.issuer, port, store: config.database.client }, 'kapija listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    clearInterval(purge);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    server.close(() => {
      kapija.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`kapija: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
