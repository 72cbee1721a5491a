/**
 * The optional national identifier (JMBG), released only under its own scope with explicit consent.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('accounts', (t) => {
    t.string('jmbg', 13).nullable();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('accounts', (t) => {
    t.dropColumn('jmbg');
  });
}
