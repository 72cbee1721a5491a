/**
 * A sign-in under a mandate binds one grant per interaction: `mandate_grants.interaction_uid`
 * (unique; null for a token exchange) lets a represent-step form submitted twice, even at the same
 * moment, bind and record only once.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('mandate_grants', (t) => {
    t.string('interaction_uid', 64).nullable().unique();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('mandate_grants', (t) => {
    t.dropUnique(['interaction_uid']);
    t.dropColumn('interaction_uid');
  });
}
