/**
 * Mandates: one citizen (the representative) may act for another (the principal) towards the
 * services and for the purposes listed, within a validity window, on a legal basis: a voluntary
 * authorisation the principal granted in the account portal, or a guardianship or parental
 * responsibility a registrar recorded from an official decision (its reference kept).
 *
 * `services` is a JSON list of client ids, or null for every service that accepts representation;
 * `purposes` a JSON list. A withdrawn mandate stays, for the record, with who withdrew it and when.
 *
 * `mandate_grants` binds a grant (oidc-provider's, of the representative for one service) to the
 * mandate it was made under: the tokens of that grant act for the principal, each checked again
 * against the mandate when it is used.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('mandates', (t) => {
    t.string('id', 36).primary();
    t.string('principal_id', 36).notNullable().index();
    t.string('representative_id', 36).notNullable().index();
    t.text('services').nullable();
    t.text('purposes').notNullable();
    t.bigInteger('valid_from').notNullable();
    t.bigInteger('valid_until').nullable();
    t.string('basis', 16).notNullable();
    t.string('decision_ref', 200).nullable();
    t.string('created_by', 200).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('withdrawn_at').nullable();
    t.string('withdrawn_by', 200).nullable();
  });
  await db.schema.createTable('mandate_grants', (t) => {
    t.string('grant_id', 128).primary();
    t.string('mandate_id', 36).notNullable().index();
    t.bigInteger('created_at').notNullable();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('mandate_grants');
  await db.schema.dropTableIfExists('mandates');
}
