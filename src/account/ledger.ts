/**
 * The citizen's ledger: every sign-in, consent given or withdrawn, factor change and release of
 * personal data, appended to the citizen's own hash chain (`account:<id>`) in the audit log, so
 * an entry changed or removed is detectable. Entries hold no personal data beyond the account id
 * (no IP address, no claim values — only claim names), so they stay pseudonymous after deletion.
 */
import type { EventBus, KapijaEvents } from '../events.js';
import type { AuditLog, AuditEntry, AuditEntryInput } from '../store/audit.js';

export const ledgerChain = (accountId: string) => `account:${accountId}`;

const ledgerEntry = (accountId: string, action: string, clientId: string | null, details: Record<string, unknown>): AuditEntryInput => ({
  chain: ledgerChain(accountId),
  actor: accountId,
  action,
  subjectAccountId: accountId,
  clientId,
  details,
});

/** The ledger entry of a release of personal data: the service, the claims' names, the channel. */
export const releaseEntry = (e: Omit<KapijaEvents['data.released'], 'recorded'>): AuditEntryInput =>
  ledgerEntry(e.accountId, 'ledger.data_released', e.clientId, { claims: [...e.claims], channel: e.channel });

export function recordLedger(events: EventBus, audit: AuditLog): void {
  const append = (accountId: string, action: string, clientId: string | null, details: Record<string, unknown>) =>
    audit.append(ledgerEntry(accountId, action, clientId, details));

  events.on('signin.success', (e) => append(e.accountId, 'ledger.signin', e.clientId, { acr: e.acr, amr: [...e.amr] }));
  // A token response's release was written with its tokens (oidc/adapter.ts settle).
  events.on('data.released', (e) => (e.recorded ? undefined : audit.append(releaseEntry(e))));
  events.on('consent.given', (e) =>
    append(e.accountId, 'ledger.consent_given', e.clientId, { scopes: [...e.scopes], claims: [...e.claims], ...(e.refused?.length ? { refused: [...e.refused] } : {}) }));
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
