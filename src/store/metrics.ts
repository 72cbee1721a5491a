/**
 * What the metrics read from the database: the connection pool's state and the length of the retry
 * queues (`mail_queue`, owned by mail-queue.ts; `logout_deliveries`, owned by logout-deliveries.ts).
 */
import type { Db } from './db.js';

export interface PoolConnections {
  used: number;
  free: number;
  /** Acquisitions waiting for a connection. */
  pending: number;
}

export interface StoreMetrics {
  /** The pool's connections now, or undefined when the driver has no pool. */
  pool(): PoolConnections | undefined;
  /** Rows waiting for another attempt in each retry queue. */
  retryQueues(): Promise<{ mail: number; backchannelLogout: number }>;
}

interface PoolLike {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

export function createStoreMetrics(db: Db): StoreMetrics {
  const initial = (db.client as { pool?: PoolLike }).pool;
  const count = async (table: string) => Number(((await db(table).count({ n: '*' }).first()) as { n: number | string } | undefined)?.n ?? 0);
  return {
    pool() {
      const p = (db.client as { pool?: PoolLike }).pool ?? initial;
      return p ? { used: p.numUsed(), free: p.numFree(), pending: p.numPendingAcquires() } : undefined;
    },
    async retryQueues() {
      const [mail, backchannelLogout] = await Promise.all([count('mail_queue'), count('logout_deliveries')]);
      return { mail, backchannelLogout };
    },
  };
}
