/**
 * The PID issuer's registry (src/wallet/issuer/): every credential issued to a citizen's wallet,
 * the Token Status List entry it points at, and when and why it was revoked. No personal data is
 * kept here: the credential itself lives only in the wallet.
 *
 * `wallet_status_lists` hands out status-list indices: a list's `next_idx` is taken and incremented
 * in one row update, which PostgreSQL serialises across instances (the row lock is held until the
 * issuing transaction commits), so two credentials never share an index; the index a credential
 * gets is a keyed permutation of that counter (store/wallet-credentials.ts), not the counter itself.
 *
 * `wallet_used_proofs` keeps the keyed hash of every proof of possession accepted, until its nonce
 * could no longer be accepted anyway: a proof is used once.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('wallet_status_lists', (t) => {
    t.string('id', 36).primary();
    t.integer('size').notNullable();
    t.integer('next_idx').notNullable();
    t.bigInteger('created_at').notNullable();
  });
  await db.schema.createTable('wallet_credentials', (t) => {
    t.string('id', 36).primary();
    t.string('account_id', 36).notNullable().index();
    /** The proofing the attributes came from: the account and the time of its verification. */
    t.string('identity_ref', 80).notNullable();
    t.string('level', 16).notNullable();
    t.string('client_id', 200).notNullable();
    /** `portal` (authorization code) or `desk` (pre-authorized code at the registration desk). */
    t.string('channel', 16).notNullable();
    t.string('list_id', 36).notNullable();
    t.integer('list_idx').notNullable();
    t.bigInteger('issued_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('revoked_at').nullable();
    t.string('revoked_reason', 40).nullable();
    t.unique(['list_id', 'list_idx']);
  });
  await db.schema.createTable('wallet_used_proofs', (t) => {
    t.string('proof_hash', 64).primary();
    t.bigInteger('expires_at').notNullable().index();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('wallet_used_proofs');
  await db.schema.dropTableIfExists('wallet_credentials');
  await db.schema.dropTableIfExists('wallet_status_lists');
}
