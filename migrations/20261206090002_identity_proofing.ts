/**
 * Identity proofing: the verified identity of an account (its assurance level, the evidence behind
 * it, the attributes that were checked) apart from the self-asserted profile, and the activation
 * codes a registrar hands over at the counter (or sends by letter).
 *
 * Personal data is sealed (envelope encryption, bound to the row): the verified attributes, the
 * evidence. What must be compared is stored only as a keyed hash: the JMBG (unique among the
 * identities in force: a revoked identity gives its JMBG up), the document number, the activation
 * code.
 *
 * The self-asserted `accounts.jmbg` column is emptied: a national identifier typed by whoever
 * registered is not evidence of anything, and it is no longer released (only a verified identity's
 * is). The column stays for the stores' schema; nothing writes it any more.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('verified_identities', (t) => {
    t.string('account_id', 36).primary();
    t.string('level', 16).notNullable();
    t.string('method', 32).notNullable();
    t.string('verifier', 200).notNullable();
    t.string('office', 200).nullable();
    t.text('evidence').notNullable();
    t.text('attributes').notNullable();
    t.string('jmbg_hash', 64).nullable().unique();
    t.string('document_hash', 64).nullable().index();
    t.bigInteger('verified_at').notNullable();
    t.bigInteger('expires_at').nullable();
    t.bigInteger('revoked_at').nullable();
    t.string('revoked_reason', 200).nullable();
    t.bigInteger('updated_at').notNullable();
  });
  await db.schema.createTable('activation_codes', (t) => {
    t.string('code_hash', 64).primary();
    t.string('account_id', 36).nullable().index();
    t.text('proofing').notNullable();
    t.string('jmbg_hash', 64).notNullable().index();
    t.string('created_by', 200).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('used_at').nullable();
    t.string('used_by', 36).nullable();
  });
  await db('accounts').whereNotNull('jmbg').update({ jmbg: null });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('activation_codes');
  await db.schema.dropTableIfExists('verified_identities');
}
