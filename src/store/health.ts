/**
 * What the readiness probe asks of the database: whether it answers, and whether every known
 * migration has been applied.
 */
import { migrationsCurrent, type Db } from './db.js';

export interface DatabaseHealth {
  /** Resolves when the database answers a trivial query; rejects when it is unreachable. */
  ping(): Promise<void>;
  /** True when every known migration has been applied. */
  migrationsCurrent(): Promise<boolean>;
}

export function createDatabaseHealth(db: Db): DatabaseHealth {
  return {
    async ping() {
      await db.raw('select 1');
    },
    migrationsCurrent: () => migrationsCurrent(db),
  };
}
