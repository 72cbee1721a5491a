/**
 * Citizens' accounts. Usernames are stored lower-case and compared that way.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { jsonObjectOf, statement, type Db } from './db.js';
import { IDENTITY_COLUMNS } from './identities.js';

/** `pending`: self-registered, e-mail not yet verified; cannot sign in until it is. */
export type AccountStatus = 'active' | 'locked' | 'disabled' | 'pending';

export interface Account {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly emailVerified: boolean;
  readonly givenName: string | null;
  readonly familyName: string | null;
  readonly birthdate: string | null;
  readonly locale: string | null;
  readonly status: AccountStatus;
  /** The national identifier, when the citizen has one on record. */
  readonly jmbg: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewAccount {
  username: string;
  email?: string | null;
  emailVerified?: boolean;
  givenName?: string | null;
  familyName?: string | null;
  birthdate?: string | null;
  locale?: string | null;
  status?: AccountStatus;
  /** Validated by the caller (oidc/jmbg.ts). */
  jmbg?: string | null;
}

export interface AccountRepository {
  /** @throws on a duplicate username (unique key). */
  create(input: NewAccount, passwordHash: string | null): Promise<Account>;
  findById(id: string): Promise<Account | undefined>;
  /**
   * The account with its verified identity as stored (a row of verified_identities, still sealed:
   * see IdentityRepository.fromRow; null when it has none), in one statement.
   */
  findByIdWithIdentity(id: string): Promise<{ account: Account; identityRow: unknown } | undefined>;
  findByUsername(username: string): Promise<Account | undefined>;
  /** The account and its password hash, for sign-in only. */
  findCredentialsByUsername(username: string): Promise<{ account: Account; passwordHash: string | null } | undefined>;
  setPasswordHash(id: string, hash: string): Promise<void>;
  /** Removes the password: it no longer signs in until a new one is set (by a reset link). */
  clearPassword(id: string): Promise<void>;
  list(limit?: number): Promise<Account[]>;
  /**
   * Erases the personal data of a deleted account; the id stays (pseudonymous) so that ledger and
   * audit entries remain verifiable without naming anyone.
   */
  erase(id: string, trx?: Db): Promise<void>;
  /** The account's random WebAuthn user handle, created on first use. */
  webauthnUserId(id: string): Promise<string>;
  findByWebAuthnUserId(handle: string): Promise<Account | undefined>;
  /** Accounts whose e-mail address is `email` (compared case-insensitively). */
  findByEmail(email: string): Promise<Account[]>;
  /** Sets the e-mail address as verified; a `pending` account becomes `active`. */
  setVerifiedEmail(id: string, email: string): Promise<void>;
  /** Deletes a `pending` account created before `createdBefore` (a squatted, never verified username). */
  deleteStalePending(username: string, createdBefore: number): Promise<boolean>;
  /** Deletes every `pending` account created before `createdBefore` (registrations never verified); how many. */
  purgeStalePending(createdBefore: number): Promise<number>;
  /** Accounts whose username, e-mail or name contains `query` (case-insensitive), by username. */
  search(query: string, limit?: number): Promise<Account[]>;
  /** False for an unknown account; `trx`: inside the caller's transaction. */
  setStatus(id: string, status: AccountStatus, trx?: Db): Promise<boolean>;
  /**
   * Marks (`true`) that an administrator removed the account's second factors, so that a new one
   * is enrolled only through the link mailed to the citizen; cleared (`false`) once one is.
   */
  setFactorsReset(id: string, pending: boolean, trx?: Db): Promise<void>;
  /** Whether an administrator's factor reset still waits for the citizen's re-enrolment. */
  factorsResetPending(id: string): Promise<boolean>;
}

interface Row {
  id: string;
  username: string;
  email: string | null;
  email_verified: boolean | number;
  given_name: string | null;
  family_name: string | null;
  birthdate: string | null;
  locale: string | null;
  status: AccountStatus;
  jmbg?: string | null;
  password_hash: string | null;
  created_at: number | string;
  updated_at: number | string;
}

/** An account's row, without its password hash. */
export type AccountRow = Omit<Row, 'password_hash'>;

/** An account as plain JSON (the citizen's export, the administrators' view); never a secret. */
export function accountRecord(a: Account) {
  return {
    id: a.id,
    username: a.username,
    email: a.email,
    email_verified: a.emailVerified,
    given_name: a.givenName,
    family_name: a.familyName,
    birthdate: a.birthdate,
    locale: a.locale,
    status: a.status,
    created_at: a.createdAt.toISOString(),
  };
}

export const normaliseUsername = (u: string) => u.trim().normalize('NFKC').toLowerCase();

/** The columns an account is read with: every one but the password hash. */
export const ACCOUNT_COLUMNS = ['id', 'username', 'email', 'email_verified', 'given_name', 'family_name', 'birthdate', 'locale', 'status', 'jmbg', 'created_at', 'updated_at'] as const;

/** An account from its row ({@link ACCOUNT_COLUMNS}), as either store returns it. */
export function toAccount(r: AccountRow): Account {
  return {
    id: r.id,
    username: r.username,
    email: r.email,
    emailVerified: Boolean(r.email_verified),
    givenName: r.given_name,
    familyName: r.family_name,
    birthdate: r.birthdate,
    locale: r.locale,
    status: r.status,
    jmbg: r.jmbg ?? null,
    createdAt: new Date(Number(r.created_at)),
    updatedAt: new Date(Number(r.updated_at)),
  };
}

export function createAccountRepository(db: Db, now: () => number = Date.now): AccountRepository {
  // Every token and userinfo request reads the account: prepared once per connection, with its
  // columns named (a prepared `*` fails once a later migration adds a column).
  const selectById = statement<AccountRow>(
    db,
    'account_by_id',
    `select ${ACCOUNT_COLUMNS.join(', ')} from accounts where id = ?`,
  );
  // The same, with the account's verified identity as a JSON object of its columns.
  const selectByIdWithIdentity = statement<AccountRow & { identity: string | null }>(
    db,
    'account_by_id_with_identity',
    `select ${ACCOUNT_COLUMNS.join(', ')},
       (select ${jsonObjectOf(db, IDENTITY_COLUMNS)} from verified_identities where account_id = accounts.id) as identity
     from accounts where id = ?`,
  );
  const byUsername = (username: string) =>
    db('accounts').where({ username: normaliseUsername(username) }).first() as Promise<Row | undefined>;
  return {
    async create(input, passwordHash) {
      const at = now();
      const row: Row = {
        id: randomUUID(),
        username: normaliseUsername(input.username),
        email: input.email ?? null,
        email_verified: input.emailVerified ?? false,
        given_name: input.givenName ?? null,
        family_name: input.familyName ?? null,
        birthdate: input.birthdate ?? null,
        locale: input.locale ?? null,
        status: input.status ?? 'active',
        jmbg: input.jmbg ?? null,
        password_hash: passwordHash,
        created_at: at,
        updated_at: at,
      };
      await db('accounts').insert(row);
      return toAccount(row);
    },
    async findById(id) {
      const [row] = await selectById([id]);
      return row ? toAccount(row) : undefined;
    },
    async findByIdWithIdentity(id) {
      const [row] = await selectByIdWithIdentity([id]);
      return row ? { account: toAccount(row), identityRow: row.identity === null ? null : (JSON.parse(row.identity) as unknown) } : undefined;
    },
    async findByUsername(username) {
      const row = await byUsername(username);
      return row ? toAccount(row) : undefined;
    },
    async findCredentialsByUsername(username) {
      const row = await byUsername(username);
      return row ? { account: toAccount(row), passwordHash: row.password_hash } : undefined;
    },
    async setPasswordHash(id, hash) {
      await db('accounts').where({ id }).update({ password_hash: hash, updated_at: now() });
    },
    async clearPassword(id) {
      await db('accounts').where({ id }).update({ password_hash: null, updated_at: now() });
    },
    async erase(id, trx = db) {
      await trx('accounts').where({ id }).update({
        username: `deleted-${id}`,
        email: null,
        email_verified: false,
        given_name: null,
        family_name: null,
        birthdate: null,
        locale: null,
        password_hash: null,
        webauthn_user_id: null,
        status: 'deleted',
        jmbg: null,
        updated_at: now(),
      });
    },
    async webauthnUserId(id) {
      const row = (await db('accounts').select('webauthn_user_id').where({ id }).first()) as { webauthn_user_id: string | null } | undefined;
      if (row?.webauthn_user_id) return row.webauthn_user_id;
      const handle = randomBytes(32).toString('base64url');
      await db('accounts').where({ id }).whereNull('webauthn_user_id').update({ webauthn_user_id: handle });
      const again = (await db('accounts').select('webauthn_user_id').where({ id }).first()) as { webauthn_user_id: string | null } | undefined;
      return again?.webauthn_user_id ?? handle;
    },
    async findByWebAuthnUserId(handle) {
      const row = (await db('accounts').where({ webauthn_user_id: handle }).first()) as Row | undefined;
      return row ? toAccount(row) : undefined;
    },
    async findByEmail(email) {
      const rows = (await db('accounts').whereRaw('lower(email) = ?', [email.trim().toLowerCase()]).limit(10)) as Row[];
      return rows.map(toAccount);
    },
    async setVerifiedEmail(id, email) {
      await db.transaction(async (trx) => {
        await trx('accounts').where({ id }).update({ email, email_verified: true, updated_at: now() });
        await trx('accounts').where({ id, status: 'pending' }).update({ status: 'active' });
      });
    },
    async deleteStalePending(username, createdBefore) {
      const n = await db('accounts')
        .where({ username: normaliseUsername(username), status: 'pending' })
        .where('created_at', '<', createdBefore)
        .delete();
      return n > 0;
    },
    async purgeStalePending(createdBefore) {
      return db('accounts').where({ status: 'pending' }).where('created_at', '<', createdBefore).delete();
    },
    async search(query, limit = 50) {
      const q = db('accounts').orderBy('username').limit(limit);
      const term = query.trim().normalize('NFKC').toLowerCase();
      if (term) {
        const like = `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        q.where((w) => {
          for (const column of ['username', 'email', 'given_name', 'family_name']) {
            w.orWhereRaw(`lower(${column}) like ? escape '\\'`, [like]);
          }
          w.orWhereRaw(`lower(given_name || ' ' || family_name) like ? escape '\\'`, [like]);
        });
      }
      return ((await q) as Row[]).map(toAccount);
    },
    async setStatus(id, status, trx = db) {
      return (await trx('accounts').where({ id }).update({ status, updated_at: now() })) > 0;
    },
    async setFactorsReset(id, pending, trx = db) {
      await trx('accounts').where({ id }).update({ factors_reset_at: pending ? now() : null, updated_at: now() });
    },
    async factorsResetPending(id) {
      const row = (await db('accounts').where({ id }).first('factors_reset_at')) as { factors_reset_at: number | string | null } | undefined;
      return row?.factors_reset_at != null;
    },
    async list(limit = 100) {
      const rows = (await db('accounts').orderBy('username').limit(limit)) as Row[];
      return rows.map(toAccount);
    },
  };
}
