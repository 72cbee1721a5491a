/**
 * Opens the store: PostgreSQL through `pg` when DATABASE_URL is set, otherwise an embedded SQLite
 * file through better-sqlite3. Everything above this file speaks knex and never the dialect.
 */
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { Config } from '../config.js';
import { migrationSource } from '../../migrations/index.js';

export type Db = Knex;

/** knex's own logger; the command line silences it, as its warnings carry stack traces. */
export type StoreLog = Knex.Config['log'];

export function openStore(database: Config['database'], log?: StoreLog): Db {
  if (database.client === 'pg') {
    return knexFactory({
      client: 'pg',
      ...(log ? { log } : {}),
      connection: { connectionString: database.url, application_name: 'kapija' },
      pool: {
        min: 0,
        max: database.poolMax,
        idleTimeoutMillis: 30_000,
        // Kapija's prepared statements (see statement()) are lookups by key whose best plan never
        // depends on the values: plan them once per connection. Left to choose, PostgreSQL went back
        // to planning the token read and the token write on every execution once the tables had
        // grown past the sizes its first plans were costed at (the benchmark's refresh grant after
        // its sign-ins: 1.6–2.1 vs 1.2–1.4 ms of PostgreSQL CPU per request).
        afterCreate(conn: { query(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null, conn: unknown) => void) {
          conn.query('set plan_cache_mode = force_generic_plan', (err) => done(err, conn));
        },
      },
      acquireConnectionTimeout: 5_000,
    });
  }
  if (database.filename !== ':memory:') fs.mkdirSync(path.dirname(database.filename), { recursive: true });
  return knexFactory({
    client: 'better-sqlite3',
    ...(log ? { log } : {}),
    connection: { filename: database.filename },
    useNullAsDefault: true,
    // better-sqlite3 is synchronous: one connection serialises access, as SQLite does anyway.
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: { pragma(s: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
        conn.pragma('journal_mode = WAL');
        conn.pragma('foreign_keys = ON');
        conn.pragma('busy_timeout = 5000');
        conn.pragma('synchronous = NORMAL');
        done(null, conn);
      },
    },
  });
}

const MIGRATIONS_LOCK_ID = 0x6b61706d; // "kapm"

async function latest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

/** Applies pending migrations; returns the names applied. Safe to run from several instances at once. */
export async function migrate(db: Db): Promise<string[]> {
  if (!isPostgres(db)) return latest(db);
  // knex's own migration lock is a table that the first run creates, so instances starting together
  // on an empty database race to create it and all but one fail. A transaction-scoped advisory lock,
  // held on a connection of its own (the pool may have only one), serialises them.
  const lockDb = knexFactory({ ...db.client.config, pool: { min: 0, max: 1 } });
  try {
    return await lockDb.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATIONS_LOCK_ID]);
      return latest(db);
    });
  } finally {
    await lockDb.destroy();
  }
}

/** True when every known migration has been applied. */
export async function migrationsCurrent(db: Db): Promise<boolean> {
  const [, pending] = (await db.migrate.list({ migrationSource })) as [unknown[], unknown[]];
  return pending.length === 0;
}

export function isPostgres(db: Db): boolean {
  return db.client.config.client === 'pg';
}

/** SQL for a JSON object of a row's columns, as text (a row read along with another statement's rows). */
export function jsonObjectOf(db: Db, columns: readonly string[]): string {
  return `${isPostgres(db) ? 'json_build_object' : 'json_object'}(${columns.map((c) => `'${c}', ${c}`).join(', ')})${isPostgres(db) ? '::text' : ''}`;
}

/** A statement of the hot path, bound to one database: give it the values, get the rows. */
export type Statement<R> = (values: readonly unknown[]) => Promise<R[]>;

interface PgConnection {
  query(config: { name: string; text: string; values: readonly unknown[] }): Promise<{ rows: unknown[] }>;
}

/**
 * A statement every protocol request makes (codes, tokens, sessions, grants, accounts). On
 * PostgreSQL it runs as a named prepared statement on one of knex's pooled connections: parsed and
 * planned once per connection, and no query builder in between, which is most of a round trip's
 * CPU on both sides. On SQLite it runs through knex.raw. `sql` uses `?` placeholders and must be
 * valid on both dialects; `name` must be unique per text.
 */
export function statement<R = Record<string, unknown>>(db: Db, name: string, sql: string): Statement<R> {
  if (!isPostgres(db)) {
    return async (values) => {
      const out = (await db.raw(sql, values as readonly Knex.RawBinding[])) as unknown;
      return (Array.isArray(out) ? out : []) as R[];
    };
  }
  let n = 0;
  const text = sql.replace(/\?/g, () => `$${(n += 1)}`);
  const client = db.client as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<unknown> };
  return async (values) => {
    const conn = await client.acquireConnection();
    try {
      return (await conn.query({ name: `kapija_${name}`, text, values })).rows as R[];
    } finally {
      await client.releaseConnection(conn);
    }
  };
}
