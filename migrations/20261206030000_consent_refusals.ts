/**
 * Claims a citizen refused to a service, kept per account and service beyond any grant or session:
 * a refused claim is never released to that service until the citizen allows it in the account
 * portal.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('consent_refusals', (t) => {
    t.string('account_id', 36).notNullable();
    t.string('client_id', 255).notNullable();
    t.string('claim', 64).notNullable();
    t.bigInteger('refused_at').notNullable();
    t.primary(['account_id', 'client_id', 'claim']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('consent_refusals');
}
