/**
 * Daily counters for the open-data feed (`open_data_counts`) and the daily count of new accounts.
 * Rows hold a day, a dataset name, a dimension (service, level or factor type) and a count.
 */
import type { Db } from './db.js';
import { isPostgres } from './db.js';

export interface DailyCount {
  readonly day: string;
  readonly dimension: string;
  readonly count: number;
}

export interface OpenDataRepository {
  /** Adds one to the counter of (day, dataset, dimension). */
  increment(day: string, dataset: string, dimension: string): Promise<void>;
  /** Adds one to each counter named, in one statement (distinct counters). */
  incrementEach(counters: ReadonlyArray<{ day: string; dataset: string; dimension: string }>): Promise<void>;
  /** Counters of one dataset for days in [from, to], oldest first. */
  list(dataset: string, from: string, to: string): Promise<DailyCount[]>;
  /** Accounts created per UTC day in [from, to]. */
  registrations(from: string, to: string): Promise<DailyCount[]>;
}

const dayStart = (day: string) => Date.parse(`${day}T00:00:00Z`);

export function createOpenDataRepository(db: Db): OpenDataRepository {
  return {
    async increment(day, dataset, dimension) {
      await this.incrementEach([{ day, dataset, dimension }]);
    },
    async incrementEach(counters) {
      const distinct = new Map(counters.map((c) => [JSON.stringify([c.day, c.dataset, c.dimension]), c]));
      if (!distinct.size) return;
      await db('open_data_counts')
        .insert([...distinct.values()].map(({ day, dataset, dimension }) => ({ day, dataset, dimension, count: 1 })))
        .onConflict(['day', 'dataset', 'dimension'])
        .merge({ count: db.raw('?? + 1', ['open_data_counts.count']) });
    },
    async list(dataset, from, to) {
      const rows = (await db('open_data_counts')
        .select('day', 'dimension', 'count')
        .where({ dataset })
        .andWhere('day', '>=', from)
        .andWhere('day', '<=', to)
        .orderBy([{ column: 'day' }, { column: 'dimension' }])) as { day: string; dimension: string; count: number | string }[];
      return rows.map((r) => ({ day: r.day, dimension: r.dimension, count: Number(r.count) }));
    },
    async registrations(from, to) {
      const day = isPostgres(db)
        ? db.raw(`to_char(to_timestamp(created_at / 1000.0) at time zone 'UTC', 'YYYY-MM-DD')`)
        : db.raw(`strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')`);
      const rows = (await db('accounts')
        .select({ day }, db.raw('count(*) as count'))
        .where('created_at', '>=', dayStart(from))
        .andWhere('created_at', '<', dayStart(to) + 24 * 3600 * 1000)
        .groupBy(1)
        .orderBy(1)) as { day: string; count: number | string }[];
      return rows.map((r) => ({ day: r.day, dimension: 'all', count: Number(r.count) }));
    },
  };
}
