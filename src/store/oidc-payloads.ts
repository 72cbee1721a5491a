/**
 * Storage of oidc-provider's artefacts (sessions, interactions, codes, tokens, grants, …) in the
 * `oidc_payloads` table. Expired rows are invisible to every read and removed by {@link purgeExpired}.
 */
import { ACCOUNT_COLUMNS, toAccount, type Account, type AccountRow } from './accounts.js';
import { pgAppendSql, pgAppendValues, sqliteAppendIn, withChainRetry, type AuditEntryInput } from './audit.js';
import { isPostgres, jsonObjectOf, statement, type Db } from './db.js';
import { IDENTITY_COLUMNS } from './identities.js';
import { touchSql, touchValues, type SessionDeviceTouch } from './session-devices.js';

export type OidcPayload = Record<string, unknown> & {
  grantId?: string;
  uid?: string;
  userCode?: string;
  accountId?: string;
  consumed?: number;
};

export interface PayloadSave {
  readonly model: string;
  readonly id: string;
  readonly payload: OidcPayload;
  readonly expiresInSeconds: number | undefined;
}

export interface FoundWithContext {
  /** What was found, by model. */
  readonly payloads: ReadonlyMap<string, OidcPayload>;
  readonly grant?: OidcPayload;
  readonly session?: OidcPayload;
  readonly account?: Account;
  /** The claims the token's account refused to the token's client (consent_refusals), when the token names both. */
  readonly refusals?: { readonly accountId: string; readonly clientId: string; readonly claims: ReadonlySet<string> };
  /**
   * The account's verified identity as stored (a row of verified_identities, still sealed: see
   * IdentityRepository.fromRow), `null` when it has none; absent when no account was named.
   */
  readonly identityRow?: unknown;
  /** Whether the grant read along was made under a mandate (mandate_grants); absent when no grant was read. */
  readonly grantUnderMandate?: boolean;
}

export interface StoredPayloadSummary {
  readonly model: string;
  readonly id: string;
  readonly grantId: string | null;
  readonly accountId: string | null;
  readonly expiresAt: number | null;
  readonly payload: OidcPayload;
}

export interface OidcPayloadRepository {
  upsert(model: string, id: string, payload: OidcPayload, expiresInSeconds: number | undefined): Promise<void>;
  find(model: string, id: string): Promise<OidcPayload | undefined>;
  findByUid(model: string, uid: string): Promise<OidcPayload | undefined>;
  /**
   * An artefact issued under a grant and in a session (a code or a token) with that grant, that
   * session and the account it was issued to (each undefined when absent or expired), in one round
   * trip. `models` (one to three) are the models the id is looked up as — introspection and
   * revocation look one token value up as an access token, client credentials and refresh token.
   * A session has no grant of its own: with `clientId`, the session's grant for that client is read.
   */
  findWithContext(models: readonly string[], id: string, clientId?: string): Promise<FoundWithContext>;
  findByUserCode(model: string, userCode: string): Promise<OidcPayload | undefined>;
  consume(model: string, id: string): Promise<void>;
  /**
   * Saves several artefacts in one step (one statement on PostgreSQL): all or nothing. With
   * `device`, the session among them is also touched in its device record (store/session-devices.ts)
   * in that step: the device row is written only with the saves, never without them.
   */
  saveAll(saves: readonly PayloadSave[], device?: SessionDeviceTouch): Promise<void>;
  /**
   * Marks `consumedId` of `model` consumed and saves `saves` in one step: all or nothing. False
   * (and nothing written) when `consumedId` was already consumed or is gone — a concurrent reuse.
   * `record`, when given, is appended to the audit log in the same step (the citizen's ledger entry
   * of what the exchange released), so the tokens are never saved without it nor it without them.
   */
  consumeAndSave(model: string, consumedId: string, saves: readonly PayloadSave[], record?: AuditEntryInput): Promise<boolean>;
  destroy(model: string, id: string): Promise<void>;
  /**
   * Reads an interaction and finishes it in one step (the resume): its payload, or undefined when
   * it is gone, expired or already finished. Of two requests claiming one interaction, one gets it.
   */
  claimInteraction(id: string): Promise<OidcPayload | undefined>;
  /** Saves a finished interaction again: only for the request that claimed it (the resume's logout-first branch). */
  reviveInteraction(id: string, payload: OidcPayload, expiresInSeconds: number | undefined): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
  /** Live artefacts of one model for one account, e.g. a citizen's sessions or grants. */
  listByAccount(accountId: string, model: string): Promise<StoredPayloadSummary[]>;
  /** Live artefacts of one model across every account (newest expiry first), e.g. all sessions. */
  listByModel(model: string, opts?: { accountId?: string; limit?: number }): Promise<StoredPayloadSummary[]>;
  /**
   * Deletes an account's grants (all, or one client's) with every token issued under them;
   * returns the grant ids. A withdrawn consent and a deleted account both come to this.
   */
  revokeGrants(accountId: string, clientId?: string): Promise<string[]>;
  /**
   * The newest live grant of an account for a client, of its own (not one made under a mandate),
   * and the claims the account refused to the client (consent_refusals), in one statement.
   */
  latestGrant(accountId: string, clientId: string): Promise<{ grant: StoredPayloadSummary | undefined; refused: Set<string> }>;
  /** Deletes expired rows; returns how many. */
  purgeExpired(now?: number): Promise<number>;
}

