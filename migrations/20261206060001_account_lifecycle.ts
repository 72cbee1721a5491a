/**
 * Queued mail remembers the account it is about, so that deleting the account drops its messages
 * (a link in a message sent after the deletion must not exist at all); pending registrations are
 * found by age, for the purge that removes those never verified.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('mail_queue', (t) => {
    t.string('account_id', 36).nullable();
    t.index(['account_id']);
  });
  await db.schema.alterTable('accounts', (t) => {
    t.index(['status', 'created_at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('accounts', (t) => {
    t.dropIndex(['status', 'created_at']);
  });
  await db.schema.alterTable('mail_queue', (t) => {
    t.dropIndex(['account_id']);
    t.dropColumn('account_id');
  });
}
