/**
 * Mandates in the database (migration mandates): who may act for whom, towards which services,
 * for which purposes, until when, and on what basis. Rows are never deleted by withdrawal: a
 * withdrawn mandate keeps its record (and its uses in the ledgers stay explainable).
 */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';

/** `voluntary`: granted by the principal; `guardian`/`parent`: recorded by a registrar from an official decision. */
export type MandateBasis = 'voluntary' | 'guardian' | 'parent';
export const MANDATE_BASES: readonly MandateBasis[] = ['voluntary', 'guardian', 'parent'];

export interface Mandate {
  readonly id: string;
  readonly principalId: string;
  readonly representativeId: string;
  /** Client ids, or null: every service that accepts representation. */
  readonly services: readonly string[] | null;
  readonly purposes: readonly string[];
  readonly validFrom: Date;
  readonly validUntil: Date | null;
  readonly basis: MandateBasis;
  /** The official decision's reference (legal representation only). */
  readonly decisionRef: string | null;
  /** The account that created it (the principal, or the registrar). */
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly withdrawnAt: Date | null;
  readonly withdrawnBy: string | null;
}

export interface NewMandate {
  principalId: string;
  representativeId: string;
  services: readonly string[] | null;
  purposes: readonly string[];
  validFrom: number;
  validUntil: number | null;
  basis: MandateBasis;
  decisionRef: string | null;
  createdBy: string;
}

interface Row {
  id: string;
  principal_id: string;
  representative_id: string;
  services: string | null;
  purposes: string;
  valid_from: number | string;
  valid_until: number | string | null;
  basis: string;
  decision_ref: string | null;
  created_by: string;
  created_at: number | string;
  withdrawn_at: number | string | null;
  withdrawn_by: string | null;
}

export interface MandateRepository {
  create(input: NewMandate, trx?: Db): Promise<Mandate>;
  find(id: string, trx?: Db): Promise<Mandate | undefined>;
  /** Every mandate of a principal (withdrawn and expired ones too), newest first. */
  listByPrincipal(principalId: string): Promise<Mandate[]>;
  /** Every mandate held by a representative, newest first. */
  listByRepresentative(representativeId: string): Promise<Mandate[]>;
  /** Marks a mandate withdrawn; false when it was withdrawn already (or is unknown). */
  withdraw(id: string, by: string, trx?: Db): Promise<boolean>;
  /** Withdraws every mandate in force where the account is principal or representative (the account was deleted); the ids. */
  withdrawAllOf(accountId: string, by: string): Promise<Mandate[]>;
  /**
   * Records that a grant was made under a mandate (its tokens act for the principal). With
   * `interactionUid` (a sign-in), false when that interaction already bound a grant: one per sign-in.
   */
  bindGrant(grantId: string, mandateId: string, interactionUid?: string): Promise<boolean>;
  /** The mandate a grant was made under, if any. */
  mandateOfGrant(grantId: string): Promise<Mandate | undefined>;
  /** Which of these grants were made under a mandate. */
  boundGrants(grantIds: readonly string[]): Promise<Set<string>>;
  /**
   * Deletes the bindings (mandate_grants) whose grant is gone or expired at `at` (ms), bound before
   * `before`: no token of such a grant is accepted any more, so the binding can no longer be used.
   * A binding of a live grant is kept whatever its mandate's state (a withdrawn mandate must keep
   * refusing its tokens: unbound, they would answer as the representative's own). The mandates
   * themselves are the record and are never purged. Returns how many were deleted.
   */
  purgeUnusable(before: number, at?: number): Promise<number>;
}

const isUniqueViolation = (err: unknown) => {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
};

