/**
 * The citizen's ledger: every sign-in, consent given or withdrawn, factor change and release of
 * personal data, appended to the citizen's own hash chain (`account:<id>`) in the audit log, so
 * an entry changed or removed is detectable. Entries hold no personal data beyond the account id
 * (no IP address, no claim values — only claim names), so they stay pseudonymous after deletion.
 */
import type { EventBus, KapijaEvents } from '../events.js';
import type { AuditLog, AuditEntry, AuditEntryInput } from '../store/audit.js';
import type { AuditCheckpoints } from '../audit/checkpoints.js';
import { downloadStatement, entryDigest, LEDGER_FORMAT, type LedgerFileEntry } from '../audit/ledger-file.js';
import { canonicalJson } from '../store/audit.js';

/** A citizen's ledger: their chain of the audit log (store/audit.ts). */
import { ledgerChain } from '../store/audit.js';

export { ledgerChain };

export const ledgerEntry = (accountId: string, action: string, clientId: string | null, details: Record<string, unknown>): AuditEntryInput => ({
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

const DOWNLOAD_PAGE = 1000;

/**
 * Every entry of a citizen's download, read page by page (no cap): their own chain in sequence
 * order, then administrators' reads of their record. Administrators' addresses are left out.
 */
async function* downloadEntries(audit: AuditLog, accountId: string, serviceName: (clientId: string) => Promise<string | null>): AsyncGenerator<LedgerFileEntry> {
  const sources = [{ chain: ledgerChain(accountId) }, { chain: 'admin', subject: accountId, action: 'admin.citizen.' }];
  for (const filter of sources) {
    for (let after = 0; ; ) {
      const page = await audit.after(filter, after, DOWNLOAD_PAGE);
      for (const e of page) {
        const own = filter.chain !== 'admin';
        yield {
          id: e.id,
          chain: e.chain,
          seq: e.seq,
          at: e.at.getTime(),
          actor: e.actor,
          action: e.action,
          subject_account_id: e.subjectAccountId,
          client_id: e.clientId,
          ...(own ? { ip: e.ip } : {}),
          details: e.details,
          prev_hash: e.prevHash,
          hash: e.hash,
          time: e.at.toISOString(),
          service_name: e.clientId ? await serviceName(e.clientId) : null,
        };
      }
      if (page.length < DOWNLOAD_PAGE) break;
      after = page[page.length - 1]!.seq;
    }
  }
}

export interface LedgerDownloadDeps {
  audit: AuditLog;
  checkpoints: AuditCheckpoints;
  serviceName: (clientId: string) => Promise<string | null>;
  /** Where the audit keys are published. */
  keysUrl: string;
  now?: () => number;
}

/**
 * The citizen's ledger as JSON, written as it is read: the head of their chain is signed first, and
 * a closing signature covers the digest of every entry written ({@link verifyLedgerFile}).
 */
export async function* ledgerJson(d: LedgerDownloadDeps, accountId: string): AsyncGenerator<string> {
  const now = d.now ?? Date.now;
  const chain = ledgerChain(accountId);
  await d.checkpoints.signHeads(chain);
  const { keys } = await d.checkpoints.jwks();
  yield `{"format":${JSON.stringify(LEDGER_FORMAT)},"account":${JSON.stringify(accountId)},"generated_at":${JSON.stringify(new Date(now()).toISOString())},`;
  yield `"keys_url":${JSON.stringify(d.keysUrl)},"keys":${JSON.stringify(keys)},"entries":[`;
  const digest = entryDigest();
  let count = 0;
  for await (const e of downloadEntries(d.audit, accountId, d.serviceName)) {
    digest.add(e);
    yield `${count === 0 ? '' : ','}\n${JSON.stringify(e)}`;
    count += 1;
  }
  const checkpoints = await d.checkpoints.checkpointsOf(chain);
  const statement = downloadStatement({ account: accountId, count, digest: digest.hex(), signed_at: now() });
  const { kid, sig } = await d.checkpoints.signStatement(statement);
  yield `\n],"checkpoints":${JSON.stringify(checkpoints)},"signature":${JSON.stringify({ count, digest: statement.digest, signed_at: statement.signed_at, kid, sig })}}\n`;
}

export const LEDGER_CSV_HEADER = 'time,id,chain,seq,at,actor,action,subject_account_id,client_id,service_name,ip,details,prev_hash,hash';

/** The same entries as CSV rows (every hashed field; `details` as canonical JSON), for spreadsheets. */
export async function* ledgerCsvRows(d: Pick<LedgerDownloadDeps, 'audit' | 'serviceName'>, accountId: string): AsyncGenerator<unknown[]> {
  for await (const e of downloadEntries(d.audit, accountId, d.serviceName)) {
    yield [e.time, e.id, e.chain, e.seq, e.at, e.actor, e.action, e.subject_account_id, e.client_id, e.service_name, e.ip, canonicalJson(e.details), e.prev_hash, e.hash];
  }
}