interface Row {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  account_id: string | null;
  expires_at: number | string | null;
  consumed_at: number | string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/**
 * The models revoked with their grant (revokeByGrantId), as in oidc-provider's reference adapter: what
 * was issued under a grant. An interaction names the grant of the session it started in, but is not
 * part of it: a logout that revokes that grant (the engine's "log the other account out first" at
 * the resume) must not take the interaction the citizen is finishing with it.
 */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

/**
 * The model whose destroyed records stay as tombstones until they expire: an interaction. A step
 * saves its interaction without reading it again (interactions/kit.ts finishWith); were a finished
 * interaction deleted, a save racing the resume would write it back, resumable a second time.
 */
const TOMBSTONED = 'Interaction';
/** What a tombstone keeps: its key and expiry; the time it was finished is the statement's first value. */
const TOMBSTONE_SET = "consumed_at = ?, payload = '{}', grant_id = null, uid = null, user_code = null, account_id = null";

function toPayload(row: Pick<Row, 'payload' | 'consumed_at'>): OidcPayload {
  const payload = JSON.parse(row.payload) as OidcPayload;
  if (row.consumed_at !== null && row.consumed_at !== undefined) {
    payload.consumed = Math.floor(Number(row.consumed_at) / 1000);
  }
  return payload;
}

function toSummary(r: Row): StoredPayloadSummary {
  return {
    model: r.model,
    id: r.id,
    grantId: r.grant_id,
    accountId: r.account_id,
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    payload: toPayload(r),
  };
}

const SUMMARY_COLUMNS = ['model', 'id', 'payload', 'grant_id', 'account_id', 'expires_at', 'consumed_at'];

/** The artefacts, grant, session, account and refusals one findWithContext statement returned. */
function contextOf(rows: Pick<Row, 'model' | 'payload' | 'consumed_at'>[], models: readonly string[]): FoundWithContext {
  const found = new Map<string, OidcPayload>();
  let grant: OidcPayload | undefined;
  let session: OidcPayload | undefined;
  let account: Account | undefined;
  const refused = new Set<string>();
  let identityRow: unknown = null;
  let grantUnderMandate = false;
  for (const row of rows) {
    if (row.model === 'Refusal') refused.add(row.payload);
    else if (row.model === 'Account') account = toAccount(JSON.parse(row.payload) as AccountRow);
    else if (row.model === 'Identity') identityRow = JSON.parse(row.payload) as unknown;
    else if (row.model === 'Mandate') grantUnderMandate = true;
    else if (models.includes(row.model)) found.set(row.model, toPayload(row));
    else if (row.model === 'Grant') grant = toPayload(row);
    else if (row.model === 'Session') session = toPayload(row);
  }
  // Refusals are read only when the id named exactly one artefact: then they are its (account, client)'s.
  const named = rows.find((r) => models.includes(r.model));
  const { accountId, clientId } = (named ? JSON.parse(named.payload) : {}) as { accountId?: unknown; clientId?: unknown };
  const refusals = typeof accountId === 'string' && typeof clientId === 'string' && found.size === 1 ? { accountId, clientId, claims: refused } : undefined;
  return {
    payloads: found,
    grant,
    session,
    account,
    ...(refusals ? { refusals } : {}),
    ...(account ? { identityRow } : {}),
    ...(grant ? { grantUnderMandate } : {}),
  };
}

/** The statements of every protocol request, prepared once per connection (store/db.ts). */
function preparedStatements(db: Db) {
  /** What the artefact's row names, for a lookup by key (see findWithContext). */
  const namedBy = (column: string) => `= (select ${column} from t limit 1)`;
  const LIVE = '(expires_at is null or expires_at > ?)';
  const TOMBSTONE = `update oidc_payloads set ${TOMBSTONE_SET} where model = '${TOMBSTONED}' and id = ?`;
  const CLAIM_READ = `select payload from oidc_payloads where model = '${TOMBSTONED}' and id = ? and consumed_at is null and ${LIVE}`;
  const jsonOf = (columns: readonly string[]) => jsonObjectOf(db, columns);
  /** The grant a session's payload holds for the client id bound as the statement's parameter. */
  // Any client id a request names, as text: SQLite's `->` would read it as a JSON path ('' or '$x' fail).
  const sessionGrant = isPostgres(db)
    ? "payload::json->'authorizations'->(?::text)->>'grantId'"
    : "(select json_extract(a.value, '$.grantId') from json_each(payload, '$.authorizations') a where a.key = ?)";
  // A re-saved artefact replaces its payload and moves its indexes (grant, uid, user code) with it.
  // A finished interaction is a tombstone (see destroy): a step's save that loses the race with the
  // resume leaves it finished instead of bringing it back.
  const RESAVE = `on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
    user_code = excluded.user_code, account_id = excluded.account_id, expires_at = excluded.expires_at, consumed_at = null
    where oidc_payloads.model <> '${TOMBSTONED}' or oidc_payloads.consumed_at is null`;
  const UPSERT = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, expires_at, consumed_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, null)
       ${RESAVE}`;
  const sql = {
    upsert: statement(db, 'payload_upsert', UPSERT),
    find: statement<Pick<Row, 'payload' | 'consumed_at'>>(db, 'payload_find', `select payload, consumed_at from oidc_payloads where model = ? and id = ? and ${LIVE}`),
    // The artefact (as up to three models), then its grant, its session and its account, the
    // account's verified identity and whether the grant was made under a mandate. The grant,
    // session and account are those named by the artefact's row even when it expired, each only
    // while it lives itself; a session names no grant, so its grant for the client given is read.
    // The account comes as a JSON object of ACCOUNT_COLUMNS in `payload`, the identity as one of
    // IDENTITY_COLUMNS (still sealed). Each is looked up by its whole key (a scalar subquery):
    // written as `in (select …)` or `= any(array(…))`, PostgreSQL's plan went through every grant
    // and every session when the statistics were older than the table (0.5–0.9 ms per read once
    // sign-ins had added grants).
    findWithContext: statement<Pick<Row, 'model' | 'payload' | 'consumed_at'>>(
      db,
      'payload_find_with_context',
      `with t as (select model, payload, consumed_at, expires_at, grant_id, account_id from oidc_payloads where id = ? and model in (?, ?, ?)),
       g as (select coalesce((select grant_id from t limit 1), (select ${sessionGrant} from t where model = 'Session' limit 1)) as id)
       select model, payload, consumed_at from t where ${LIVE}
       union all
       select model, payload, consumed_at from oidc_payloads where model = 'Grant' and id = (select id from g) and ${LIVE}
       union all
       select model, payload, consumed_at from oidc_payloads
        where model = 'Session' and uid ${namedBy(isPostgres(db) ? "payload::json->>'sessionUid'" : "json_extract(payload, '$.sessionUid')")} and ${LIVE}
       union all
       select 'Account', ${jsonOf(ACCOUNT_COLUMNS)}, null
        from accounts where id ${namedBy('account_id')}
       union all
       select 'Identity', ${jsonOf(IDENTITY_COLUMNS)}, null
        from verified_identities where account_id ${namedBy('account_id')}
       union all
       select 'Mandate', mandate_grants.mandate_id, null from mandate_grants join mandates on mandates.id = mandate_grants.mandate_id
        where mandate_grants.grant_id = (select id from g)
       union all
       select 'Refusal', claim, null from consent_refusals
        where (select count(*) from t) = 1 and account_id ${namedBy('account_id')} and client_id ${namedBy(isPostgres(db) ? "payload::json->>'clientId'" : "json_extract(payload, '$.clientId')")}`,
    ),
    // An account's live grants for a client but those bound to a mandate (any mandate_grants row,
    // whatever became of its mandate), then the claims the account refused to the client, as rows
    // of model 'Refusal' with the claim in `payload`.
    latestGrant: statement<Row>(
      db,
      'payload_latest_grant',
      `select ${SUMMARY_COLUMNS.join(', ')} from oidc_payloads g
        where account_id = ? and model = 'Grant' and ${LIVE}
          and ${isPostgres(db) ? "payload::json->>'clientId'" : "json_extract(payload, '$.clientId')"} = ?
          and not exists (select 1 from mandate_grants where mandate_grants.grant_id = g.id)
       union all
       select 'Refusal', null, claim, null, null, null, null from consent_refusals where account_id = ? and client_id = ?`,
    ),
    findByUid: statement<Pick<Row, 'payload' | 'consumed_at'>>(db, 'payload_find_uid', `select payload, consumed_at from oidc_payloads where model = ? and uid = ? and ${LIVE} limit 1`),
    findByUserCode: statement<Pick<Row, 'payload' | 'consumed_at'>>(db, 'payload_find_user_code', `select payload, consumed_at from oidc_payloads where model = ? and user_code = ? and ${LIVE} limit 1`),
    consume: statement(db, 'payload_consume', 'update oidc_payloads set consumed_at = ? where model = ? and id = ?'),
    destroy: statement(db, 'payload_destroy', 'delete from oidc_payloads where model = ? and id = ?'),
    // Claimed: the payload comes back as it was, and goes from the row in the same statement.
    claim: statement<Pick<Row, 'payload'>>(
      db,
      'payload_claim_interaction',
      isPostgres(db)
        ? `with old as (select id, payload from oidc_payloads where model = '${TOMBSTONED}' and id = ? and consumed_at is null and ${LIVE} for update)
           update oidc_payloads set ${TOMBSTONE_SET} from old
            where oidc_payloads.model = '${TOMBSTONED}' and oidc_payloads.id = old.id and oidc_payloads.consumed_at is null
           returning old.payload`
        : CLAIM_READ, // SQLite: read, then tombstone, in one transaction (claimInteraction)
    ),
    revive: statement(
      db,
      'payload_revive_interaction',
      `update oidc_payloads set payload = ?, grant_id = ?, uid = ?, user_code = ?, account_id = ?, expires_at = ?, consumed_at = null where model = '${TOMBSTONED}' and id = ?`,
    ),
    // The payload goes; the row stays, consumed, until it expires (purgeExpired).
    tombstone: statement(db, 'payload_tombstone', TOMBSTONE),
    revokeByGrantId: statement(db, 'payload_revoke_grant', 'delete from oidc_payloads where grant_id = ?'),
  };
  // Several rows in one PostgreSQL statement: one array per column (see columnsOf).
  const INSERT_ROWS = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, expires_at, consumed_at)
     select m, i, p, g, u, c, a, e, null
     from unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[]) as t(m, i, p, g, u, c, a, e)`;
  // Consume and saves in one statement on PostgreSQL: the inserts happen only if the update did.
  const CONSUMED = `consumed as (
       update oidc_payloads set consumed_at = ? where model = ? and id = ? and consumed_at is null and ${LIVE} returning id
     )`;
  const GATE = 'exists (select 1 from consumed)';
  const consumeAndSavePg = statement<{ id: string }>(
    db,
    'payload_consume_and_save',
    `with ${CONSUMED}
     ${INSERT_ROWS}
     where ${GATE}
     ${RESAVE}
     returning id`,
  );
  // The same with an audit append: its row comes back with a null id.
  const consumeSaveAndRecordPg = statement<{ id: string | null }>(
    db,
    'payload_consume_save_record',
    `with ${CONSUMED},
     saved as (${INSERT_ROWS} where ${GATE} ${RESAVE} returning id),
     recorded as (${pgAppendSql(GATE)})
     select id from saved
     union all
     select null from recorded`,
  );
  const saveAllPg = statement(
    db,
    'payload_save_all',
    `${INSERT_ROWS}
     ${RESAVE}`,
  );
  // The same with a session's device touch, written only once the session's row is.
  const saveAllAndTouchPg = statement(
    db,
    'payload_save_all_touch',
    `with saved as (${INSERT_ROWS} ${RESAVE} returning model),
     touched as (${touchSql("exists (select 1 from saved where model = 'Session')")})
     select model from saved`,
  );
  return { UPSERT, TOMBSTONE, CLAIM_READ, sql, consumeAndSavePg, consumeSaveAndRecordPg, saveAllPg, saveAllAndTouchPg };
}

