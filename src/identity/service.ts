/**
 * Identity proofing: who the citizen is and how that was verified.
 *
 * - `recordProofing` records a verified identity (level, evidence, verifier, verified attributes)
 *   on an account: from a registrar's document check at a counter, an activation code, or the ID
 *   card's qualified certificate. The JMBG must be valid and is unique among the identities in
 *   force: a second account for the same JMBG is refused and reported in the audit trail.
 * - Separation of duties: nobody proofs their own account.
 * - `revoke` drops the level at once; listeners end the sessions above the new level.
 * - Every proofing, correction and revocation is in the audit trail and in the citizen's ledger
 *   (without personal values: the level, the method, the office, the document type).
 *
 * Personal data (attributes, evidence) is sealed at rest; the JMBG, document numbers and activation
 * codes are looked up only through keyed hashes.
 */
import { randomBytes } from 'node:crypto';
import { KapijaError } from '../errors.js';
import { isValidJmbg } from '../assurance/jmbg.js';
import type { SecretBox } from '../security/crypto.js';
import { withChainRetry } from '../store/audit.js';
import type { Repositories } from '../store/index.js';
import { PROOFING_METHODS, type NewIdentityRow, type ProofingMethod, type StoredEvidence, type VerifiedAttributes, type VerifiedIdentity } from '../store/identities.js';
import { ledgerChain } from '../account/ledger.js';
import { isIdentityLevel, type IdentityLevel } from './levels.js';

export { PROOFING_METHODS, type ProofingMethod, type VerifiedAttributes, type VerifiedIdentity, type StoredEvidence } from '../store/identities.js';

/** The evidence as presented (the document number in clear; only its keyed hash is stored). */
export interface EvidenceInput {
  type: 'document' | 'certificate' | 'letter';
  documentType?: string | undefined;
  /** ISO 3166-1 alpha-2. */
  issuingCountry?: string | undefined;
  documentNumber?: string | undefined;
  /** When it was checked (ms); now when left out. */
  time?: number | undefined;
  /** Expiry of the document or certificate, YYYY-MM-DD. */
  expiry?: string | undefined;
  certificateIssuer?: string | undefined;
  certificateSerial?: string | undefined;
}

export interface ProofingInput {
  method: ProofingMethod;
  level: Exclude<IdentityLevel, 'none'>;
  /** The officer's account id, 'cli', or the certificate's issuer. */
  verifier: string;
  /** The office the citizen is told about (never the officer's name). */
  office?: string | undefined;
  evidence: EvidenceInput;
  attributes: VerifiedAttributes;
  /** When the identity stops counting (ms), e.g. the document's expiry; none when left out. */
  expiresAt?: number | undefined;
}

