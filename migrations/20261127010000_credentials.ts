/**
 * Second factors. One row per credential: a TOTP key (sealed secret, last accepted time-step), a
 * WebAuthn authenticator (public key, counter, transports, backup flags) or a recovery code (keyed
 * hash, used_at). `lookup` is what a credential is found by: the WebAuthn credential id, or the
 * recovery code's keyed hash.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('credentials', (t) => {
    t.string('id', 36).primary();
    t.string('account_id', 36).notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.string('type', 16).notNullable(); // 'totp' | 'webauthn' | 'recovery'
    t.string('name', 100).nullable();
    t.string('lookup', 512).nullable();
    t.text('config').notNullable().defaultTo('{}');
    t.text('secret_enc').nullable();
    t.bigInteger('last_step').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_used_at').nullable();
    t.bigInteger('used_at').nullable();
    t.index(['account_id', 'type']);
    t.unique(['type', 'lookup']);
  });
  // The WebAuthn user handle: random, never personal data (W3C WebAuthn §14.6.1).
  await db.schema.alterTable('accounts', (t) => {
    t.string('webauthn_user_id', 64).nullable().unique();
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('accounts', (t) => {
    t.dropColumn('webauthn_user_id');
  });
  await db.schema.dropTableIfExists('credentials');
}
