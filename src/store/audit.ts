/**
 * The audit log: append-only, one hash chain per `chain` ('admin' for the administrative trail,
 * `account:<id>` for a citizen's ledger). Each entry's hash is SHA-256 over a canonical JSON of the
 * entry including the previous entry's hash, so changing or removing a row is found by {@link
 * AuditLog.verify}. Appends take no lock: the head is read and seq+1 inserted; the unique
 * (chain, seq) key makes a concurrent append fail, and it is retried on the new head.
 *
 * A row rewritten with the rest of its chain recomputed, or the newest entries removed, cannot be
 * seen from the chain alone: signed checkpoints of the heads (audit/checkpoints.ts) and anchors kept
 * elsewhere (`kapija audit anchor`) show them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { Knex } from 'knex';
import { isPostgres, statement, type Db } from './db.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEntryInput {
  chain: string;
  /** An account id, 'system' or 'cli'. */
  actor: string;
  /** Dotted, e.g. `admin.client.created`. */
  action: string;
  subjectAccountId?: string | null;
  clientId?: string | null;
  ip?: string | null;
  /** Never secrets. */
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  readonly id: string;
  readonly chain: string;
  readonly seq: number;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly subjectAccountId: string | null;
  readonly clientId: string | null;
  readonly ip: string | null;
  readonly details: Record<string, unknown>;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditFilter {
  chain?: string;
  actor?: string;
  /** Exact action, or a prefix ending in `.` (e.g. `admin.client.`). */
  action?: string;
  subject?: string;
  client?: string;
  from?: Date;
  to?: Date;
  limit?: number;
  offset?: number;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly checked: number;
  readonly firstBad?: { chain: string; seq: number; reason: 'changed' | 'missing' };
}

export interface AuditLog {
  /**
   * Appends an entry; with `trx`, inside the caller's transaction, so the entry commits with the
   * change it records or not at all (no retry there: run the whole transaction in withChainRetry).
   */
  append(entry: AuditEntryInput, trx?: Knex.Transaction): Promise<AuditEntry>;
  /**
   * Appends an entry together with the other entries appended at about the same moment, across
   * chains, in one statement on PostgreSQL ({@link createGroupedAppend}); resolves once the entry
   * is committed, and rejects if its group failed. On SQLite it is {@link AuditLog.append}.
   */
  appendGrouped(entry: AuditEntryInput): Promise<AuditEntry>;
  /** Newest first. */
  list(filter?: AuditFilter): Promise<AuditEntry[]>;
  count(filter?: AuditFilter): Promise<number>;
  /** Checks one chain, or every chain. */
  verify(chain?: string): Promise<AuditVerification>;
  /**
   * Up to `limit` entries of one chain after `afterSeq`, in sequence order (optionally only those
   * about `subject` whose action starts with `action`): reads a chain of any length page by page.
   */
  after(filter: { chain: string; subject?: string; action?: string }, afterSeq: number, limit: number): Promise<AuditEntry[]>;
}

interface Row {
  id: string;
  chain: string;
  seq: number | string;
  at: number | string;
  actor: string;
  action: string;
  subject_account_id: string | null;
  client_id: string | null;
  ip: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

/** JSON with object keys sorted at every level, so equal values always hash alike. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

function hashOf(r: Omit<Row, 'hash'>): string {
  const material = canonicalJson({
    id: r.id,
    chain: r.chain,
    seq: Number(r.seq),
    at: Number(r.at),
    actor: r.actor,
    action: r.action,
    subject_account_id: r.subject_account_id,
    client_id: r.client_id,
    ip: r.ip,
    details: JSON.parse(r.details) as unknown,
    prev_hash: r.prev_hash,
  });
  return createHash('sha256').update(material).digest('hex');
}

/** The hash an entry must have: SHA-256 over the canonical JSON of every other field. */
export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return hashOf({
    id: e.id,
    chain: e.chain,
    seq: e.seq,
    at: e.at.getTime(),
    actor: e.actor,
    action: e.action,
    subject_account_id: e.subjectAccountId,
    client_id: e.clientId,
    ip: e.ip,
    details: JSON.stringify(e.details),
    prev_hash: e.prevHash,
  });
}

