/**
 * The audit log as administrators read, export and verify it. A read is itself recorded; a read of
 * a citizen's ledger (or of entries about them) shows in that ledger.
 */
import { csvCell } from '../security/csv.js';
import type { AuditEntry, AuditFilter } from '../store/audit.js';
import { iso, type Actor, type AdminContext } from './context.js';

export function createAuditAdmin(c: AdminContext) {
  const { audit } = c.deps;
  const { record } = c;
  return {
    /** The read is recorded; a read of a citizen's ledger (or entries about them) shows in that ledger. */
    async list(actor: Actor, filter: AuditFilter): Promise<AuditEntry[]> {
      const entries = await audit.list(filter);
      const ledgerOf = filter.chain?.startsWith('account:') ? filter.chain.slice('account:'.length) : undefined;
      const subject = (ledgerOf ?? filter.subject)?.slice(0, 36);
      await record(actor, subject ? 'admin.citizen.ledger_read' : 'admin.audit.read', {
        subjectAccountId: subject ?? null,
        details: { count: entries.length, filter: { ...filter, from: iso(filter.from), to: iso(filter.to) } },
      });
      return entries;
    },
    count(filter: AuditFilter): Promise<number> {
      return audit.count(filter);
    },
    async export(actor: Actor, filter: AuditFilter, format: 'csv' | 'json') {
      const entries = await audit.list({ ...filter, limit: filter.limit ?? 10_000 });
      await record(actor, 'admin.audit.exported', { details: { format, count: entries.length, filter: { ...filter, from: iso(filter.from), to: iso(filter.to) } } });
      return entries;
    },
    verify: (chain?: string) => audit.verify(chain),
  };
}

export function auditEntryJson(e: AuditEntry) {
  return {
      id: e.id,
      chain: e.chain,
      seq: e.seq,
      at: e.at.toISOString(),
      actor: e.actor,
      action: e.action,
      subject_account_id: e.subjectAccountId,
      client_id: e.clientId,
      ip: e.ip,
      details: e.details,
      prev_hash: e.prevHash,
      hash: e.hash,
  };
}

const CSV_COLUMNS = ['at', 'chain', 'seq', 'actor', 'action', 'subject_account_id', 'client_id', 'ip', 'details', 'prev_hash', 'hash'] as const;

/** RFC 4180 CSV; a cell that a spreadsheet would run as a formula is prefixed with a quote. */
export function auditCsv(entries: AuditEntry[]): string {
  const rows = entries.map((e) => {
    const j = auditEntryJson(e);
    return CSV_COLUMNS.map((c) => csvCell(j[c])).join(',');
  });
  return `${[CSV_COLUMNS.join(','), ...rows].join('\r\n')}\r\n`;
}
