/**
 * The stores a contract suite runs against: SQLite always, PostgreSQL when reachable (see
 * global-setup.ts). Each PostgreSQL use gets a database of its own, dropped afterwards.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';

/** Instances sharing a database share its master key too. */
const masterKey = () => randomBytes(32).toString('base64');
import pg from 'pg';
import type { Config } from '../../src/config.js';

export type StoreName = 'sqlite' | 'postgres';

export const pgAvailable = () => process.env.KAPIJA_TEST_PG === '1';

/** The stores to run a contract suite on, for `describe.each`. */
export function stores(): StoreName[] {
  return pgAvailable() ? ['sqlite', 'postgres'] : ['sqlite'];
}

export interface TestDatabase {
  readonly database: Config['database'];
  /** Environment variables pointing a child process at the same store. */
  readonly env: Record<string, string>;
  drop(): Promise<void>;
}

const baseUrl = () => process.env.KAPIJA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh database on the tests' PostgreSQL server, or on the server at `serverUrl` (a private one). */
export async function createPgDatabase(serverUrl = baseUrl()): Promise<TestDatabase> {
  const name = `kapija_t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    database: { client: 'pg', url: url.toString(), poolMax: 10 },
    env: { DATABASE_URL: url.toString(), MASTER_KEY: masterKey() },
    async drop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export function createSqliteDatabase(): TestDatabase {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-test-'));
  return {
    database: { client: 'sqlite', filename: path.join(dir, 'kapija.sqlite') },
    env: { DATA_DIR: dir, MASTER_KEY: masterKey() },
    async drop() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function createTestDatabase(store: StoreName): Promise<TestDatabase> {
  return store === 'postgres' ? createPgDatabase() : Promise.resolve(createSqliteDatabase());
}