function toEntry(r: Row): AuditEntry {
  return {
    id: r.id,
    chain: r.chain,
    seq: Number(r.seq),
    at: new Date(Number(r.at)),
    actor: r.actor,
    action: r.action,
    subjectAccountId: r.subject_account_id,
    clientId: r.client_id,
    ip: r.ip,
    details: JSON.parse(r.details) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

const isUniqueViolation = (err: unknown) => {
  const code = (err as { code?: string }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
};

/**
 * PostgreSQL appends in one round trip: the head is read and the row inserted by one statement, and
 * the hash is computed there (sha256) over exactly the canonical JSON {@link hashOf} builds — only
 * `prev_hash` and `seq` come from the head, and they sit together in the canonical key order.
 * `gate` is a condition the insert also needs when it is part of a larger statement; 14 values
 * ({@link pgAppendValues}).
 */
export const pgAppendSql = (gate: string) => `
insert into audit_events (id, chain, seq, at, actor, action, subject_account_id, client_id, ip, details, prev_hash, hash)
select ?, ?, h.seq + 1, ?, ?, ?, ?, ?, ?, ?, h.hash,
       encode(sha256(convert_to(? || h.hash || ? || (h.seq + 1)::text || ?, 'UTF8')), 'hex')
from (select coalesce(max(seq), 0) as seq,
             coalesce((select hash from audit_events where chain = ? order by seq desc limit 1), '${GENESIS_HASH}') as hash
      from audit_events where chain = ?) h
${gate ? `where ${gate}` : ''}
returning seq, prev_hash, hash`;
const APPEND_PG = pgAppendSql('');

/** The canonical material of an entry split around its `prev_hash` and `seq` values. */
function materialAround(r: Omit<Row, 'hash' | 'seq' | 'prev_hash'>): [string, string, string] {
  const head = canonicalJson({
    action: r.action,
    actor: r.actor,
    at: Number(r.at),
    chain: r.chain,
    client_id: r.client_id,
    details: JSON.parse(r.details) as unknown,
    id: r.id,
    ip: r.ip,
  });
  return [`${head.slice(0, -1)},"prev_hash":"`, '","seq":', `,"subject_account_id":${canonicalJson(r.subject_account_id)}}`];
}

/** An entry's own fields; the chain fields (seq, prev_hash, hash) come from the head. */
type EntryFields = Omit<Row, 'seq' | 'prev_hash' | 'hash'>;

/** An address is stored only when it is one (IPv4 or IPv6, at most 45 characters); else null. */
export const storedIp = (ip: string | null | undefined): string | null => (ip && ip.length <= 45 && isIP(ip) ? ip : null);

function entryFields(input: AuditEntryInput, at: number): EntryFields {
  return {
    id: randomUUID(),
    chain: input.chain,
    at,
    actor: input.actor,
    action: input.action,
    subject_account_id: input.subjectAccountId ?? null,
    client_id: input.clientId ?? null,
    ip: storedIp(input.ip),
    details: JSON.stringify(input.details ?? {}),
  };
}

/** The values of {@link pgAppendSql}, in order. */
function valuesOf(f: EntryFields): unknown[] {
  const [before, between, after] = materialAround(f);
  return [f.id, f.chain, f.at, f.actor, f.action, f.subject_account_id, f.client_id, f.ip, f.details, before, between, after, f.chain, f.chain];
}

/** SQLite (one connection, or inside the caller's transaction): read the head, insert after it. */
async function sqliteAppend(q: Knex | Knex.Transaction, fields: EntryFields): Promise<AuditEntry> {
  const head = (await q('audit_events').select('seq', 'hash').where('chain', fields.chain).orderBy('seq', 'desc').first()) as Pick<Row, 'seq' | 'hash'> | undefined;
  const partial: Omit<Row, 'hash'> = { ...fields, seq: head ? Number(head.seq) + 1 : 1, prev_hash: head?.hash ?? GENESIS_HASH };
  const row: Row = { ...partial, hash: hashOf(partial) };
  await q('audit_events').insert(row);
  return toEntry(row);
}

/**
 * Runs an append (alone, or as part of a larger write) again on the new head when a concurrent
 * append to the same chain took its place (the unique (chain, seq) key), up to ten times.
 */
export async function withChainRetry<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await write();
    } catch (err) {
      if (!isUniqueViolation(err) || attempt >= 9) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 10 * (attempt + 1)));
    }
  }
}

