/**
 * Second-factor credentials. Single-use and replay rules are enforced here, in SQL, so they hold
 * across every instance sharing the database.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';

/** A credential's type: the id of the factor it belongs to (factors/registry.ts). */
export type CredentialType = 'totp' | 'webauthn' | 'recovery' | (string & {});
/** How a WebAuthn credential's attestation was verified at registration (see factors/webauthn). */
export type AttestationKind = 'none' | 'self' | 'unverified' | 'mds' | 'legacy';
/** RFC 8176: a hardware-protected key, or a key that may be in software. */
export type KeyAssurance = 'hwk' | 'swk';

export interface Credential {
  readonly id: string;
  readonly accountId: string;
  readonly type: CredentialType;
  readonly name: string | null;
  readonly lookup: string | null;
  readonly config: Record<string, unknown>;
  readonly secretEnc: string | null;
  readonly lastStep: number | null;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly usedAt: Date | null;
  /** WebAuthn: the authenticator model's AAGUID and what the credential was judged at registration. */
  readonly aaguid: string | null;
  readonly attestation: AttestationKind | null;
  readonly assurance: KeyAssurance | null;
}

export interface NewCredential {
  accountId: string;
  type: CredentialType;
  name?: string | null;
  lookup?: string | null;
  config?: Record<string, unknown>;
  secretEnc?: string | null;
  aaguid?: string | null;
  attestation?: AttestationKind | null;
  assurance?: KeyAssurance | null;
}

export interface CredentialRepository {
  add(input: NewCredential, trx?: Db): Promise<Credential>;
  list(accountId: string, type?: CredentialType): Promise<Credential[]>;
  findByLookup(type: CredentialType, lookup: string): Promise<Credential | undefined>;
  /** Which second factors an account has (recovery codes counted only while unused). */
  enrolledTypes(accountId: string): Promise<Set<CredentialType>>;
  /**
   * Accepts TOTP time-step `step` once: compare-and-set on last_step. False when this or a later
   * step was already accepted (a replay), on any instance.
   */
  acceptTotpStep(id: string, step: number, at?: number): Promise<boolean>;
  /** Marks an unused recovery code used; false when it does not exist or was used already. */
  consumeRecoveryCode(accountId: string, lookup: string, at?: number): Promise<boolean>;
  /** Replaces every recovery code of an account in one transaction. */
  replaceRecoveryCodes(accountId: string, lookups: string[]): Promise<void>;
  countUnusedRecoveryCodes(accountId: string): Promise<number>;
  updateWebAuthnUse(id: string, config: Record<string, unknown>, at?: number): Promise<void>;
  remove(accountId: string, id: string): Promise<boolean>;
  removeType(accountId: string, type: CredentialType, trx?: Db): Promise<number>;
}

interface Row {
  id: string;
  account_id: string;
  type: CredentialType;
  name: string | null;
  lookup: string | null;
  config: string;
  secret_enc: string | null;
  last_step: number | string | null;
  created_at: number | string;
  last_used_at: number | string | null;
  used_at: number | string | null;
  aaguid: string | null;
  attestation: AttestationKind | null;
  assurance: KeyAssurance | null;
}

const date = (v: number | string | null) => (v === null ? null : new Date(Number(v)));

function toCredential(r: Row): Credential {
  return {
    id: r.id,
    accountId: r.account_id,
    type: r.type,
    name: r.name,
    lookup: r.lookup,
    config: JSON.parse(r.config) as Record<string, unknown>,
    secretEnc: r.secret_enc,
    lastStep: r.last_step === null ? null : Number(r.last_step),
    createdAt: new Date(Number(r.created_at)),
    lastUsedAt: date(r.last_used_at),
    usedAt: date(r.used_at),
    aaguid: r.aaguid ?? null,
    attestation: r.attestation ?? null,
    assurance: r.assurance ?? null,
  };
}

export function createCredentialRepository(db: Db, now: () => number = Date.now): CredentialRepository {
  const repo: CredentialRepository = {
    async add(input, trx = db) {
      const row: Row = {
        id: randomUUID(),
        account_id: input.accountId,
        type: input.type,
        name: input.name ?? null,
        lookup: input.lookup ?? null,
        config: JSON.stringify(input.config ?? {}),
        secret_enc: input.secretEnc ?? null,
        last_step: null,
        created_at: now(),
        last_used_at: null,
        used_at: null,
        aaguid: input.aaguid ?? null,
        attestation: input.attestation ?? null,
        assurance: input.assurance ?? null,
      };
      await trx('credentials').insert(row);
      return toCredential(row);
    },
    async list(accountId, type) {
      const q = db('credentials').where({ account_id: accountId }).orderBy('created_at');
      if (type) q.andWhere({ type });
      return ((await q) as Row[]).map(toCredential);
    },
    async findByLookup(type, lookup) {
      const row = (await db('credentials').where({ type, lookup }).first()) as Row | undefined;
      return row ? toCredential(row) : undefined;
    },
    async enrolledTypes(accountId) {
      const rows = (await db('credentials')
        .distinct('type')
        .where({ account_id: accountId })
        .andWhere((w) => w.whereNot({ type: 'recovery' }).orWhereNull('used_at'))) as { type: CredentialType }[];
      return new Set(rows.map((r) => r.type));
    },
    async acceptTotpStep(id, step, at = now()) {
      const n = await db('credentials')
        .where({ id, type: 'totp' })
        .andWhere((w) => w.whereNull('last_step').orWhere('last_step', '<', step))
        .update({ last_step: step, last_used_at: at });
      return n === 1;
    },
    async consumeRecoveryCode(accountId, lookup, at = now()) {
      const n = await db('credentials')
        .where({ account_id: accountId, type: 'recovery', lookup })
        .whereNull('used_at')
        .update({ used_at: at, last_used_at: at });
      return n === 1;
    },
    async replaceRecoveryCodes(accountId, lookups) {
      await db.transaction(async (trx) => {
        await repo.removeType(accountId, 'recovery', trx);
        for (const lookup of lookups) await repo.add({ accountId, type: 'recovery', lookup }, trx);
      });
    },
    async countUnusedRecoveryCodes(accountId) {
      const row = (await db('credentials')
        .count<{ n: number | string }[]>({ n: '*' })
        .where({ account_id: accountId, type: 'recovery' })
        .whereNull('used_at')
        .first()) as { n: number | string } | undefined;
      return Number(row?.n ?? 0);
    },
    async updateWebAuthnUse(id, config, at = now()) {
      await db('credentials').where({ id, type: 'webauthn' }).update({ config: JSON.stringify(config), last_used_at: at });
    },
    async remove(accountId, id) {
      return (await db('credentials').where({ account_id: accountId, id }).delete()) > 0;
    },
    async removeType(accountId, type, trx = db) {
      return trx('credentials').where({ account_id: accountId, type }).delete();
    },
  };
  return repo;
}
