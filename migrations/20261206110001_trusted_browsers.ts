/**
 * Browsers a citizen asked Kapija to remember after a two-factor sign-in: per account, only a keyed
 * hash of the browser's random cookie (never the cookie), what the browser said it was, and until
 * when it is remembered. Within that time the second factor is skipped for services that need no
 * more than substantial (interactions/trusted-browser.ts).
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('trusted_browsers', (t) => {
    t.string('id', 36).primary();
    t.string('account_id', 36).notNullable().references('id').inTable('accounts').onDelete('CASCADE');
    t.string('token_hash', 128).notNullable().unique();
    t.string('user_agent', 300).nullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_used_at').nullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['account_id']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('trusted_browsers');
}
