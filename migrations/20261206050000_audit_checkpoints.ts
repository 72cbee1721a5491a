/**
 * Signed checkpoints of the audit log's chain heads (`audit_checkpoints`) and the Ed25519 key that
 * signs them (`audit_keys`, the private key sealed with the master key). A row rewritten with its
 * chain recomputed no longer matches a checkpoint signed before, and nobody without the master key
 * can sign a new one.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('audit_keys', (t) => {
    // RFC 7638 thumbprint of the public key.
    t.string('kid', 64).primary();
    t.text('material_enc').notNullable();
    t.bigInteger('created_at').notNullable();
  });
  await db.schema.createTable('audit_checkpoints', (t) => {
    t.string('chain', 100).notNullable();
    t.integer('seq').notNullable();
    t.string('hash', 64).notNullable();
    t.bigInteger('signed_at').notNullable();
    t.string('kid', 64).notNullable();
    t.string('sig', 128).notNullable();
    t.primary(['chain', 'seq']);
    t.index(['signed_at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('audit_checkpoints');
  await db.schema.dropTableIfExists('audit_keys');
}
