/**
 * Verified identities in the database (migration identity_proofing). Personal data is sealed with
 * the row's account id as context, so a value copied into another row does not open; lookups go
 * through keyed hashes only. Activation codes are in activation-codes.ts.
 */
import { isPostgres, type Db } from './db.js';
import type { SecretBox } from '../security/crypto.js';
import type { IdentityLevel } from '../identity/levels.js';

export type ProofingMethod = 'in_person' | 'certificate' | 'letter' | 'remote_document';
export const PROOFING_METHODS: readonly ProofingMethod[] = ['in_person', 'certificate', 'letter', 'remote_document'];

/** The evidence of a proofing as stored (the document number only as a keyed hash). */
export interface StoredEvidence {
  type: 'document' | 'certificate' | 'letter';
  documentType?: string | undefined;
  issuingCountry?: string | undefined;
  /** Keyed hash of the document number (HMAC, purpose `document-number`). */
  documentNumberHash?: string | undefined;
  /** When the evidence was checked (ms). */
  time: number;
  /** The document's (or certificate's) expiry date, YYYY-MM-DD. */
  expiry?: string | undefined;
  certificateIssuer?: string | undefined;
  certificateSerial?: string | undefined;
}

/** Verified attributes: legal names in Cyrillic and Latin script, date of birth, JMBG. */
export interface VerifiedAttributes {
  givenNameCyrl?: string | undefined;
  familyNameCyrl?: string | undefined;
  givenNameLatn?: string | undefined;
  familyNameLatn?: string | undefined;
  /** YYYY-MM-DD */
  birthdate?: string | undefined;
  jmbg?: string | undefined;
}

export interface VerifiedIdentity {
  readonly accountId: string;
  /** The level in force: `none` once revoked or expired. */
  readonly level: IdentityLevel;
  /** The level recorded at proofing (kept after revocation, for the record). */
  readonly proofedLevel: IdentityLevel;
  readonly method: ProofingMethod;
  /** Officer account id or certificate issuer. Never shown to the citizen (the office is). */
  readonly verifier: string;
  readonly office: string | null;
  readonly evidence: StoredEvidence;
  readonly attributes: VerifiedAttributes;
  readonly verifiedAt: Date;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly revokedReason: string | null;
}

interface Row {
  account_id: string;
  level: string;
  method: string;
  verifier: string;
  office: string | null;
  evidence: string;
  attributes: string;
  jmbg_hash: string | null;
  document_hash: string | null;
  verified_at: number | string;
  expires_at: number | string | null;
  revoked_at: number | string | null;
  revoked_reason: string | null;
  updated_at: number | string;
}

/** The columns of a verified identity's row, as findWithContext reads them along with an account. */
export const IDENTITY_COLUMNS = ['account_id', 'level', 'method', 'verifier', 'office', 'evidence', 'attributes', 'jmbg_hash', 'document_hash', 'verified_at', 'expires_at', 'revoked_at', 'revoked_reason', 'updated_at'] as const satisfies ReadonlyArray<keyof Row>;

export interface NewIdentityRow {
  accountId: string;
  level: IdentityLevel;
  method: ProofingMethod;
  verifier: string;
  office: string | null;
  evidence: StoredEvidence;
  attributes: VerifiedAttributes;
  jmbgHash: string | null;
  verifiedAt: number;
  expiresAt: number | null;
}

export interface IdentityRepository {
  /** The account's identity (revoked or expired ones too, with level `none`). */
  find(accountId: string, trx?: Db): Promise<VerifiedIdentity | undefined>;
  /**
   * The same, read inside `trx` with the row locked against change until `trx` ends (PostgreSQL
   * FOR SHARE; SQLite's one writer at a time does the same): a revocation or correction waits for
   * what `trx` does on the strength of this identity, or `trx` sees it.
   */
  findHeld(accountId: string, trx: Db): Promise<VerifiedIdentity | undefined>;
  /** The identity of a row read elsewhere ({@link IDENTITY_COLUMNS}, e.g. with a token), opened as find opens it. */
  fromRow(row: unknown): VerifiedIdentity;
  /** The account whose identity in force has this keyed JMBG hash. */
  accountByJmbgHash(jmbgHash: string, trx?: Db): Promise<string | undefined>;
  /** Records (or replaces) the account's identity. */
  put(input: NewIdentityRow, trx?: Db): Promise<void>;
  /** Revokes the identity in force; false when there is none. The JMBG is given up for another proofing. */
  revoke(accountId: string, reason: string, trx?: Db): Promise<boolean>;
  /** Proofings recorded by each verifier since `since` (ms), most first. */
  countsByVerifier(since: number): Promise<Array<{ verifier: string; proofings: number; revoked: number }>>;
  /** Deletes the account's identity (the account was deleted). */
  forget(accountId: string): Promise<void>;
}