/** Who records or changes a proofing: an officer (account id), 'cli' or 'certificate'. */
export interface ProofingActor {
  actor: string;
  ip?: string | null | undefined;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const ACTIVATION_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32: no I, L, O, U
/** Activation codes live 30 days (a letter takes its time). */
export const ACTIVATION_TTL_MS = 30 * 24 * 3600 * 1000;

/** Normalises a typed activation code: upper case, no spaces or dashes, O→0 and I/L→1 as Crockford reads them. */
export function normaliseActivationCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

function newActivationCode(): string {
  const bytes = randomBytes(20);
  let out = '';
  for (let i = 0; i < 20; i += 1) out += ACTIVATION_ALPHABET[bytes[i]! & 31];
  return out.match(/.{5}/g)!.join('-');
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

/** What the ledger and audit say about a proofing: no personal value, the office not the officer. */
function proofingSummary(identity: { level: IdentityLevel; method: ProofingMethod; office: string | null; evidence: StoredEvidence }) {
  return {
    level: identity.level,
    method: identity.method,
    office: identity.office,
    evidence: identity.evidence.type,
    ...(identity.evidence.documentType ? { document_type: identity.evidence.documentType } : {}),
    ...(identity.evidence.issuingCountry ? { issuing_country: identity.evidence.issuingCountry } : {}),
  };
}

/**
 * Refuses (400) a proofing with an unknown method or level, no verifier, invalid attributes, or
 * evidence that expired before `now` (ms): an expired document or certificate proves nothing
 * (eIDAS 2015/1502 §2.1.2 counts expired evidence among the risks to rule out). A document is valid
 * through its expiry date.
 */
function validateProofing(input: ProofingInput, now: number) {
  if (!PROOFING_METHODS.includes(input.method)) throw new KapijaError('identity.invalid', 400, { details: { field: 'method' } });
  if (!isIdentityLevel(input.level) || (input.level as IdentityLevel) === 'none') throw new KapijaError('identity.invalid', 400, { details: { field: 'level' } });
  if (!input.verifier || input.verifier.length > 200) throw new KapijaError('identity.invalid', 400, { details: { field: 'verifier' } });
  validateAttributes(input.attributes);
  if (input.evidence.expiry !== undefined && !DATE.test(input.evidence.expiry)) throw new KapijaError('identity.invalid', 400, { details: { field: 'evidence.expiry' } });
  if (input.evidence.expiry !== undefined && input.evidence.expiry < new Date(now).toISOString().slice(0, 10)) throw new KapijaError('identity.document_expired', 400, { details: { field: 'evidence.expiry' } });
}

function validateAttributes(a: VerifiedAttributes) {
  if (a.jmbg !== undefined && !isValidJmbg(a.jmbg)) throw new KapijaError('identity.invalid_jmbg', 400, { details: { field: 'attributes.jmbg' } });
  if (a.birthdate !== undefined && !DATE.test(a.birthdate)) throw new KapijaError('identity.invalid', 400, { details: { field: 'attributes.birthdate' } });
  if (a.jmbg && a.birthdate) {
    // The JMBG begins with the date of birth (DDMMYYY).
    const [y, m, d] = a.birthdate.split('-');
    if (a.jmbg.slice(0, 7) !== `${d}${m}${y!.slice(1)}`) throw new KapijaError('identity.invalid_jmbg', 400, { details: { field: 'attributes.jmbg' } });
  }
  for (const [k, v] of Object.entries(a)) if (v !== undefined && (typeof v !== 'string' || v.length > 200)) throw new KapijaError('identity.invalid', 400, { details: { field: `attributes.${k}` } });
}

/** The row that writes a recorded identity again as it was proofed (level, dates, evidence). */
function rowOf(identity: VerifiedIdentity, jmbgHash: string | null): NewIdentityRow {
  return {
    accountId: identity.accountId,
    level: identity.proofedLevel,
    method: identity.method,
    verifier: identity.verifier,
    office: identity.office,
    evidence: identity.evidence,
    attributes: identity.attributes,
    jmbgHash,
    verifiedAt: identity.verifiedAt.getTime(),
    expiresAt: identity.expiresAt?.getTime() ?? null,
  };
}

export type LevelDropListener = (accountId: string, level: IdentityLevel) => Promise<void>;
/** Called after a verified identity in force was replaced (proofed again) or its attributes corrected. */
export type IdentityChangeListener = (accountId: string) => Promise<void>;

export interface IdentityServiceDeps {
  /** The repositories it reads and writes; proofings and their audit entries commit together. */
  repos: Pick<Repositories, 'identities' | 'activationCodes' | 'accounts' | 'audit' | 'atomically'>;
  box: SecretBox;
  now?: () => number;
}

/** What the proofing and the activation operations share: repositories, keys, the clock. */
interface IdentityContext extends IdentityServiceDeps {
  now: () => number;
  /** Keyed hash of a JMBG (the only form in which it is looked up). */
  jmbgHash(jmbg: string): string;
  /** The evidence as stored: the document number only as a keyed hash. */
  evidenceOf(e: EvidenceInput): StoredEvidence;
  /** Refuses a JMBG already in force on another account, and reports the attempt. */
  refuseDuplicate(accountId: string, hash: string, by: ProofingActor): Promise<void>;
  /** Tells the listeners that an account's identity level dropped. */
  levelDropped(accountId: string, level: IdentityLevel): Promise<void>;
  /** Tells the listeners that an identity in force was proofed again or corrected. */
  changed(accountId: string): Promise<void>;
}

export function createIdentityService(deps: IdentityServiceDeps) {
  const now = deps.now ?? Date.now;
  const { identities, audit } = deps.repos;
  const { box } = deps;
  const dropListeners: LevelDropListener[] = [];
  const changeListeners: IdentityChangeListener[] = [];
  const jmbgHash = (jmbg: string) => box.mac('jmbg', jmbg);
  const ctx: IdentityContext = {
    ...deps,
    now,
    jmbgHash,
    evidenceOf: (e) => ({
      type: e.type,
      documentType: e.documentType,
      issuingCountry: e.issuingCountry,
      documentNumberHash: e.documentNumber ? box.mac('document-number', `${e.issuingCountry ?? ''}|${e.documentType ?? ''}|${e.documentNumber.trim().toUpperCase()}`) : undefined,
      time: e.time ?? now(),
      expiry: e.expiry,
      certificateIssuer: e.certificateIssuer,
      certificateSerial: e.certificateSerial,
    }),
    async refuseDuplicate(accountId, hash, by) {
      const holder = await identities.accountByJmbgHash(hash);
      if (holder && holder !== accountId) {
        await withChainRetry(() =>
          audit.append({ chain: 'admin', actor: by.actor, action: 'identity.duplicate_refused', subjectAccountId: accountId, ip: by.ip ?? null, details: { existing_account: holder } }),
        );
        throw new KapijaError('identity.duplicate_jmbg', 409);
      }
    },
    async levelDropped(accountId, level) {
      for (const l of dropListeners) await l(accountId, level);
    },
    async changed(accountId) {
      for (const l of changeListeners) await l(accountId);
    },
  };
  const proofing = proofingOperations(ctx);

  return {
    /** The identity level in force for an account (`none` when never proofed, revoked or expired). */
    async levelOf(accountId: string): Promise<IdentityLevel> {
      return (await identities.find(accountId))?.level ?? 'none';
    },

    /** The account's verified identity, when one is recorded (revoked ones too, with level `none`). */
    find: (accountId: string) => identities.find(accountId),

    /** The account whose identity in force has this JMBG. */
    async findAccountByVerifiedJmbg(jmbg: string): Promise<string | undefined> {
      if (!isValidJmbg(jmbg)) return undefined;
      return identities.accountByJmbgHash(jmbgHash(jmbg));
    },

    ...proofing,
    ...activationOperations(ctx, proofing.recordProofingStored),

    /** Called after an account's identity level dropped (revocation): ends the sessions above it. */
    onLevelDropped(listener: LevelDropListener) {
      dropListeners.push(listener);
    },

    /** Called after an identity in force was proofed again or its attributes corrected (what was derived from it is outdated). */
    onChanged(listener: IdentityChangeListener) {
      changeListeners.push(listener);
    },

    /** Erases the verified identity of a deleted account (its JMBG becomes free again). */
    async forget(accountId: string): Promise<void> {
      await identities.forget(accountId);
      await deps.repos.activationCodes.forgetAccount(accountId);
    },

    /** Records that a registrar read a citizen's verified identity (it appears in the citizen's ledger as an administrator's read). */
    async recordView(accountId: string, by: ProofingActor): Promise<void> {
      await withChainRetry(() => audit.append({ chain: 'admin', actor: by.actor, action: 'admin.citizen.identity_viewed', subjectAccountId: accountId, ip: by.ip ?? null, details: {} }));
    },

    /** Proofings per officer over the last `days` days, for auditors (separation of duties). */
    async proofingRates(days = 30) {
      return identities.countsByVerifier(now() - days * 24 * 3600 * 1000);
    },
  };
}

/** Recording, correcting and revoking a verified identity. */
function proofingOperations(ctx: IdentityContext) {
  const { identities, accounts, audit, atomically, activationCodes } = ctx.repos;
  const { now, jmbgHash, refuseDuplicate, levelDropped, changed } = ctx;
  const ops = {
    /**
     * Records a proofing on an account, replacing any earlier identity. Refuses (403) an officer
     * proofing their own account, (409) a JMBG in force on another account, (400) invalid input.
     */
    async recordProofing(accountId: string, input: ProofingInput, by: ProofingActor = { actor: input.verifier }): Promise<VerifiedIdentity> {
      validateProofing(input, ctx.now());
      if (by.actor === accountId || input.verifier === accountId) throw new KapijaError('identity.own_account', 403);
      const account = await accounts.findById(accountId);
      if (!account || account.status === ('deleted' as string)) throw new KapijaError('identity.not_found', 404);
      const hash = input.attributes.jmbg ? jmbgHash(input.attributes.jmbg) : null;
      if (hash) await refuseDuplicate(accountId, hash, by);
      const evidence = ctx.evidenceOf(input.evidence);
      const before = await identities.find(accountId);
      try {
        await atomically(async (trx) => {
          await identities.put({
            accountId,
            level: input.level,
            method: input.method,
            verifier: input.verifier,
            office: input.office ?? null,
            evidence,
            attributes: input.attributes,
            jmbgHash: hash,
            verifiedAt: now(),
            expiresAt: input.expiresAt ?? null,
          }, trx);
          const summary = proofingSummary({ level: input.level, method: input.method, office: input.office ?? null, evidence });
          await audit.append({ chain: 'admin', actor: by.actor, action: 'identity.proofed', subjectAccountId: accountId, ip: by.ip ?? null, details: { ...summary, verifier: input.verifier } }, trx);
          await audit.append({ chain: ledgerChain(accountId), actor: by.actor, action: 'ledger.identity_proofed', subjectAccountId: accountId, details: summary }, trx);
        });
      } catch (err) {
        if (isUniqueViolation(err)) {
          await refuseDuplicate(accountId, hash!, by);
          throw new KapijaError('identity.duplicate_jmbg', 409);
        }
        throw err;
      }
      const after = (await identities.find(accountId))!;
      if (before && before.level !== 'none' && after.level !== 'none' && rankOf(after.level) < rankOf(before.level)) await levelDropped(accountId, after.level);
      if (before && before.level !== 'none') await changed(accountId);
      return after;
    },

    /** Corrects verified attributes (a typo at the counter); the level and evidence stay. */
    async correct(accountId: string, attributes: VerifiedAttributes, by: ProofingActor, reason: string): Promise<VerifiedIdentity> {
      if (by.actor === accountId) throw new KapijaError('identity.own_account', 403);
      const current = await identities.find(accountId);
      if (!current || current.level === 'none') throw new KapijaError('identity.not_found', 404);
      const merged: VerifiedAttributes = { ...current.attributes, ...Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined)) };
      validateAttributes(merged);
      const hash = merged.jmbg ? jmbgHash(merged.jmbg) : null;
      if (hash) await refuseDuplicate(accountId, hash, by);
      const changedAttributes = Object.keys(attributes).filter((k) => (attributes as Record<string, unknown>)[k] !== undefined).sort();
      await atomically(async (trx) => {
        await identities.put({ ...rowOf(current, hash), attributes: merged }, trx);
        await audit.append({ chain: 'admin', actor: by.actor, action: 'identity.corrected', subjectAccountId: accountId, ip: by.ip ?? null, details: { attributes: changedAttributes, reason: reason.slice(0, 200) } }, trx);
        await audit.append({ chain: ledgerChain(accountId), actor: by.actor, action: 'ledger.identity_corrected', subjectAccountId: accountId, details: { attributes: changedAttributes } }, trx);
      });
      await ctx.changed(accountId);
      return (await identities.find(accountId))!;
    },

    /** Revokes the identity in force (e.g. fraud): the level drops at once, sessions above it end. */
    async revoke(accountId: string, by: ProofingActor, reason: string): Promise<boolean> {
      let revoked = false;
      await atomically(async (trx) => {
        const jmbg = (await identities.find(accountId, trx))?.attributes.jmbg;
        revoked = await identities.revoke(accountId, reason.slice(0, 200), trx);
        if (!revoked) return;
        // The codes still out for this account or this JMBG (a letter in the post) would restore
        // what was just revoked, on this account or another: they are withdrawn with it.
        await activationCodes.withdraw({ accountId, jmbgHash: jmbg ? jmbgHash(jmbg) : undefined }, trx);
        await audit.append({ chain: 'admin', actor: by.actor, action: 'identity.revoked', subjectAccountId: accountId, ip: by.ip ?? null, details: { reason: reason.slice(0, 200) } }, trx);
        await audit.append({ chain: ledgerChain(accountId), actor: by.actor, action: 'ledger.identity_revoked', subjectAccountId: accountId, details: {} }, trx);
      });
      if (revoked) await levelDropped(accountId, 'none');
      return revoked;
    },

    /** recordProofing with the document number already hashed (an activation code's sealed proofing). */
    async recordProofingStored(accountId: string, input: ProofingInput, documentNumberHash: string | undefined, by: ProofingActor): Promise<VerifiedIdentity> {
      const identity = await ops.recordProofing(accountId, input, by);
      if (!documentNumberHash) return identity;
      const hash = identity.attributes.jmbg ? jmbgHash(identity.attributes.jmbg) : null;
      await identities.put({ ...rowOf(identity, hash), evidence: { ...identity.evidence, documentNumberHash } });
      return (await identities.find(accountId))!;
    },
  };
  return ops;
}

