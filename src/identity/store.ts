/**
 * Verified identities and activation codes in the database (migration identity_proofing). Personal
 * data is sealed with the row's account id (or code hash) as context, so a value copied into
 * another row does not open; lookups go through keyed hashes only.
 */
import type { Knex } from 'knex';
import type { Db } from '../store/db.js';
import type { SecretBox } from '../security/crypto.js';
import type { IdentityLevel } from './levels.js';

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

export interface ActivationRow {
  codeHash: string;
  accountId: string | null;
  /** The sealed proofing (JSON) the code carries. */
  proofing: string;
  jmbgHash: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  usedBy: string | null;
}

export function createIdentityStore(db: Db, box: SecretBox, now: () => number = Date.now) {
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
    async find(accountId: string, trx: Db | Knex.Transaction = db): Promise<VerifiedIdentity | undefined> {
      const row = (await trx('verified_identities').where({ account_id: accountId }).first()) as Row | undefined;
      return row ? toIdentity(row) : undefined;
    },
    async accountByJmbgHash(jmbgHash: string, trx: Db | Knex.Transaction = db): Promise<string | undefined> {
      const row = (await trx('verified_identities').where({ jmbg_hash: jmbgHash }).whereNull('revoked_at').first('account_id')) as { account_id: string } | undefined;
      return row?.account_id;
    },
    /** Records (or replaces) the account's identity. */
    async put(input: NewIdentityRow, trx: Db | Knex.Transaction = db): Promise<void> {
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
    /** Revokes the identity in force; false when there is none. The JMBG is given up for another proofing. */
    async revoke(accountId: string, reason: string, trx: Db | Knex.Transaction = db): Promise<boolean> {
      const n = await trx('verified_identities')
        .where({ account_id: accountId })
        .whereNull('revoked_at')
        .update({ revoked_at: now(), revoked_reason: reason, jmbg_hash: null, updated_at: now() });
      return n > 0;
    },
    /** Proofings recorded by each verifier since `since` (ms), most first. */
    async countsByVerifier(since: number): Promise<Array<{ verifier: string; proofings: number; revoked: number }>> {
      const rows = (await db('verified_identities')
        .select('verifier')
        .count({ proofings: '*' })
        .sum({ revoked: db.raw('case when revoked_at is null then 0 else 1 end') })
        .where('verified_at', '>=', since)
        .groupBy('verifier')
        .orderBy('proofings', 'desc')) as Array<{ verifier: string; proofings: number | string; revoked: number | string | null }>;
      return rows.map((r) => ({ verifier: r.verifier, proofings: Number(r.proofings), revoked: Number(r.revoked ?? 0) }));
    },
    async insertActivation(a: ActivationRow, trx: Db | Knex.Transaction = db): Promise<void> {
      await trx('activation_codes').insert({
        code_hash: a.codeHash,
        account_id: a.accountId,
        proofing: a.proofing,
        jmbg_hash: a.jmbgHash,
        created_by: a.createdBy,
        created_at: a.createdAt,
        expires_at: a.expiresAt,
        used_at: null,
        used_by: null,
      });
    },
    async findActivation(codeHash: string, trx: Db | Knex.Transaction = db): Promise<ActivationRow | undefined> {
      const r = (await trx('activation_codes').where({ code_hash: codeHash }).first()) as
        | { code_hash: string; account_id: string | null; proofing: string; jmbg_hash: string; created_by: string; created_at: number | string; expires_at: number | string; used_at: number | string | null; used_by: string | null }
        | undefined;
      if (!r) return undefined;
      return {
        codeHash: r.code_hash,
        accountId: r.account_id,
        proofing: r.proofing,
        jmbgHash: r.jmbg_hash,
        createdBy: r.created_by,
        createdAt: Number(r.created_at),
        expiresAt: Number(r.expires_at),
        usedAt: r.used_at == null ? null : Number(r.used_at),
        usedBy: r.used_by,
      };
    },
    /** Marks the code used by `accountId`; false when another request used it first. */
    async useActivation(codeHash: string, accountId: string, trx: Db | Knex.Transaction = db): Promise<boolean> {
      return (await trx('activation_codes').where({ code_hash: codeHash }).whereNull('used_at').update({ used_at: now(), used_by: accountId })) > 0;
    },
    /** Deletes the account's identity and the activation codes bound to it (the account was deleted). */
    async forget(accountId: string): Promise<void> {
      await db('verified_identities').where({ account_id: accountId }).delete();
      await db('activation_codes').where({ account_id: accountId }).delete();
    },
    async purgeActivations(before: number): Promise<number> {
      return db('activation_codes').where('expires_at', '<', before).delete();
    },
  };
}

export type IdentityStore = ReturnType<typeof createIdentityStore>;
