/**
 * A citizen's ledger as downloaded (`/account/activity/export`), and its offline check. The file
 * holds every field each entry's hash covers, the signed checkpoints of the citizen's chain, and a
 * closing signature over the digest of all its entries, made with the audit key published at
 * {@link AUDIT_KEYS_PATH}. scripts/verify-ledger.mjs does the same check without Kapija installed.
 */
import { createHash } from 'node:crypto';
import { canonicalJson, entryHash, GENESIS_HASH } from '../store/audit.js';
import { verifyAuditSignature } from '../security/audit-signature.js';
import { headStatement, type SignedHead } from './checkpoints.js';

export const LEDGER_FORMAT = 'kapija-ledger/1';

/** One entry as written to the file: the hashed fields under their stored names, and two for people. */
export interface LedgerFileEntry {
  id: string;
  chain: string;
  seq: number;
  /** Milliseconds since 1970, as hashed. */
  at: number;
  actor: string;
  action: string;
  subject_account_id: string | null;
  client_id: string | null;
  /** Left out of administrators' entries (their address is theirs); those are covered by the closing signature. */
  ip?: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
  time: string;
  service_name: string | null;
}

/** The bytes the closing signature covers. */
export const downloadStatement = (s: { account: string; count: number; digest: string; signed_at: number }) =>
  ({ typ: LEDGER_FORMAT, account: s.account, count: s.count, digest: s.digest, signed_at: s.signed_at });

/** The running digest over the entries, in file order. */
export function entryDigest() {
  const h = createHash('sha256');
  return { add: (e: LedgerFileEntry) => h.update(`${canonicalJson(e)}\n`, 'utf8'), hex: () => h.digest('hex') };
}

export interface LedgerFileCheck {
  readonly ok: boolean;
  readonly entries: number;
  /** Which keys were trusted: those given, or (with a warning to compare them) the file's own. */
  readonly keyIds: string[];
  readonly problem?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a downloaded ledger against `keys` (the published JWKS), or against the keys it carries
 * when none are given.
 */
export function verifyLedgerFile(doc: unknown, keys?: unknown): LedgerFileCheck {
  const fail = (problem: string, entries = 0, keyIds: string[] = []): LedgerFileCheck => ({ ok: false, entries, keyIds, problem });
  if (!isObject(doc) || doc.format !== LEDGER_FORMAT || typeof doc.account !== 'string' || !Array.isArray(doc.entries)) return fail(`not a ${LEDGER_FORMAT} file`);
  const source = keys === undefined ? doc.keys : isObject(keys) ? (Array.isArray(keys.keys) ? keys.keys : [keys]) : keys;
  const trusted = (Array.isArray(source) ? source : []).filter(isObject) as { kid?: unknown; kty?: unknown; crv?: unknown; x?: unknown }[];
  const keyIds = trusted.map((k) => String(k.kid));
  const verifies = (kid: unknown, data: Buffer, sig: unknown) => trusted.some((k) => k.kid === kid && verifyAuditSignature(k, data, String(sig)));

  const own = `account:${doc.account}`;
  const digest = entryDigest();
  const byPosition = new Map<string, string>();
  let expected = 1;
  let prev = GENESIS_HASH;
  let n = 0;
  for (const raw of doc.entries as unknown[]) {
    n += 1;
    if (!isObject(raw) || typeof raw.chain !== 'string' || !Number.isSafeInteger(raw.seq) || !Number.isSafeInteger(raw.at) || !isObject(raw.details)) {
      return fail(`entry ${n} is malformed`, n, keyIds);
    }
    const e = raw as unknown as LedgerFileEntry;
    digest.add(e);
    byPosition.set(`${e.chain}\u0000${e.seq}`, e.hash);
    if (e.chain !== own) {
      if (e.subject_account_id !== doc.account) return fail(`entry ${n} (${e.chain} ${e.seq}) is not about this account`, n, keyIds);
      continue;
    }
    const hash = entryHash({
      id: e.id,
      chain: e.chain,
      seq: e.seq,
      at: new Date(e.at),
      actor: e.actor,
      action: e.action,
      subjectAccountId: e.subject_account_id,
      clientId: e.client_id,
      ip: e.ip ?? null,
      details: e.details,
      prevHash: e.prev_hash,
    });
    if (hash !== e.hash) return fail(`entry ${n} (seq ${e.seq}) does not match its hash`, n, keyIds);
    if (e.seq !== expected) return fail(`seq ${expected} of the ledger is missing`, n, keyIds);
    if (e.prev_hash !== prev) return fail(`entry ${n} (seq ${e.seq}) does not follow the one before`, n, keyIds);
    prev = e.hash;
    expected += 1;
  }

  for (const c of Array.isArray(doc.checkpoints) ? (doc.checkpoints as SignedHead[]) : []) {
    if (!isObject(c) || !verifies(c.kid, headStatement(c), c.sig)) return fail(`checkpoint of seq ${String(c?.seq)} has no valid signature`, n, keyIds);
    const at = byPosition.get(`${c.chain}\u0000${c.seq}`);
    if (c.chain !== own || at === undefined) return fail(`checkpoint of seq ${c.seq} has no entry in the file`, n, keyIds);
    if (at !== c.hash) return fail(`entry seq ${c.seq} differs from its signed checkpoint`, n, keyIds);
  }

  const s = doc.signature;
  if (!isObject(s) || !Number.isSafeInteger(s.signed_at)) return fail('the file has no closing signature', n, keyIds);
  const statement = downloadStatement({ account: doc.account, count: n, digest: digest.hex(), signed_at: s.signed_at as number });
  if (!verifies(s.kid, Buffer.from(canonicalJson(statement), 'utf8'), s.sig)) return fail('the closing signature does not match the entries (changed, added or removed)', n, keyIds);
  return { ok: true, entries: n, keyIds };
}
