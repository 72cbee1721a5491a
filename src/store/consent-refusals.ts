/**
 * Claims a citizen refused to a service (`consent_refusals`): per account and service, beyond any
 * grant or browser session, until the citizen changes them in the account portal.
 */
import { statement, type Db } from './db.js';

export interface ConsentRefusalRepository {
  /** The claims this account refused to this service. */
  list(accountId: string, clientId: string): Promise<Set<string>>;
  /** Every refusal of an account, by service. */
  listByAccount(accountId: string): Promise<Map<string, Set<string>>>;
  /** Records refusals (a claim already refused stays as it was). */
  refuse(accountId: string, clientId: string, claims: Iterable<string>): Promise<void>;
  /** Withdraws refusals: the claims may be released again (within the consent given). */
  allow(accountId: string, clientId: string, claims: Iterable<string>): Promise<void>;
  /** Forgets an account's refusals (all, or one service's). */
  forget(accountId: string, clientId?: string, trx?: Db): Promise<number>;
}

export function createConsentRefusalRepository(db: Db, now: () => number = Date.now): ConsentRefusalRepository {
  // Read with every ID token and userinfo response that would release personal claims.
  const listSql = statement<{ claim: string }>(db, 'consent_refusals_list', 'select claim from consent_refusals where account_id = ? and client_id = ?');
  return {
    async list(accountId, clientId) {
      return new Set((await listSql([accountId, clientId])).map((r) => r.claim));
    },
    async listByAccount(accountId) {
      const rows = (await db('consent_refusals').where({ account_id: accountId }).select('client_id', 'claim')) as Array<{ client_id: string; claim: string }>;
      const out = new Map<string, Set<string>>();
      for (const r of rows) out.set(r.client_id, (out.get(r.client_id) ?? new Set()).add(r.claim));
      return out;
    },
    async refuse(accountId, clientId, claims) {
      const rows = [...new Set(claims)].map((claim) => ({ account_id: accountId, client_id: clientId, claim, refused_at: now() }));
      if (rows.length) await db('consent_refusals').insert(rows).onConflict(['account_id', 'client_id', 'claim']).ignore();
    },
    async allow(accountId, clientId, claims) {
      const list = [...new Set(claims)];
      if (list.length) await db('consent_refusals').where({ account_id: accountId, client_id: clientId }).whereIn('claim', list).delete();
    },
    async forget(accountId, clientId, trx = db) {
      const q = trx('consent_refusals').where({ account_id: accountId });
      return (clientId === undefined ? q : q.andWhere({ client_id: clientId })).delete();
    },
  };
}
