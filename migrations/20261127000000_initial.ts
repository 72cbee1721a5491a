/**
 * Initial schema, one file for SQLite and PostgreSQL. Times are epoch milliseconds in bigint columns,
 * so expiry comparisons are the same integer comparison on both dialects.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('accounts', (t) => {
    t.string('id', 36).primary();
    t.string('username', 64).notNullable().unique();
    t.string('email', 254).nullable();
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.string('given_name', 200).nullable();
    t.string('family_name', 200).nullable();
    t.string('birthdate', 10).nullable();
    t.string('locale', 16).nullable();
    t.string('status', 16).notNullable().defaultTo('active');
    t.text('password_hash').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.index(['email']);
  });

  // Every artefact oidc-provider persists, keyed by (model, id). account_id and grant_id index
  // sessions and grants by citizen, which oidc-provider itself does not keep.
  await db.schema.createTable('oidc_payloads', (t) => {
    t.string('model', 48).notNullable();
    t.string('id', 255).notNullable();
    t.text('payload').notNullable();
    t.string('grant_id', 255).nullable();
    t.string('uid', 255).nullable();
    t.string('user_code', 255).nullable();
    t.string('account_id', 255).nullable();
    t.bigInteger('expires_at').nullable();
    t.bigInteger('consumed_at').nullable();
    t.primary(['model', 'id']);
    t.index(['grant_id']);
    t.index(['uid']);
    t.index(['user_code']);
    t.index(['account_id', 'model']);
    t.index(['expires_at']);
  });

  await db.schema.createTable('clients', (t) => {
    t.string('client_id', 255).primary();
    t.text('metadata').notNullable();
    t.text('secret_enc').nullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });

  // Signing and cookie keys, encrypted with the master key. A signing key is published in JWKS
  // from created_at until expires_at; the newest active one signs.
  await db.schema.createTable('keys', (t) => {
    t.string('id', 64).primary();
    t.string('use', 16).notNullable(); // 'sig' | 'cookie'
    t.string('alg', 16).nullable();
    t.text('material_enc').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('retired_at').nullable();
    t.bigInteger('expires_at').nullable();
    t.index(['use', 'retired_at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('keys');
  await db.schema.dropTableIfExists('clients');
  await db.schema.dropTableIfExists('oidc_payloads');
  await db.schema.dropTableIfExists('accounts');
}
