/**
 * Self-service: single-use links sent by mail (e-mail verification and change, password reset,
 * "this wasn't me") stored only as keyed hashes, and the devices each citizen has signed in from
 * (keyed hashes of the `kapija.device` cookie), for new-device notices.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('account_tokens', (t) => {
    t.string('id', 36).primary();
    t.string('account_id', 36).notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.string('purpose', 32).notNullable();
    t.string('token_hash', 64).notNullable().unique();
    t.text('data').nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('used_at').nullable();
    t.index(['account_id', 'purpose']);
    t.index(['expires_at']);
  });
  await db.schema.createTable('known_devices', (t) => {
    t.string('account_id', 36).notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.string('device_hash', 64).notNullable();
    t.bigInteger('first_seen_at').notNullable();
    t.bigInteger('last_seen_at').notNullable();
    t.primary(['account_id', 'device_hash']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('known_devices');
  await db.schema.dropTableIfExists('account_tokens');
}
