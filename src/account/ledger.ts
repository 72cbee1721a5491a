/**
 * The citizen's ledger: every sign-in, consent given or withdrawn, factor change and release of
 * personal data, appended to the citizen's own hash chain (`account:<id>`) in the audit log, so
 * an entry changed or removed is detectable. Entries hold no personal data beyond the account id
 * (no IP address, no claim values — only claim names), so they stay pseudonymous after deletion.
 */
import type { EventBus } from '../events.js';
import type { AuditLog, AuditEntry } from '../store/audit.js';

export const ledgerChain = (accountId: string) => `account:${accountId}`;

export function recordLedger(events: EventBus, audit: AuditLog): void {
  const append = (accountId: string, action: string, clientId: string | null, details: Record<string, unknown>) =>
    audit.append({ chain: ledgerChain(accountId), actor: accountId, action, subjectAccountId: accountId, clientId, details });

  events.on('signin.success', (e) => append(e.accountId, 'ledger.signin', e.clientId, { acr: e.acr, amr: [...e.amr] }));
  events.on('data.released', (e) => append(e.accountId, 'ledger.data_released', e.clientId, { claims: [...e.claims], channel: e.channel }));
  events.on('consent.given', (e) => append(e.accountId, 'ledger.consent_given', e.clientId, { scopes: [...e.scopes], claims: [...e.claims] }));
  events.on('consent.revoked', (e) => append(e.accountId, 'ledger.consent_revoked', e.clientId, {}));
  events.on('factor.enrolled', (e) => append(e.accountId, 'ledger.factor_added', null, { type: e.type }));
  events.on('factor.removed', (e) => append(e.accountId, 'ledger.factor_removed', null, { type: e.type }));
  events.on('factor.recovery_used', (e) => append(e.accountId, 'ledger.recovery_code_used', null, { remaining: e.remaining }));
  events.on('account.deleted', (e) => append(e.accountId, 'ledger.account_deleted', null, {}));
}

/** A citizen's entries, newest first: their own chain plus administrators' reads of their record. */
export async function ledgerEntries(audit: AuditLog, accountId: string, page: { limit: number; offset: number }): Promise<{ entries: AuditEntry[]; total: number }> {
  const own = { chain: ledgerChain(accountId) };
  const reads = { chain: 'admin', subject: accountId, action: 'admin.citizen.' };
  const [mine, admin, mineCount, adminCount] = await Promise.all([
    audit.list({ ...own, limit: page.offset + page.limit }),
    audit.list({ ...reads, limit: page.offset + page.limit }),
    audit.count(own),
    audit.count(reads),
  ]);
  const merged = [...mine, ...admin].sort((a, b) => b.at.getTime() - a.at.getTime() || b.seq - a.seq);
  return { entries: merged.slice(page.offset, page.offset + page.limit), total: mineCount + adminCount };
}
