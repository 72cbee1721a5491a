/**
 * Signed checkpoints of the audit log. Appends stay unsigned (no signature on the hot path); every
 * instance signs, once a minute, the head of each chain that grew since the last checkpoints, and
 * `kapija audit anchor` and a ledger download sign the heads they export. A checkpoint is an Ed25519
 * signature over (chain, seq, hash, signed_at) with a key sealed under the master key, so a row later
 * rewritten with the chain after it recomputed no longer matches the checkpoint, and the newest rows
 * removed fall short of it. An anchor kept outside the database covers the checkpoints being removed.
 */
import type { AuditLog, AuditVerification } from '../store/audit.js';
import { canonicalJson } from '../store/audit.js';
import type { AuditCheckpoint, AuditCheckpointRepository, AuditHead } from '../store/audit-checkpoints.js';
import type { SecretBox } from '../security/crypto.js';
import { generateAuditKey, openAuditKey, verifyAuditSignature, type AuditPublicJwk, type AuditSigningKey } from '../security/audit-signature.js';

export const ANCHOR_FORMAT = 'kapija-audit-anchor/1';
export const HEAD_STATEMENT = 'kapija-audit-head/1';
/** Where the public keys are published, under the issuer. */
export const AUDIT_KEYS_PATH = '/.well-known/kapija-audit-keys';

/** A signed head as exported (anchors, ledger downloads). */
export interface SignedHead {
  readonly chain: string;
  readonly seq: number;
  readonly hash: string;
  readonly signed_at: number;
  readonly kid: string;
  readonly sig: string;
}

export interface AuditAnchor {
  readonly format: typeof ANCHOR_FORMAT;
  readonly created_at: string;
  readonly keys: AuditPublicJwk[];
  readonly heads: SignedHead[];
}

export type AuditProblem =
  | { readonly chain: string; readonly seq: number; readonly reason: 'changed' | 'missing'; readonly source: 'chain' }
  | { readonly chain: string; readonly seq: number; readonly reason: 'rewritten' | 'truncated' | 'bad_signature'; readonly source: 'checkpoint' | 'anchor'; readonly signedAt: number; readonly last?: number };

export interface AuditCheck {
  readonly ok: boolean;
  readonly checked: number;
  readonly checkpoints: number;
  readonly anchored: number;
  readonly firstBad?: AuditProblem;
}

export interface AuditCheckpoints {
  /** The public keys that verify checkpoints and downloads, oldest first. */
  jwks(): Promise<{ keys: AuditPublicJwk[] }>;
  /** Signs the head of every chain that grew since the last checkpoints; resolves to how many. */
  checkpointChanged(): Promise<number>;
  /** Signs and stores the current head of every chain, or of `chain`. */
  signHeads(chain?: string): Promise<SignedHead[]>;
  /** The stored checkpoints of one chain, in sequence order. */
  checkpointsOf(chain: string): Promise<SignedHead[]>;
  /** Signs the current heads and returns them as an anchor to keep outside the database. */
  anchor(chain?: string): Promise<AuditAnchor>;
  /** Signs the canonical JSON of `statement`. */
  signStatement(statement: Record<string, unknown>): Promise<{ kid: string; sig: string }>;
  /**
   * Checks the chains, then every stored checkpoint, then the heads of `anchor` (already parsed with
   * {@link parseAnchor}) against the rows the log holds now.
   */
  verify(opts?: { chain?: string; anchor?: AuditAnchor }): Promise<AuditCheck>;
}

/** The bytes a head's signature covers. */
export const headStatement = (h: { chain: string; seq: number; hash: string; signed_at: number }) =>
  Buffer.from(canonicalJson({ typ: HEAD_STATEMENT, chain: h.chain, seq: h.seq, hash: h.hash, signed_at: h.signed_at }), 'utf8');

const exported = (c: AuditCheckpoint): SignedHead => ({ chain: c.chain, seq: c.seq, hash: c.hash, signed_at: c.signedAt, kid: c.kid, sig: c.sig });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads an anchor document.
 * @throws Error naming what is wrong when it is not one.
 */
export function parseAnchor(value: unknown): AuditAnchor {
  if (!isObject(value) || value.format !== ANCHOR_FORMAT || !Array.isArray(value.heads)) throw new Error(`not a ${ANCHOR_FORMAT} document`);
  const heads = value.heads.map((h: unknown, i) => {
    if (
      !isObject(h) ||
      typeof h.chain !== 'string' ||
      !Number.isSafeInteger(h.seq) ||
      typeof h.hash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(h.hash) ||
      !Number.isSafeInteger(h.signed_at) ||
      typeof h.kid !== 'string' ||
      typeof h.sig !== 'string'
    ) {
      throw new Error(`anchor head ${i + 1} is malformed`);
    }
    return { chain: h.chain, seq: h.seq as number, hash: h.hash, signed_at: h.signed_at as number, kid: h.kid, sig: h.sig };
  });
  return { format: ANCHOR_FORMAT, created_at: String(value.created_at ?? ''), keys: Array.isArray(value.keys) ? (value.keys as AuditPublicJwk[]) : [], heads };
}

