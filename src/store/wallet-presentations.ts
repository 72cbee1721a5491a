/**
 * Presentation requests of wallet sign-ins (migrations/20261206160001_wallet_presentations.ts). Every
 * change of status is a compare-and-set on the current status, so a request fetched, answered or
 * redeemed twice — at one instance or two — changes once, and only the first caller learns it won.
 * The caller seals the response key and the outcome and gives only a keyed hash of the response code.
 */
import type { Db } from './db.js';

export type PresentationFlow = 'same_device' | 'cross_device';
export type PresentationStatus = 'pending' | 'fetched' | 'answered' | 'refused' | 'redeemed';

export interface PresentationRequest {
  readonly id: string;
  readonly interactionUid: string;
  readonly flow: PresentationFlow;
  readonly status: PresentationStatus;
  readonly clientId: string;
  readonly nonce: string;
  readonly state: string;
  /** The sealed private key the answer is encrypted to. */
  readonly responseKey: string;
  /** The sealed outcome, once answered or refused. */
  readonly outcome: string | null;
  readonly expiresAt: number;
}

export interface WalletPresentationRepository {
  create(input: Omit<PresentationRequest, 'status' | 'outcome' | 'expiresAt'> & { ttlMs: number }): Promise<void>;
  /** A live (not expired) request. */
  find(id: string): Promise<PresentationRequest | undefined>;
  /** The live requests of one sign-in, newest first. */
  listForInteraction(interactionUid: string): Promise<PresentationRequest[]>;
  /** pending → fetched; false when it was fetched already, answered, or has expired. */
  markFetched(id: string): Promise<boolean>;
  /**
   * fetched → answered or refused, with the sealed outcome (and for an answer to a same-device
   * request, the keyed hash of its response code); false when another answer came first.
   */
  settle(id: string, status: 'answered' | 'refused', outcome: string, responseCodeHash?: string): Promise<boolean>;
  /**
   * Redeems an answered or refused request once (→ redeemed): by its response code's hash (same
   * device) or its id (cross device), only for `interactionUid`. The row as it was, or undefined.
   */
  redeem(by: { responseCodeHash: string } | { id: string; flow: 'cross_device' }, interactionUid: string): Promise<PresentationRequest | undefined>;
  purgeExpired(before?: number): Promise<number>;
}

interface Row {
  id: string;
  interaction_uid: string;
  flow: PresentationFlow;
  status: PresentationStatus;
  client_id: string;
  nonce: string;
  state: string;
  response_key: string;
  response_code_hash: string | null;
  outcome: string | null;
  created_at: number | string;
  expires_at: number | string;
}

const toRequest = (r: Row): PresentationRequest => ({
  id: r.id,
  interactionUid: r.interaction_uid,
  flow: r.flow,
  status: r.status,
  clientId: r.client_id,
  nonce: r.nonce,
  state: r.state,
  responseKey: r.response_key,
  outcome: r.outcome,
  expiresAt: Number(r.expires_at),
});

export function createWalletPresentationRepository(db: Db, now: () => number = Date.now): WalletPresentationRepository {
  const table = () => db('wallet_presentations');
  return {
    async create(input) {
      const at = now();
      const row: Row = {
        id: input.id,
        interaction_uid: input.interactionUid,
        flow: input.flow,
        status: 'pending',
        client_id: input.clientId,
        nonce: input.nonce,
        state: input.state,
        response_key: input.responseKey,
        response_code_hash: null,
        outcome: null,
        created_at: at,
        expires_at: at + input.ttlMs,
      };
      await table().insert(row);
    },
    async find(id) {
      const row = (await table().where({ id }).where('expires_at', '>', now()).first()) as Row | undefined;
      return row ? toRequest(row) : undefined;
    },
    async listForInteraction(interactionUid) {
      const rows = (await table().where({ interaction_uid: interactionUid }).where('expires_at', '>', now()).orderBy('created_at', 'desc')) as Row[];
      return rows.map(toRequest);
    },
    async markFetched(id) {
      return (await table().where({ id, status: 'pending' }).where('expires_at', '>', now()).update({ status: 'fetched' })) === 1;
    },
    async settle(id, status, outcome, responseCodeHash) {
      const changed = await table()
        .where({ id, status: 'fetched' })
        .where('expires_at', '>', now())
        .update({ status, outcome, response_code_hash: responseCodeHash ?? null });
      return changed === 1;
    },
    async redeem(by, interactionUid) {
      const where = 'responseCodeHash' in by ? { response_code_hash: by.responseCodeHash, flow: 'same_device' } : { id: by.id, flow: by.flow };
      const live = () => table().where(where).where({ interaction_uid: interactionUid }).whereIn('status', ['answered', 'refused']).where('expires_at', '>', now());
      const row = (await live().first()) as Row | undefined;
      if (!row) return undefined;
      const changed = await live().where({ id: row.id }).update({ status: 'redeemed' });
      return changed === 1 ? toRequest(row) : undefined;
    },
    async purgeExpired(before = now()) {
      return table().where('expires_at', '<=', before).delete();
    },
  };
}