/**
 * An append as part of another statement on PostgreSQL: `pgAppendSql(gate)` inserts the entry when
 * `gate` holds (e.g. `exists (select 1 from consumed)`) and returns its chain fields, with
 * `pgAppendValues(input, at)` as its parameters. Run it inside {@link withChainRetry}, with values
 * made anew for each attempt.
 */
export function pgAppendValues(input: AuditEntryInput, at: number): unknown[] {
  return valuesOf(entryFields(input, at));
}

/** An append inside the caller's SQLite transaction. */
export function sqliteAppendIn(trx: Knex.Transaction, input: AuditEntryInput, at: number): Promise<AuditEntry> {
  return sqliteAppend(trx, entryFields(input, at));
}

/**
 * Many chains' appends in one statement (PostgreSQL): each entry is inserted after its own chain's
 * head, with the hash computed there as in {@link pgAppendSql}. An entry's hash covers the one
 * before it in its chain, so a group holds at most one entry per chain. One value: a JSON array of
 * the entries' fields and canonical material ({@link materialAround}).
 */
const APPEND_GROUP_PG = `
with input as (
  select * from json_to_recordset(?::json) as x(id text, chain text, at bigint, actor text, action text, subject_account_id text,
                                                client_id text, ip text, details text, m1 text, m2 text, m3 text)
), headed as (
  select i.*, coalesce(h.seq, 0) + 1 as seq, coalesce(h.hash, '${GENESIS_HASH}') as prev_hash
  from input i left join lateral (select e.seq, e.hash from audit_events e where e.chain = i.chain order by e.seq desc limit 1) h on true
)
insert into audit_events (id, chain, seq, at, actor, action, subject_account_id, client_id, ip, details, prev_hash, hash)
select id, chain, seq, at, actor, action, subject_account_id, client_id, ip, details, prev_hash,
       encode(sha256(convert_to(m1 || prev_hash || m2 || seq::text || m3, 'UTF8')), 'hex')
from headed
returning id, seq, prev_hash, hash`;

/** Entries of many chains at most per grouped statement. */
export const MAX_GROUP = 256;

/**
 * Group commit of ledger appends on PostgreSQL. An entry waits for the group being written (at most
 * one is in flight); when it lands, everything that queued meanwhile goes in the next group, as one
 * statement. Under light load a group is the one entry and costs what a single append does; under
 * load the round trips per entry fall with the group's size. Every waiting request learns its own
 * group's outcome: it resolves after the group's commit, and if the statement fails (after the
 * retries on a concurrent append to one of its chains) every entry of the group is rejected and
 * none of them is stored, so the caller withholds what the entry would have recorded.
 */