export function createAuditCheckpoints(deps: { audit: AuditLog; repo: AuditCheckpointRepository; box: SecretBox; now?: () => number }): AuditCheckpoints {
  const { audit, repo, box } = deps;
  const now = deps.now ?? Date.now;
  let opened: Promise<AuditSigningKey[]> | undefined;

  /** The keys this master key opens, oldest first; a row it does not open is not ours and is ignored. */
  const load = async () => {
    const stored = await repo.keys();
    const keys: AuditSigningKey[] = [];
    for (const k of stored) {
      try {
        keys.push(openAuditKey(box, k.kid, k.materialEnc));
      } catch {
        // sealed with another master key, or forged: it signs and verifies nothing
      }
    }
    return keys;
  };
  const keys = () => {
    opened ??= load().catch((err: unknown) => {
      opened = undefined;
      throw err;
    });
    return opened;
  };
  /** The oldest key; created on first use (instances racing each insert one, and all use the oldest). */
  const signer = async () => {
    const existing = await keys();
    if (existing[0]) return existing[0];
    const fresh = generateAuditKey(box);
    await repo.insertKey({ kid: fresh.key.kid, materialEnc: fresh.materialEnc, createdAt: now() });
    opened = undefined;
    const all = await keys();
    return all[0] ?? fresh.key;
  };
  const sign = async (heads: readonly AuditHead[]) => {
    if (heads.length === 0) return [];
    const key = await signer();
    const signedAt = now();
    const checkpoints = heads.map((h): AuditCheckpoint => ({ ...h, signedAt, kid: key.kid, sig: key.sign(headStatement({ ...h, signed_at: signedAt })) }));
    await repo.insert(checkpoints);
    return checkpoints;
  };
  const validSignature = (trusted: AuditSigningKey[], h: SignedHead) => {
    const key = trusted.find((k) => k.kid === h.kid);
    return key !== undefined && verifyAuditSignature(key.jwk, headStatement(h), h.sig);
  };

  const self: AuditCheckpoints = {
    async jwks() {
      await signer();
      return { keys: (await keys()).map((k) => k.jwk) };
    },

    async checkpointChanged() {
      const last = await repo.lastSignedAt();
      // Ten minutes back covers entries appended by instances whose clocks run a little behind.
      const heads = await repo.uncheckpointedHeads(last === undefined ? {} : { since: last - 600_000 });
      return (await sign(heads)).length;
    },

    async signHeads(chain) {
      return (await sign(await repo.heads(chain))).map(exported);
    },

    async checkpointsOf(chain) {
      return (await repo.withRows(chain)).map(exported);
    },

    async anchor(chain) {
      const heads = await self.signHeads(chain);
      return { format: ANCHOR_FORMAT, created_at: new Date(now()).toISOString(), keys: (await self.jwks()).keys, heads };
    },

    async signStatement(statement) {
      const key = await signer();
      return { kid: key.kid, sig: key.sign(Buffer.from(canonicalJson(statement), 'utf8')) };
    },

    async verify(opts = {}) {
      const chains: AuditVerification = await audit.verify(opts.chain);
      opened = undefined; // keys another instance added since this one loaded them
      const base = { checked: chains.checked, checkpoints: 0, anchored: 0 };
      if (!chains.ok) return { ok: false, ...base, firstBad: { ...chains.firstBad!, source: 'chain' } };
      const trusted = await keys();

      let checkpoints = 0;
      for (const c of await repo.withRows(opts.chain)) {
        const head = exported(c);
        const problem = { chain: c.chain, seq: c.seq, source: 'checkpoint', signedAt: c.signedAt } as const;
        if (!validSignature(trusted, head)) return { ok: false, ...base, checkpoints, firstBad: { ...problem, reason: 'bad_signature' } };
        if (c.rowHash === null) return { ok: false, ...base, checkpoints, firstBad: { ...problem, reason: 'truncated' } };
        if (c.rowHash !== c.hash) return { ok: false, ...base, checkpoints, firstBad: { ...problem, reason: 'rewritten' } };
        checkpoints += 1;
      }

      const heads = (opts.anchor?.heads ?? []).filter((h) => opts.chain === undefined || h.chain === opts.chain);
      const { hashes, last } = await repo.rowsAt(heads);
      let anchored = 0;
      for (const h of heads) {
        const problem = { chain: h.chain, seq: h.seq, source: 'anchor', signedAt: h.signed_at } as const;
        if (!validSignature(trusted, h)) return { ok: false, ...base, checkpoints, anchored, firstBad: { ...problem, reason: 'bad_signature' } };
        const now = hashes.get(`${h.chain}\u0000${h.seq}`);
        if (now === undefined) return { ok: false, ...base, checkpoints, anchored, firstBad: { ...problem, reason: 'truncated', last: last.get(h.chain) ?? 0 } };
        if (now !== h.hash) return { ok: false, ...base, checkpoints, anchored, firstBad: { ...problem, reason: 'rewritten' } };
        anchored += 1;
      }
      return { ok: true, ...base, checkpoints, anchored };
    },
  };
  return self;
}
