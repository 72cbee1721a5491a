/**
 * Mail that could not be handed to the relay yet, kept for another attempt. The message (address,
 * subject, body) is sealed with the master key and bound to its row; only its kind is in the clear.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('mail_queue', (t) => {
    t.string('id', 36).primary();
    t.string('kind', 32).notNullable();
    t.text('message').notNullable();
    t.integer('attempts').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('next_at').notNullable();
    t.string('last_error', 100).nullable();
    t.index(['next_at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('mail_queue');
}
