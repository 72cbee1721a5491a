/**
 * Certificate revocation lists for eID certificate sign-in, one per issuing CA of the trust anchors
 * (the newest verified one). Kept in the database rather than in the data folder so that every
 * instance reads the same list and a refresh on one is in force on all, and so that they survive
 * restarts and redeployments of stateless containers. The DER is kept whole (base64) and verified
 * again when read: a change of trust anchors is honoured at once.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('certificate_crls', (t) => {
    t.string('issuer_fingerprint', 64).primary();
    t.text('issuer').notNullable();
    t.bigInteger('this_update').notNullable();
    t.bigInteger('next_update').notNullable();
    t.string('crl_number', 64).nullable();
    t.integer('revoked_count').notNullable();
    t.text('der').notNullable();
    t.text('source').notNullable();
    t.bigInteger('stored_at').notNullable();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('certificate_crls');
}
