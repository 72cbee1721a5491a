/**
 * Administration: who may administer (account_roles), and the append-only, hash-chained audit log
 * (audit_events). The log is one table of chains: 'admin' is the administrative trail, and the
 * citizen's ledger uses one chain per account (`account:<id>`). Each row's hash covers the previous
 * row's hash, so a changed or removed row breaks the chain (`kapija audit verify`).
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('account_roles', (t) => {
    t.string('account_id', 36).notNullable();
    t.string('role', 16).notNullable(); // 'admin' | 'auditor'
    t.bigInteger('granted_at').notNullable();
    t.string('granted_by', 64).notNullable();
    t.primary(['account_id', 'role']);
  });

  await db.schema.createTable('audit_events', (t) => {
    t.string('id', 36).primary();
    t.string('chain', 100).notNullable();
    t.integer('seq').notNullable();
    t.bigInteger('at').notNullable();
    t.string('actor', 64).notNullable();
    t.string('action', 100).notNullable();
    t.string('subject_account_id', 36).nullable();
    t.string('client_id', 255).nullable();
    t.string('ip', 64).nullable();
    t.text('details').notNullable();
    t.string('prev_hash', 64).notNullable();
    t.string('hash', 64).notNullable();
    // A concurrent append to the same chain fails here and retries with the new head.
    t.unique(['chain', 'seq']);
    t.index(['subject_account_id', 'at']);
    t.index(['client_id', 'at']);
    t.index(['at']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('audit_events');
  await db.schema.dropTableIfExists('account_roles');
}
