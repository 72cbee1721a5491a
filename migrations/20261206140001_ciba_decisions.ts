/**
 * The citizen's answer to a backchannel authentication request (OpenID Connect CIBA): one row per
 * request, keyed by a keyed hash of its auth_req_id (never the id itself), written before the engine
 * is told. The primary key makes the answer single: of an approval and a denial racing at two
 * instances, or a form sent twice, one insert lands and the others are refused.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('ciba_decisions', (t) => {
    t.string('request_hash', 128).primary();
    t.string('account_id', 36).notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.string('client_id', 128).notNullable();
    t.string('decision', 16).notNullable();
    t.bigInteger('decided_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['expires_at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('ciba_decisions');
}
