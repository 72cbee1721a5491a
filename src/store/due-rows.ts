/**
 * Claiming the due rows of a retry table (`logout_deliveries`, `mail_queue`): any instance may take
 * them. On PostgreSQL a claim moves their due time (`next_at`) forward under `FOR UPDATE SKIP
 * LOCKED`, so two instances never take the same row at once; SQLite has one process.
 */
import { isPostgres, type Db } from './db.js';

/** Takes up to `limit` rows of `table` due at `at` and hides them from other claims until `leaseUntil` (ms). */
export async function claimDueRows<Row>(db: Db, table: 'logout_deliveries' | 'mail_queue', columns: readonly string[], at: number, leaseUntil: number, limit: number): Promise<Row[]> {
  if (isPostgres(db)) {
    const result = await db.raw<{ rows: Row[] }>(
      `update ${table} set next_at = ?
        where id in (select id from ${table} where next_at <= ? order by next_at limit ? for update skip locked)
        returning ${columns.join(', ')}`,
      [leaseUntil, at, limit],
    );
    return result.rows;
  }
  return db.transaction(async (trx) => {
    const rows = (await trx(table).select(...columns).where('next_at', '<=', at).orderBy('next_at').limit(limit)) as (Row & { id: string })[];
    if (rows.length) await trx(table).whereIn('id', rows.map((r) => r.id)).update({ next_at: leaseUntil });
    return rows;
  });
}