/** Single-use activation codes that carry a proofing to the account that redeems them. */
function activationOperations(ctx: IdentityContext, recordProofingStored: ReturnType<typeof proofingOperations>['recordProofingStored']) {
  const { identities, activationCodes, audit, atomically } = ctx.repos;
  const { box, now, jmbgHash } = ctx;
  const codeHash = (code: string) => box.mac('activation-code', normaliseActivationCode(code));
  return {
    /**
     * A single-use activation code carrying a proofing, for the online account the citizen creates
     * or already has (`accountId`: only that account may use it). Only its keyed hash is stored.
     */
    async issueActivationCode(input: ProofingInput, by: ProofingActor, opts: { accountId?: string | undefined; ttlMs?: number } = {}): Promise<{ code: string; expiresAt: Date }> {
      validateProofing(input, ctx.now());
      if (opts.accountId && (opts.accountId === by.actor || opts.accountId === input.verifier)) throw new KapijaError('identity.own_account', 403);
      if (!input.attributes.jmbg) throw new KapijaError('identity.invalid_jmbg', 400, { details: { field: 'attributes.jmbg' } });
      const hash = jmbgHash(input.attributes.jmbg);
      const holder = await identities.accountByJmbgHash(hash);
      if (holder && holder !== opts.accountId) {
        await withChainRetry(() => audit.append({ chain: 'admin', actor: by.actor, action: 'identity.duplicate_refused', subjectAccountId: opts.accountId ?? null, ip: by.ip ?? null, details: { existing_account: holder } }));
        throw new KapijaError('identity.duplicate_jmbg', 409);
      }
      const code = newActivationCode();
      const hashOfCode = codeHash(code);
      const expiresAt = now() + (opts.ttlMs ?? ACTIVATION_TTL_MS);
      const sealed = box.seal(JSON.stringify({ ...input, evidence: { ...ctx.evidenceOf(input.evidence) } }), `activation:${hashOfCode}`);
      await atomically(async (trx) => {
        await activationCodes.insert({ codeHash: hashOfCode, accountId: opts.accountId ?? null, proofing: sealed, jmbgHash: hash, createdBy: by.actor, createdAt: now(), expiresAt, usedAt: null, usedBy: null }, trx);
        await audit.append({ chain: 'admin', actor: by.actor, action: 'identity.activation_issued', subjectAccountId: opts.accountId ?? null, ip: by.ip ?? null, details: { level: input.level, method: input.method, office: input.office ?? null, expires_at: expiresAt } }, trx);
      });
      return { code, expiresAt: new Date(expiresAt) };
    },

    /**
     * Uses an activation code for `accountId`: records its proofing on the account. Refused
     * (`identity.activation_invalid`, one answer for every reason) when the code is unknown, used,
     * expired, meant for another account, or issued by the account's holder.
     */
    async redeemActivationCode(accountId: string, code: string, ip: string | null = null): Promise<VerifiedIdentity> {
      const hashOfCode = codeHash(code);
      const row = await activationCodes.find(hashOfCode);
      const invalid = () => new KapijaError('identity.activation_invalid', 400);
      // An identity in force is never bound to another JMBG by a code (a JMBG is changed only by a
      // correction at a counter): a code for someone else (a relative's letter) is refused as any other.
      const current = row ? await identities.find(accountId) : undefined;
      const otherPerson = Boolean(current && current.level !== 'none' && current.attributes.jmbg && jmbgHash(current.attributes.jmbg) !== row!.jmbgHash);
      if (!row || row.usedAt !== null || row.expiresAt <= now() || (row.accountId && row.accountId !== accountId) || row.createdBy === accountId || otherPerson) {
        await withChainRetry(() => audit.append({ chain: 'admin', actor: accountId, action: 'identity.activation_refused', subjectAccountId: accountId, ip, details: { known: Boolean(row), used: Boolean(row?.usedAt), expired: Boolean(row && row.expiresAt <= now()) } }));
        throw invalid();
      }
      if (!(await activationCodes.use(hashOfCode, accountId))) throw invalid();
      const sealed = JSON.parse(box.openString(row.proofing, `activation:${hashOfCode}`)) as ProofingInput & { evidence: StoredEvidence };
      const { documentNumberHash, ...evidence } = sealed.evidence;
      const identity = await recordProofingStored(accountId, { ...sealed, evidence }, documentNumberHash, { actor: row.createdBy, ip });
      await withChainRetry(() => audit.append({ chain: 'admin', actor: accountId, action: 'identity.activation_used', subjectAccountId: accountId, ip, details: { issued_by: row.createdBy } }));
      return identity;
    },
  };
}

const rankOf = (l: IdentityLevel) => ['none', 'low', 'substantial', 'high'].indexOf(l);

export type IdentityService = ReturnType<typeof createIdentityService>;