const toMandate = (r: Row): Mandate => ({
  id: r.id,
  principalId: r.principal_id,
  representativeId: r.representative_id,
  services: r.services == null ? null : (JSON.parse(r.services) as string[]),
  purposes: JSON.parse(r.purposes) as string[],
  validFrom: new Date(Number(r.valid_from)),
  validUntil: r.valid_until == null ? null : new Date(Number(r.valid_until)),
  basis: r.basis as MandateBasis,
  decisionRef: r.decision_ref,
  createdBy: r.created_by,
  createdAt: new Date(Number(r.created_at)),
  withdrawnAt: r.withdrawn_at == null ? null : new Date(Number(r.withdrawn_at)),
  withdrawnBy: r.withdrawn_by,
});

export function createMandateRepository(db: Db, now: () => number = Date.now): MandateRepository {
  return {
    async create(input, trx = db) {
      const row: Row = {
        id: randomUUID(),
        principal_id: input.principalId,
        representative_id: input.representativeId,
        services: input.services == null ? null : JSON.stringify([...input.services]),
        purposes: JSON.stringify([...input.purposes]),
        valid_from: input.validFrom,
        valid_until: input.validUntil,
        basis: input.basis,
        decision_ref: input.decisionRef,
        created_by: input.createdBy,
        created_at: now(),
        withdrawn_at: null,
        withdrawn_by: null,
      };
      await trx('mandates').insert(row);
      return toMandate(row);
    },
    async find(id, trx = db) {
      const row = (await trx('mandates').where({ id }).first()) as Row | undefined;
      return row ? toMandate(row) : undefined;
    },
    async listByPrincipal(principalId) {
      return ((await db('mandates').where({ principal_id: principalId }).orderBy('created_at', 'desc')) as Row[]).map(toMandate);
    },
    async listByRepresentative(representativeId) {
      return ((await db('mandates').where({ representative_id: representativeId }).orderBy('created_at', 'desc')) as Row[]).map(toMandate);
    },
    async withdraw(id, by, trx = db) {
      return (await trx('mandates').where({ id }).whereNull('withdrawn_at').update({ withdrawn_at: now(), withdrawn_by: by })) > 0;
    },
    async withdrawAllOf(accountId, by) {
      const rows = (await db('mandates')
        .where((q) => q.where({ principal_id: accountId }).orWhere({ representative_id: accountId }))
        .whereNull('withdrawn_at')) as Row[];
      if (rows.length) await db('mandates').whereIn('id', rows.map((r) => r.id)).whereNull('withdrawn_at').update({ withdrawn_at: now(), withdrawn_by: by });
      return rows.map(toMandate);
    },
    async bindGrant(grantId, mandateId, interactionUid) {
      try {
        await db('mandate_grants').insert({ grant_id: grantId, mandate_id: mandateId, created_at: now(), interaction_uid: interactionUid ?? null });
        return true;
      } catch (err) {
        if (interactionUid !== undefined && isUniqueViolation(err)) return false;
        throw err;
      }
    },
    async purgeUnusable(before, at = now()) {
      return db('mandate_grants')
        .where('created_at', '<', before)
        .whereNotExists((q) =>
          q
            .select(db.raw('1'))
            .from('oidc_payloads')
            .where('oidc_payloads.model', 'Grant')
            .whereRaw('oidc_payloads.id = mandate_grants.grant_id')
            .where((live) => live.whereNull('oidc_payloads.expires_at').orWhere('oidc_payloads.expires_at', '>', at)),
        )
        .delete();
    },
    async boundGrants(grantIds) {
      if (!grantIds.length) return new Set<string>();
      const rows = (await db('mandate_grants').whereIn('grant_id', [...grantIds]).select('grant_id')) as Array<{ grant_id: string }>;
      return new Set(rows.map((r) => r.grant_id));
    },
    async mandateOfGrant(grantId) {
      const row = (await db('mandates').join('mandate_grants', 'mandate_grants.mandate_id', 'mandates.id').where('mandate_grants.grant_id', grantId).first('mandates.*')) as Row | undefined;
      return row ? toMandate(row) : undefined;
    },
  };
}
