/**
 * The hand-off of an ID-card sign-in between Kapija's main host and the host that asks for the
 * client certificate (cookies are per host, so the sign-in's own cookies are not there). Two kinds
 * of single-use rows, both short-lived and found only by a keyed hash of their random token:
 * - `ticket`: made on the main host for one interaction, used once on the certificate host;
 * - `return`: made on the certificate host with the outcome (the validated identity or the refusal,
 *   sealed), used once back on the main host by the browser that holds the interaction's cookies.
 * In the database, not in memory, so that any instance may serve any leg.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('certificate_handoffs', (t) => {
    t.string('token_hash', 128).primary();
    t.string('kind', 16).notNullable();
    t.string('interaction_uid', 128).notNullable();
    t.text('outcome').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable().index();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('certificate_handoffs');
}
