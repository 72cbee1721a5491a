/**
 * Daily counters behind the open-data feed: one row per day, dataset and dimension (a service's
 * client id, an assurance level, a factor type), never anything about a person.
 */
import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('open_data_counts', (t) => {
    t.string('day', 10).notNullable(); // YYYY-MM-DD, UTC
    t.string('dataset', 64).notNullable();
    t.string('dimension', 255).notNullable();
    t.bigInteger('count').notNullable().defaultTo(0);
    t.primary(['day', 'dataset', 'dimension']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('open_data_counts');
}
