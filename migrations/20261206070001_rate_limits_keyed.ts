/**
 * Throttle counters are keyed by a keyed hash from now on, no longer by the typed account name or
 * e-mail address: the counters kept so far are dropped (the worst that follows is a fresh budget),
 * and expired ones are purged by `expire`.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db('rate_limits').delete();
  await db.schema.alterTable('rate_limits', (t) => {
    t.index(['expire'], 'rate_limits_expire_index');
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('rate_limits', (t) => {
    t.dropIndex(['expire'], 'rate_limits_expire_index');
  });
}
