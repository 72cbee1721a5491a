/**
 * Where and on what a citizen's session was started and last used, so the account portal can list
 * sessions by device and approximate place. Keyed by oidc-provider's session uid.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('session_devices', (t) => {
    t.string('session_uid', 255).primary();
    t.string('account_id', 36).notNullable();
    t.string('ip', 64).nullable();
    t.string('user_agent', 300).nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_seen_at').notNullable();
    t.index(['account_id']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('session_devices');
}
