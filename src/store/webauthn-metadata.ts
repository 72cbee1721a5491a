/**
 * Imported FIDO Metadata Service BLOBs, verified before they are stored (factors/webauthn/metadata.ts).
 * Every instance reads the newest one from here; serial numbers only go up.
 */
import type { Db } from './db.js';

export interface MdsStatusReport {
  readonly status: string;
  readonly effectiveDate?: string;
}

export interface MdsEntry {
  readonly aaguid: string;
  readonly description: string;
  readonly keyProtection: readonly string[];
  readonly attestationRootCertificates: readonly string[];
  readonly statusReports: readonly MdsStatusReport[];
}

export interface MdsBlob {
  readonly no: number;
  readonly nextUpdate: string;
  readonly entries: readonly MdsEntry[];
}

export interface WebAuthnMetadataRepository {
  /** Serial number of the newest imported BLOB, if any. */
  latestNo(): Promise<number | undefined>;
  latest(): Promise<MdsBlob | undefined>;
  /** Stores a verified BLOB; false when one with the same or a greater serial number is already there. */
  add(blob: MdsBlob, at?: number): Promise<boolean>;
}

interface Row {
  no: number | string;
  next_update: string;
  entries: string;
  imported_at: number | string;
}

export function createWebAuthnMetadataRepository(db: Db, now: () => number = Date.now): WebAuthnMetadataRepository {
  return {
    async latestNo() {
      const row = (await db('webauthn_metadata').max<{ no: number | string | null }[]>({ no: 'no' }).first()) as { no: number | string | null } | undefined;
      return row?.no === null || row?.no === undefined ? undefined : Number(row.no);
    },
    async latest() {
      const row = (await db('webauthn_metadata').orderBy('no', 'desc').first()) as Row | undefined;
      if (!row) return undefined;
      return { no: Number(row.no), nextUpdate: row.next_update, entries: JSON.parse(row.entries) as MdsEntry[] };
    },
    async add(blob, at = now()) {
      return db.transaction(async (trx) => {
        const row = (await trx('webauthn_metadata').max<{ no: number | string | null }[]>({ no: 'no' }).first()) as { no: number | string | null } | undefined;
        if (row?.no !== null && row?.no !== undefined && Number(row.no) >= blob.no) return false;
        await trx('webauthn_metadata').insert({ no: blob.no, next_update: blob.nextUpdate, entries: JSON.stringify(blob.entries), imported_at: at });
        return true;
      });
    },
  };
}
