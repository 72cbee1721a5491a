/**
 * When an administrator removed an account's second factors: until the citizen follows the link
 * mailed then and enrols a new factor, a sign-in with the password alone does not offer enrolment.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('accounts', (t) => {
    t.bigInteger('factors_reset_at').nullable();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('accounts', (t) => {
    t.dropColumn('factors_reset_at');
  });
}