export function createOidcPayloadRepository(db: Db, now: () => number = Date.now): OidcPayloadRepository {
  const live = (q: ReturnType<Db>) =>
    q.where((w) => w.whereNull('expires_at').orWhere('expires_at', '>', now()));

  const { UPSERT, TOMBSTONE, CLAIM_READ, sql, consumeAndSavePg, consumeSaveAndRecordPg, saveAllPg, saveAllAndTouchPg } = preparedStatements(db);
  const rowOf = (model: string, id: string, payload: OidcPayload, expiresIn: number | undefined) => [
    model,
    id,
    JSON.stringify(payload),
    GRANTABLE.has(model) ? str(payload.grantId) : null,
    str(payload.uid),
    str(payload.userCode),
    str(payload.accountId),
    expiresIn ? now() + expiresIn * 1000 : null,
  ];
  // The last save of an artefact wins, as it would in separate statements (and one statement may
  // not update a row twice).
  const rowsOf = (saves: readonly PayloadSave[]) =>
    [...new Map(saves.map((x) => [`${x.model}\u0000${x.id}`, x])).values()].map((x) => rowOf(x.model, x.id, x.payload, x.expiresInSeconds));
  const columnsOf = (rows: ReturnType<typeof rowOf>[]) => Array.from({ length: 8 }, (_, c) => rows.map((r) => r[c]));
  const first = (rows: Pick<Row, 'payload' | 'consumed_at'>[]) => (rows[0] ? toPayload(rows[0]) : undefined);

  const repo: OidcPayloadRepository = {
    async upsert(model, id, payload, expiresIn) {
      // One round trip; a re-saved artefact moves its indexes (grant, uid, user code) with it.
      await sql.upsert(rowOf(model, id, payload, expiresIn));
    },
    async find(model, id) {
      const rows = await sql.find([model, id, now()]);
      if (model === TOMBSTONED && rows[0] && rows[0].consumed_at !== null && rows[0].consumed_at !== undefined) return undefined;
      return first(rows);
    },
    findByUid: async (model, uid) => first(await sql.findByUid([model, uid, now()])),
    async findWithContext(models, id, clientId) {
      if (models.length < 1 || models.length > 3) throw new Error('findWithContext looks an id up as one to three models');
      const at = now();
      const rows = await sql.findWithContext([id, models[0], models[1] ?? models[0], models[2] ?? models[0], clientId ?? null, at, at, at]);
      return contextOf(rows, models);
    },
    findByUserCode: async (model, userCode) => first(await sql.findByUserCode([model, userCode, now()])),
    async consume(model, id) {
      await sql.consume([now(), model, id]);
    },
    async saveAll(saves, device) {
      const rows = rowsOf(saves);
      if (rows.length === 0) return;
      if (device && !saves.some((x) => x.model === 'Session' && x.payload.uid === device.sessionUid)) throw new Error('a device is touched with its session');
      if (isPostgres(db)) {
        if (device) await saveAllAndTouchPg([...columnsOf(rows), ...touchValues(device, now())]);
        else await saveAllPg(columnsOf(rows));
        return;
      }
      await db.transaction(async (trx) => {
        for (const row of rows) await trx.raw(UPSERT, row);
        if (device) await trx.raw(touchSql(), touchValues(device, now()));
      });
    },
    async consumeAndSave(model, consumedId, saves, record) {
      if (saves.length === 0) throw new Error('consumeAndSave needs something to save');
      const rows = rowsOf(saves);
      // Appending to a chain can lose to a concurrent append (audit.ts); then the whole step runs again.
      return withChainRetry(async () => {
        const at = now();
        if (isPostgres(db)) {
          const consumeAndSaveValues = [at, model, consumedId, at, ...columnsOf(rows)];
          if (!record) return (await consumeAndSavePg(consumeAndSaveValues)).length === rows.length;
          const written = await consumeSaveAndRecordPg([...consumeAndSaveValues, ...pgAppendValues(record, at)]);
          return written.filter((r) => r.id !== null).length === rows.length && written.length === rows.length + 1;
        }
        return db.transaction(async (trx) => {
          const changed = await trx('oidc_payloads')
            .where({ model, id: consumedId })
            .whereNull('consumed_at')
            .andWhere((w) => w.whereNull('expires_at').orWhere('expires_at', '>', at))
            .update({ consumed_at: at });
          if (changed !== 1) return false;
          for (const row of rows) await trx.raw(UPSERT, row);
          if (record) await sqliteAppendIn(trx, record, at);
          return true;
        });
      });
    },
    async destroy(model, id) {
      if (model === TOMBSTONED) await sql.tombstone([now(), id]);
      else await sql.destroy([model, id]);
    },
    async claimInteraction(id) {
      const at = now();
      if (isPostgres(db)) return first((await sql.claim([id, at, at])).map((r) => ({ ...r, consumed_at: null })));
      return db.transaction(async (trx) => {
        const rows = (await trx.raw(CLAIM_READ, [id, at])) as Pick<Row, 'payload'>[];
        if (!rows[0]) return undefined;
        await trx.raw(TOMBSTONE, [at, id]);
        return toPayload({ payload: rows[0].payload, consumed_at: null });
      });
    },
    async reviveInteraction(id, payload, expiresIn) {
      const [, , ...row] = rowOf(TOMBSTONED, id, payload, expiresIn);
      await sql.revive([...row, id]);
    },
    async revokeByGrantId(grantId) {
      await sql.revokeByGrantId([grantId]);
    },
    async listByAccount(accountId, model) {
      const rows = (await live(
        db('oidc_payloads')
          .select(SUMMARY_COLUMNS)
          .where({ account_id: accountId, model }),
      )) as Row[];
      return rows.map(toSummary);
    },
    async listByModel(model, opts = {}) {
      const q = live(db('oidc_payloads').select(SUMMARY_COLUMNS).where({ model }));
      if (opts.accountId) q.andWhere({ account_id: opts.accountId });
      const rows = (await q.orderBy('expires_at', 'desc').limit(opts.limit ?? 1000)) as Row[];
      return rows.map(toSummary);
    },
    async revokeGrants(accountId, clientId) {
      const grants = (await repo.listByAccount(accountId, 'Grant')).filter((g) => clientId === undefined || g.payload.clientId === clientId);
      for (const g of grants) {
        await repo.revokeByGrantId(g.id);
        await repo.destroy('Grant', g.id);
      }
      return grants.map((g) => g.id);
    },
    async latestGrant(accountId, clientId) {
      const rows = await sql.latestGrant([accountId, now(), clientId, accountId, clientId]);
      const refused = new Set(rows.filter((r) => r.model === 'Refusal').map((r) => r.payload));
      // A grant made under a mandate (mandate_grants) holds the consent given for the principal's
      // data: it is never carried over as the account's own consent (the statement leaves it out).
      const mine = rows
        .filter((r) => r.model === 'Grant')
        .map(toSummary)
        .filter((g) => g.payload.clientId === clientId && g.payload.accountId === accountId);
      mine.sort((a, b) => (b.expiresAt ?? Infinity) - (a.expiresAt ?? Infinity));
      return { grant: mine[0], refused };
    },
    async purgeExpired(at = now()) {
      return db('oidc_payloads').where('expires_at', '<=', at).delete();
    },
  };
  return repo;
}