/** `now` decides whether an identity with an expiry is still in force. */
export function createIdentityRepository(db: Db, box: SecretBox, now: () => number = Date.now): IdentityRepository {
  const ctxOf = (accountId: string, what: string) => `verified-identity:${what}:${accountId}`;
  const toIdentity = (r: Row): VerifiedIdentity => {
    const revokedAt = r.revoked_at == null ? null : new Date(Number(r.revoked_at));
    const expiresAt = r.expires_at == null ? null : new Date(Number(r.expires_at));
    const proofedLevel = r.level as IdentityLevel;
    const inForce = !revokedAt && (!expiresAt || expiresAt.getTime() > now());
    return {
      accountId: r.account_id,
      level: inForce ? proofedLevel : 'none',
      proofedLevel,
      method: r.method as ProofingMethod,
      verifier: r.verifier,
      office: r.office,
      evidence: JSON.parse(box.openString(r.evidence, ctxOf(r.account_id, 'evidence'))) as StoredEvidence,
      attributes: JSON.parse(box.openString(r.attributes, ctxOf(r.account_id, 'attributes'))) as VerifiedAttributes,
      verifiedAt: new Date(Number(r.verified_at)),
      expiresAt,
      revokedAt,
      revokedReason: r.revoked_reason,
    };
  };
  return {
    async find(accountId, trx = db) {
      const row = (await trx('verified_identities').where({ account_id: accountId }).first()) as Row | undefined;
      return row ? toIdentity(row) : undefined;
    },
    async findHeld(accountId, trx) {
      const query = trx('verified_identities').where({ account_id: accountId }).first();
      const row = (await (isPostgres(db) ? query.forShare() : query)) as Row | undefined;
      return row ? toIdentity(row) : undefined;
    },
    fromRow: (row) => toIdentity(row as Row),
    async accountByJmbgHash(jmbgHash, trx = db) {
      const row = (await trx('verified_identities').where({ jmbg_hash: jmbgHash }).whereNull('revoked_at').first('account_id')) as { account_id: string } | undefined;
      return row?.account_id;
    },
    async put(input, trx = db) {
      const row: Row = {
        account_id: input.accountId,
        level: input.level,
        method: input.method,
        verifier: input.verifier,
        office: input.office,
        evidence: box.seal(JSON.stringify(input.evidence), ctxOf(input.accountId, 'evidence')),
        attributes: box.seal(JSON.stringify(input.attributes), ctxOf(input.accountId, 'attributes')),
        jmbg_hash: input.jmbgHash,
        document_hash: input.evidence.documentNumberHash ?? null,
        verified_at: input.verifiedAt,
        expires_at: input.expiresAt,
        revoked_at: null,
        revoked_reason: null,
        updated_at: now(),
      };
      await trx('verified_identities').where({ account_id: input.accountId }).delete();
      await trx('verified_identities').insert(row);
    },
    async revoke(accountId, reason, trx = db) {
      const n = await trx('verified_identities')
        .where({ account_id: accountId })
        .whereNull('revoked_at')
        .update({ revoked_at: now(), revoked_reason: reason, jmbg_hash: null, updated_at: now() });
      return n > 0;
    },
    async countsByVerifier(since) {
      const rows = (await db('verified_identities')
        .select('verifier')
        .count({ proofings: '*' })
        .sum({ revoked: db.raw('case when revoked_at is null then 0 else 1 end') })
        .where('verified_at', '>=', since)
        .groupBy('verifier')
        .orderBy('proofings', 'desc')) as Array<{ verifier: string; proofings: number | string; revoked: number | string | null }>;
      return rows.map((r) => ({ verifier: r.verifier, proofings: Number(r.proofings), revoked: Number(r.revoked ?? 0) }));
    },
    async forget(accountId) {
      await db('verified_identities').where({ account_id: accountId }).delete();
    },
  };
}
