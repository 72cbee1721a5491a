/**
 * Two Kapija server processes behind one issuer on one PostgreSQL database, as behind a load
 * balancer (A's address is the issuer), with an in-process handle (`store`) on the same database
 * for setting up citizens and services. Both start at once on an empty database, so migrations and
 * the first keys must not race. Call it inside a describe: it registers that suite's beforeAll and
 * afterAll, and the fields of what it returns are set once beforeAll ran (`a` and `b` may be
 * replaced by a test that restarts one).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createKapija, type Kapija } from '../../src/app.js';
import { startKapija, testConfig, type RunningKapija } from './kapija.js';
import { createPgDatabase, type TestDatabase } from './databases.js';
import { freePort, spawnKapija, type KapijaProcess } from './spawn-kapija.js';

export interface TwoProcesses {
  a: KapijaProcess;
  b: KapijaProcess;
  store: Kapija;
  issuer: string;
  /** The environment both run with (ISSUER, MASTER_KEY, DATA_DIR, the database, and the extra). */
  env: Record<string, string>;
  ports: { a: number; b: number };
  testDb: TestDatabase;
}

export function twoProcessesOnPg(name: string, extraEnv: Record<string, string> = {}): TwoProcesses {
  const two = {} as TwoProcesses;
  let dataDir: string | undefined;
  beforeAll(async () => {
    two.testDb = await createPgDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    two.ports = { a: await freePort(), b: await freePort() };
    two.issuer = `http://127.0.0.1:${two.ports.a}`;
    two.env = { ISSUER: two.issuer, MASTER_KEY: randomBytes(32).toString('base64'), DATA_DIR: dataDir, ...two.testDb.env, ...extraEnv };
    [two.a, two.b] = await Promise.all([spawnKapija(two.env, { port: two.ports.a }), spawnKapija(two.env, { port: two.ports.b })]);
    two.store = await createKapija(testConfig(two.env));
  }, 60_000);
  afterAll(async () => {
    await Promise.all([two.a?.stop(), two.b?.stop()]);
    await two.store?.close();
    await two.testDb?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return two;
}

export interface TwoInstances {
  a: RunningKapija;
  b: RunningKapija;
  /** A fetch that sends to B what is addressed to A (the issuer): a wallet or service reaching the other instance. */
  viaB: typeof fetch;
}

/**
 * Two Kapija instances in this process on one PostgreSQL database behind one issuer (A's address;
 * B runs with A's ISSUER), sharing a MASTER_KEY. `env` is read when the suite starts (it may name
 * servers another beforeAll started). Call inside a describe, as twoProcessesOnPg.
 */
export function twoInstancesOnPg(env: () => Record<string, string> = () => ({})): TwoInstances {
  const two = {} as TwoInstances;
  let testDb: TestDatabase | undefined;
  beforeAll(async () => {
    testDb = await createPgDatabase();
    const shared = { MASTER_KEY: randomBytes(32).toString('base64'), ...env() };
    two.a = await startKapija({ testDb, env: shared });
    two.b = await startKapija({ testDb, env: { ...shared, ISSUER: two.a.url } });
    two.viaB = (input, init) => fetch(String(input instanceof Request ? input.url : input).replace(two.a.url, two.b.url), init);
  }, 60_000);
  afterAll(async () => {
    await two.b?.stop();
    await two.a?.stop();
    await testDb?.drop();
  });
  return two;
}
