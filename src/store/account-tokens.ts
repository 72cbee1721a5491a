/**
 * Single-use links sent by mail: e-mail verification, e-mail change, password reset, "this
 * wasn't me" and re-enrolment of a second factor after an administrator's reset. Only a keyed hash of each token is stored (the caller computes it with
 * SecretBox.mac), so a copy of the database does not yield working links.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.js';

export type TokenPurpose = 'verify_email' | 'change_email' | 'reset_password' | 'not_me' | 'reenrol_factor';

export interface AccountToken {
  readonly id: string;
  readonly accountId: string;
  readonly purpose: TokenPurpose;
  /** Small JSON the link carries server-side (a new e-mail address, the interaction to return to). */
  readonly data: Record<string, string>;
  readonly expiresAt: Date;
}

export interface NewAccountToken {
  accountId: string;
  purpose: TokenPurpose;
  tokenHash: string;
  ttlSeconds: number;
  data?: Record<string, string>;
}

export interface AccountTokenRepository {
  create(input: NewAccountToken): Promise<AccountToken>;
  /**
   * A new token's row, not written: for a statement that writes it with what must not exist
   * without it (the queued mail carrying its link, store/mail-queue.ts).
   */
  row(input: NewAccountToken): AccountTokenRow;
  /** The live (unused, unexpired) token with this hash and purpose, without using it. */
  peek(tokenHash: string, purpose: TokenPurpose): Promise<AccountToken | undefined>;
  /** Uses the token once: a compare-and-set on `used_at`, so two concurrent uses cannot both win. */
  consume(tokenHash: string, purpose: TokenPurpose): Promise<AccountToken | undefined>;
  /** Whether the account has a live (unused, unexpired) token for `purpose`. */
  hasLive(accountId: string, purpose: TokenPurpose): Promise<boolean>;
  /** Marks every live token of an account for `purpose` as used (e.g. older reset links after a reset). */
  revokeAll(accountId: string, purpose: TokenPurpose): Promise<number>;
  /** Marks every live token of an account as used, whatever its purpose (the account is deleted). */
  revokeAllOfAccount(accountId: string, trx?: Db): Promise<number>;
  /** Deletes tokens expired before `before`. */
  purgeExpired(before?: number): Promise<number>;
}

/** An `account_tokens` row. */
export interface AccountTokenRow {
  id: string;
  account_id: string;
  purpose: TokenPurpose;
  token_hash: string;
  data: string | null;
  created_at: number | string;
  expires_at: number | string;
  used_at: number | string | null;
}

const toToken = (r: AccountTokenRow): AccountToken => ({
  id: r.id,
  accountId: r.account_id,
  purpose: r.purpose,
  data: r.data ? (JSON.parse(r.data) as Record<string, string>) : {},
  expiresAt: new Date(Number(r.expires_at)),
});

export function createAccountTokenRepository(db: Db, now: () => number = Date.now): AccountTokenRepository {
  const live = (tokenHash: string, purpose: TokenPurpose, at: number) =>
    db('account_tokens').where({ token_hash: tokenHash, purpose }).whereNull('used_at').where('expires_at', '>', at);
  const newRow = ({ accountId, purpose, tokenHash, ttlSeconds, data }: NewAccountToken): AccountTokenRow => {
    const at = now();
    return {
      id: randomUUID(),
      account_id: accountId,
      purpose,
      token_hash: tokenHash,
      data: data ? JSON.stringify(data) : null,
      created_at: at,
      expires_at: at + ttlSeconds * 1000,
      used_at: null,
    };
  };
  return {
    async create(input) {
      const row = newRow(input);
      await db('account_tokens').insert(row);
      return toToken(row);
    },
    row: newRow,
    async peek(tokenHash, purpose) {
      const row = (await live(tokenHash, purpose, now()).first()) as AccountTokenRow | undefined;
      return row ? toToken(row) : undefined;
    },
    async consume(tokenHash, purpose) {
      const at = now();
      const row = (await live(tokenHash, purpose, at).first()) as AccountTokenRow | undefined;
      if (!row) return undefined;
      const updated = await db('account_tokens').where({ id: row.id }).whereNull('used_at').update({ used_at: at });
      return updated === 1 ? toToken(row) : undefined;
    },
    async hasLive(accountId, purpose) {
      const row = await db('account_tokens').where({ account_id: accountId, purpose }).whereNull('used_at').where('expires_at', '>', now()).first('id');
      return Boolean(row);
    },
    async revokeAll(accountId, purpose) {
      return db('account_tokens').where({ account_id: accountId, purpose }).whereNull('used_at').update({ used_at: now() });
    },
    async revokeAllOfAccount(accountId, trx = db) {
      return trx('account_tokens').where({ account_id: accountId }).whereNull('used_at').update({ used_at: now() });
    },
    async purgeExpired(before = now()) {
      return db('account_tokens').where('expires_at', '<', before).delete();
    },
  };
}
