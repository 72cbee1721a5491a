/**
 * Certificate revocation lists of the eID CAs, stored after verification (`kapija certs refresh`),
 * one row per issuing CA: the newest. PostgreSQL is shared by every instance, so a refresh is in
 * force on all of them at once and survives restarts. A CRL older than the stored one (thisUpdate
 * earlier, or a lower CRL number) is refused: replaying an old CRL must not un-revoke a card.
 */
import { isPostgres, type Db } from './db.js';

export interface StoredCrl {
  readonly issuerFingerprint: string;
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly crlNumber: string | undefined;
  readonly revokedCount: number;
  readonly der: Buffer;
  /** Where it came from: the URL or the file name. */
  readonly source: string;
  readonly storedAt: Date;
}

/** The newest stored CRL's freshness, without its (possibly large) body. */
export type StoredCrlHead = Omit<StoredCrl, 'der'>;

export type CrlPutResult = 'stored' | 'unchanged' | 'older';

export interface CertificateCrlRepository {
  /** Stores a verified CRL unless the stored one for the same CA is newer ('older') or the same ('unchanged'). */
  put(crl: Omit<StoredCrl, 'storedAt'>, at?: Date): Promise<CrlPutResult>;
  head(issuerFingerprint: string): Promise<StoredCrlHead | undefined>;
  get(issuerFingerprint: string): Promise<StoredCrl | undefined>;
  list(): Promise<StoredCrlHead[]>;
}

interface Row {
  issuer_fingerprint: string;
  issuer: string;
  this_update: number | string;
  next_update: number | string;
  crl_number: string | null;
  revoked_count: number | string;
  der?: string;
  source: string;
  stored_at: number | string;
}

const HEAD_COLUMNS = ['issuer_fingerprint', 'issuer', 'this_update', 'next_update', 'crl_number', 'revoked_count', 'source', 'stored_at'];

function head(row: Row): StoredCrlHead {
  return {
    issuerFingerprint: row.issuer_fingerprint,
    issuer: row.issuer,
    thisUpdate: new Date(Number(row.this_update)),
    nextUpdate: new Date(Number(row.next_update)),
    crlNumber: row.crl_number ?? undefined,
    revokedCount: Number(row.revoked_count),
    source: row.source,
    storedAt: new Date(Number(row.stored_at)),
  };
}

/** Whether `a` is older than `b`: by CRL number when both have one, else by thisUpdate. */
function older(a: { crlNumber: string | undefined; thisUpdate: Date }, b: { crlNumber: string | undefined; thisUpdate: Date }): boolean {
  if (a.crlNumber !== undefined && b.crlNumber !== undefined && a.crlNumber !== b.crlNumber) return BigInt(a.crlNumber) < BigInt(b.crlNumber);
  return a.thisUpdate.getTime() < b.thisUpdate.getTime();
}

export function createCertificateCrlRepository(db: Db): CertificateCrlRepository {
  return {
    async put(crl, at = new Date()) {
      const row = {
        issuer: crl.issuer,
        this_update: crl.thisUpdate.getTime(),
        next_update: crl.nextUpdate.getTime(),
        crl_number: crl.crlNumber ?? null,
        revoked_count: crl.revokedCount,
        der: crl.der.toString('base64'),
        source: crl.source,
        stored_at: at.getTime(),
      };
      // Two refreshes at once: on PostgreSQL the second waits on the row lock and compares with what
      // the first stored; the first CRL of a CA is inserted at most once (a loser compares instead).
      for (;;) {
        const outcome = await db.transaction(async (trx): Promise<CrlPutResult | 'retry'> => {
          const query = trx('certificate_crls').select(HEAD_COLUMNS).where({ issuer_fingerprint: crl.issuerFingerprint });
          const existing = (await (isPostgres(db) ? query.forUpdate() : query).first()) as Row | undefined;
          if (!existing) {
            const inserted = (await trx('certificate_crls')
              .insert({ issuer_fingerprint: crl.issuerFingerprint, ...row })
              .onConflict('issuer_fingerprint')
              .ignore()
              .returning('issuer_fingerprint')) as unknown[];
            return inserted.length ? 'stored' : 'retry';
          }
          const current = head(existing);
          if (older(crl, current)) return 'older';
          if (!older(current, crl) && current.nextUpdate.getTime() === crl.nextUpdate.getTime()) return 'unchanged';
          await trx('certificate_crls').where({ issuer_fingerprint: crl.issuerFingerprint }).update(row);
          return 'stored';
        });
        if (outcome !== 'retry') return outcome;
      }
    },
    async head(issuerFingerprint) {
      const row = (await db('certificate_crls').select(HEAD_COLUMNS).where({ issuer_fingerprint: issuerFingerprint }).first()) as Row | undefined;
      return row ? head(row) : undefined;
    },
    async get(issuerFingerprint) {
      const row = (await db('certificate_crls').where({ issuer_fingerprint: issuerFingerprint }).first()) as Row | undefined;
      return row ? { ...head(row), der: Buffer.from(row.der ?? '', 'base64') } : undefined;
    },
    async list() {
      const rows = (await db('certificate_crls').select(HEAD_COLUMNS).orderBy('issuer')) as Row[];
      return rows.map(head);
    },
  };
}