export function createGroupedAppend(db: Db, now: () => number = Date.now): (input: AuditEntryInput) => Promise<AuditEntry> {
  const run = statement<Pick<Row, 'id' | 'seq' | 'prev_hash' | 'hash'>>(db, 'audit_append_group', APPEND_GROUP_PG);
  type Waiting = { fields: EntryFields; resolve(e: AuditEntry): void; reject(err: unknown): void };
  let queue: Waiting[] = [];
  let writing = false;

  const write = async (group: Waiting[]) => {
    const input = group.map(({ fields }) => {
      const [m1, m2, m3] = materialAround(fields);
      return { ...fields, m1, m2, m3 };
    });
    const rows = await run([JSON.stringify(input)]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return group.map(({ fields }) => {
      const row = byId.get(fields.id);
      if (!row) throw new Error('a grouped audit append returned no row for an entry');
      return toEntry({ ...fields, seq: row.seq, prev_hash: row.prev_hash, hash: row.hash });
    });
  };

  const next = async () => {
    if (writing || queue.length === 0) return;
    writing = true;
    // One entry per chain and group, in arrival order; the rest wait for the next group.
    const group: Waiting[] = [];
    const later: Waiting[] = [];
    const chains = new Set<string>();
    for (const w of queue) {
      if (group.length < MAX_GROUP && !chains.has(w.fields.chain)) {
        chains.add(w.fields.chain);
        group.push(w);
      } else later.push(w);
    }
    queue = later;
    try {
      const entries = await withChainRetry(() => write(group));
      group.forEach((w, i) => w.resolve(entries[i]!));
    } catch (err) {
      for (const w of group) w.reject(err);
    } finally {
      writing = false;
      void next();
    }
  };

  return (input) =>
    new Promise<AuditEntry>((resolve, reject) => {
      queue.push({ fields: entryFields(input, now()), resolve, reject });
      // Entries queued in the same turn of the event loop start one group together.
      if (!writing && queue.length === 1) setImmediate(() => void next());
    });
}

export function createAuditLog(db: Db, now: () => number = Date.now): AuditLog {
  const pg = isPostgres(db);
  const grouped = pg ? createGroupedAppend(db, now) : undefined;
  const appendPg = pg ? statement<Pick<Row, 'seq' | 'prev_hash' | 'hash'>>(db, 'audit_append', APPEND_PG) : undefined;
  const filtered = (f: AuditFilter) => {
    const q = db('audit_events');
    if (f.chain) q.where('chain', f.chain);
    if (f.actor) q.where('actor', f.actor);
    if (f.action) {
      if (f.action.endsWith('.')) q.where('action', 'like', `${f.action.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      else q.where('action', f.action);
    }
    if (f.subject) q.where('subject_account_id', f.subject);
    if (f.client) q.where('client_id', f.client);
    if (f.from) q.where('at', '>=', f.from.getTime());
    if (f.to) q.where('at', '<=', f.to.getTime());
    return q;
  };

  const log: AuditLog = {
    async append(input, trx) {
      if (trx) {
        const fields = entryFields(input, now());
        if (!pg) return sqliteAppend(trx, fields);
        const { rows } = (await trx.raw(APPEND_PG, valuesOf(fields) as Knex.RawBinding[])) as { rows: Pick<Row, 'seq' | 'prev_hash' | 'hash'>[] };
        return toEntry({ ...fields, ...rows[0]! });
      }
      return withChainRetry(async () => {
        const fields = entryFields(input, now());
        if (!appendPg) return sqliteAppend(db, fields);
        const rows = await appendPg(valuesOf(fields));
        return toEntry({ ...fields, ...rows[0]! });
      });
    },

    appendGrouped(input) {
      return grouped ? grouped(input) : log.append(input);
    },

    async list(f = {}) {
      const rows = (await filtered(f)
        .orderBy([{ column: 'at', order: 'desc' }, { column: 'seq', order: 'desc' }])
        .limit(Math.min(f.limit ?? 100, 10_000))
        .offset(f.offset ?? 0)) as Row[];
      return rows.map(toEntry);
    },

    async count(f = {}) {
      const row = (await filtered(f).count<{ n: number | string }[]>({ n: '*' }).first()) as { n: number | string } | undefined;
      return Number(row?.n ?? 0);
    },

    async after(f, afterSeq, limit) {
      const q = db('audit_events').where('chain', f.chain).andWhere('seq', '>', afterSeq).orderBy('seq').limit(limit);
      if (f.subject !== undefined) q.where('subject_account_id', f.subject);
      if (f.action !== undefined) q.where('action', 'like', `${f.action.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      return ((await q) as Row[]).map(toEntry);
    },

    async verify(chain) {
      const q = db('audit_events').orderBy([{ column: 'chain' }, { column: 'seq' }]);
      if (chain) q.where('chain', chain);
      const rows = (await q) as Row[];
      let current: string | undefined;
      let expectedSeq = 1;
      let prev = GENESIS_HASH;
      let checked = 0;
      for (const r of rows) {
        if (r.chain !== current) {
          current = r.chain;
          expectedSeq = 1;
          prev = GENESIS_HASH;
        }
        const seq = Number(r.seq);
        // A gap in the sequence, or a row that does not follow its predecessor, means removal.
        if (seq !== expectedSeq) return { ok: false, checked, firstBad: { chain: r.chain, seq: expectedSeq, reason: 'missing' } };
        const { hash, ...rest } = r;
        if (hashOf(rest) !== hash) return { ok: false, checked, firstBad: { chain: r.chain, seq, reason: 'changed' } };
        if (r.prev_hash !== prev) return { ok: false, checked, firstBad: { chain: r.chain, seq, reason: 'missing' } };
        prev = hash;
        expectedSeq += 1;
        checked += 1;
      }
      return { ok: true, checked };
    },
  };
  return log;
}

/** The chain of the audit log that is a citizen's ledger (what /account/activity shows). */
export const ledgerChain = (accountId: string) => `account:${accountId}`;
