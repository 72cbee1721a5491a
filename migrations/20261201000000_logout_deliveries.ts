/**
 * Back-channel logout deliveries that failed and are to be retried: which service, which session
 * (its `sid`) and whose (the account the logout token's `sub` is derived from), how many attempts,
 * and when the next one is due. A row lives until the service confirms or Kapija gives up.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('logout_deliveries', (t) => {
    t.string('id', 36).primary();
    t.string('client_id', 255).notNullable();
    t.string('account_id', 36).notNullable();
    t.string('sid', 255).notNullable();
    t.integer('attempts').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('next_at').notNullable();
    t.string('last_error', 300).nullable();
    t.index(['next_at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('logout_deliveries');
}
