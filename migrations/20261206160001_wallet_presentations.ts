/**
 * Wallet sign-in (OpenID for Verifiable Presentations): one row per presentation request Kapija made
 * as a verifier, shared by every instance so the wallet may fetch the request, post its answer and the
 * browser redeem it at different instances.
 *
 * `id` names the request in its request_uri and response_uri; `interaction_uid` is the sign-in that
 * made it (the browser holding that interaction's cookie is the only one that can redeem it);
 * `flow` is `same_device` (redeemed with the one-time response_code returned to the wallet, kept
 * only as a keyed hash) or `cross_device` (redeemed by the polling browser). `response_key` is the
 * per-request ECDH-ES private key the answer is encrypted to, sealed with the master key. `status`
 * moves pending → fetched → answered | refused → redeemed, each step a compare-and-set; `outcome` is
 * the sealed result (account and amr, or the refusal's reason).
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('wallet_presentations', (t) => {
    t.string('id', 64).primary();
    t.string('interaction_uid', 64).notNullable().index();
    t.string('flow', 16).notNullable();
    t.string('status', 16).notNullable();
    t.string('client_id', 300).notNullable();
    t.string('nonce', 64).notNullable();
    t.string('state', 64).notNullable();
    t.text('response_key').notNullable();
    t.string('response_code_hash', 64).nullable().unique();
    t.text('outcome').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable().index();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('wallet_presentations');
}
