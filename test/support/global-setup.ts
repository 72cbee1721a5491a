/**
 * Probes the optional test services once: PostgreSQL (KAPIJA_TEST_PG_URL, default the local server)
 * and Chromium. Suites that need them run when they are reachable and skip with a printed reason
 * otherwise; under CI=true a missing service fails the run instead.
 */
import fs from 'node:fs';
import pg from 'pg';

export default async function globalSetup(): Promise<void> {
  const url = process.env.KAPIJA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  process.env.KAPIJA_TEST_PG_URL = url;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    process.env.KAPIJA_TEST_PG = '1';
  } catch (err) {
    const reason = `PostgreSQL not reachable at ${url.replace(/:[^:@/]*@/, ':***@')}: ${(err as Error).message}`;
    if (process.env.CI === 'true') throw new Error(`${reason} (required under CI=true)`, { cause: err });
    process.env.KAPIJA_TEST_PG = '0';
    process.stdout.write(`\n[skip] PostgreSQL suites skipped: ${reason}\n`);
  } finally {
    await client.end().catch(() => undefined);
  }

  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  process.env.CHROMIUM_PATH = chromium;
  if (fs.existsSync(chromium)) {
    process.env.KAPIJA_TEST_BROWSER = '1';
  } else {
    const reason = `Chromium not found at ${chromium} (apt-get install chromium)`;
    if (process.env.CI === 'true') throw new Error(`${reason} (required under CI=true)`);
    process.env.KAPIJA_TEST_BROWSER = '0';
    process.stdout.write(`\n[skip] browser suites skipped: ${reason}\n`);
  }
}
