/**
 * oidc-provider's storage adapter (the contract of node-oidc-provider `example/my_adapter.js`):
 * the Client model reads Kapija's client registry, every other model goes to `oidc_payloads`.
 */
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';
import type { OidcPayloadRepository, OidcPayload, PayloadSave, FoundWithContext } from '../store/oidc-payloads.js';
import type { Account } from '../store/accounts.js';
import type { AuditEntryInput } from '../store/audit.js';
import type { ClientRepository } from '../store/clients.js';
import type { SessionDeviceTouch } from '../store/session-devices.js';

export type AdapterConstructor = new (name: string) => Adapter;

/**
 * Writes held for the request, for atomicity first and round trips second.
 *
 * Token grants: oidc-provider consumes the presented authorization code, refresh token, device code,
 * CIBA request or pre-authorized code, then saves
 * the access token (and the refresh token). A failure between those writes (a database outage) would
 * leave the service with a consumed code or token and nothing usable in exchange, and its retry
 * would look like reuse and revoke the grant. So in those grants the consume and the saves are held
 * for the request and written together in one step once the response is ready
 * ({@link AdapterWithHeldWrites.settle}); if anything fails first, nothing is written and the
 * presented code or token stays usable. Two requests racing with one code or token: one write lands.
 *
 * Authorization responses: the grant the request makes (the consent carried over from an earlier
 * session, provider.ts loadExistingGrant) and the authorization code are saved with the first write
 * that may name them — the interaction the request starts, or the session save that ends the
 * request — in one statement, instead of a round trip each. Nothing is ever written naming a held
 * grant without it. A held grant is answered from the held saves when the request reads it, and its
 * destroy or revocation drops what it held; whatever no save took along is written by
 * {@link AdapterWithHeldWrites.settle} before the response.
 *
 * Every session save in a request touches the session's device record in that same statement when
 * a touch is due ({@link DeviceTouches}): the device row is never written without its session.
 */
interface HeldWrites {
  /** The token grant being served (its consume is held), or undefined for an authorization response. */
  grant?: { consumes: string; consumed?: string };
  saves: PayloadSave[];
}
const held = new WeakMap<object, HeldWrites>();

/** The artefact each held grant consumes, and the models whose saves it holds. */
const GRANTS: Record<string, string> = {
  authorization_code: 'AuthorizationCode',
  refresh_token: 'RefreshToken',
  // RFC 8628: the device's successful poll consumes its device code like a code exchange.
  'urn:ietf:params:oauth:grant-type:device_code': 'DeviceCode',
  // CIBA: the service's successful poll consumes the answered request the same way.
  'urn:openid:params:grant-type:ciba': 'BackchannelAuthenticationRequest',
  // OpenID4VCI: a wallet redeems the registration desk's single-use pre-authorized code the same
  // way (a wrong tx_code still deletes the code: the engine revokes its grant, which is not held).
  'urn:ietf:params:oauth:grant-type:pre-authorized_code': 'PreAuthorizedCode',
};
const ISSUED = new Set(['AccessToken', 'RefreshToken']);
const AUTHORIZATION_ROUTES = new Set(['authorization', 'resume']);

/**
 * Grants, sessions and accounts read with the code or token issued under them, per request.
 * oidc-provider reads a token, then its grant, its session and its account, one after the other
 * (and a session, then its account); the adapter reads all of them in one round trip and answers
 * the later reads from what it got, as long as the request has not written that grant or a session
 * since. Introspection and revocation look one token value up as three models at once; one read
 * answers all three. Each answer is a copy, as a read from the database would be.
 */
interface ReadAlong {
  grants: Map<string, OidcPayload | undefined>;
  sessions: Map<string, OidcPayload | undefined>;
  accounts: Map<string, Account | undefined>;
  /** The claims an account refused to a client, keyed `accountId clientId`, read with a token of theirs. */
  refusals: Map<string, ReadonlySet<string>>;
  /** Accounts' verified identities as stored (null: none), read with a token, a session or the account. */
  identities: Map<string, unknown>;
  /** Whether a grant read along was made under a mandate, by grant id. */
  mandated: Map<string, boolean>;
  /** A token value's read, and the models it still answers (each once). */
  tokens: Map<string, { models: Set<string>; read: Promise<FoundWithContext> }>;
}
const readAlong = new WeakMap<object, ReadAlong>();
/**
 * Interactions the resume claimed in this request: read and finished in one statement
 * (claimInteraction), so the engine's destroy that follows is already done, and a save of it in the
 * same request (the engine's "log the other account out first" branch) brings it back.
 */
const claimed = new WeakMap<object, Set<string>>();
const claimedHere = (id: string) => {
  const ctx = Provider.ctx as object | undefined;
  return ctx ? claimed.get(ctx)?.has(id) === true : false;
};
const READ_WITH_CONTEXT = new Set(['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest', 'ClientCredentials', 'Session']);
/** The routes that look a token value up as each of these models (oidc-provider helpers/token_find.js). */
const TOKEN_LOOKUP_ROUTES = new Set(['introspection', 'revocation']);
const LOOKED_UP_AS = ['AccessToken', 'ClientCredentials', 'RefreshToken'];
/** A grant, a session or a token the request writes is read from the database again afterwards. */
function forget(model: string, id: string): void {
  const ctx = Provider.ctx as object | undefined;
  const kept = ctx ? readAlong.get(ctx) : undefined;
  if (!kept) return;
  if (model === 'Grant') kept.grants.delete(id);
  else if (model === 'Session') kept.sessions.clear();
  else kept.tokens.delete(id);
}

/** The claims `accountId` refused to `clientId`, when this request read them with a token of theirs. */
export function refusalsReadAlong(accountId: string, clientId: string): ReadonlySet<string> | undefined {
  const ctx = Provider.ctx as object | undefined;
  return ctx ? readAlong.get(ctx)?.refusals.get(`${accountId} ${clientId}`) : undefined;
}

/** The stored identity row of an account whose token or session this request read: `{ row }` (null: none), else undefined. */
export function identityReadAlong(accountId: string): { row: unknown } | undefined {
  const ctx = Provider.ctx as object | undefined;
  const kept = ctx ? readAlong.get(ctx)?.identities : undefined;
  return kept?.has(accountId) ? { row: kept.get(accountId) } : undefined;
}

/**
 * Keeps an account's verified identity (its stored row, null: none), read with the account in this
 * request, for the request's later reads of it (identityReadAlong). Outside a request, nothing is kept.
 */
export function keepIdentityAlong(accountId: string, row: unknown): void {
  const ctx = Provider.ctx as object | undefined;
  if (ctx) alongFor(ctx).identities.set(accountId, row);
}

const alongFor = (ctx: object): ReadAlong => {
  const kept = readAlong.get(ctx) ?? { grants: new Map(), sessions: new Map(), accounts: new Map(), refusals: new Map(), identities: new Map(), mandated: new Map(), tokens: new Map() };
  readAlong.set(ctx, kept);
  return kept;
};

/** Whether a grant this request read along was made under a mandate; undefined when it was not read. */
export function mandateReadAlong(grantId: string): boolean | undefined {
  const ctx = Provider.ctx as object | undefined;
  return ctx ? readAlong.get(ctx)?.mandated.get(grantId) : undefined;
}

/** The account of a token this request read, when it read one: `{ account }` (undefined if gone), else undefined. */
export function accountReadAlong(accountId: string): { account: Account | undefined } | undefined {
  const ctx = Provider.ctx as object | undefined;
  const kept = ctx ? readAlong.get(ctx)?.accounts : undefined;
  return kept?.has(accountId) ? { account: kept.get(accountId) } : undefined;
}

export type AdapterWithHeldWrites = AdapterConstructor & {
  /**
   * Writes what the request held, or drops a grant's writes if it failed; see above. `record` is
   * appended to the audit log in the same step as a token grant's writes; true when it was.
   */
  settle(ctx: { status: number; body: unknown; oidc?: unknown }, record?: AuditEntryInput): Promise<boolean>;
};

/**
 * Client-credentials tokens saved in one turn of the event loop go to the database together, one
 * statement for all of them (saveAll), the way PostgreSQL groups commits: under load a worker
 * answers several services at once, and each round trip costs more CPU than the row it writes. Each
 * request still waits for its own token to be written before it answers.
 */
export function createSaveBatcher(payloads: OidcPayloadRepository): (save: PayloadSave) => Promise<void> {
  let pending: { save: PayloadSave; done: (err?: unknown) => void }[] | undefined;
  const flush = () => {
    const batch = pending!;
    pending = undefined;
    const written = batch.length === 1
      ? payloads.upsert(batch[0]!.save.model, batch[0]!.save.id, batch[0]!.save.payload, batch[0]!.save.expiresInSeconds)
      : payloads.saveAll(batch.map((b) => b.save));
    written.then(() => batch.forEach((b) => b.done()), (err: unknown) => batch.forEach((b) => b.done(err ?? new Error('save failed'))));
  };
  return (save) =>
    new Promise<void>((resolve, reject) => {
      if (!pending) {
        pending = [];
        setImmediate(flush);
      }
      pending.push({ save, done: (err) => (err ? reject(err) : resolve()) });
    });
}
/** Models whose saves are batched: each value is new (a random id), so a batch never writes one row twice. */
const BATCHED = new Set(['ClientCredentials']);

/**
 * Whether a session saved in a request is due a touch of its device record: the touch, and what to
 * call if it was not written after all. Undefined when none is due.
 */
export type DeviceTouches = (
  session: { uid: string; accountId: string },
  request: { ip: string; userAgent: string },
) => { touch: SessionDeviceTouch; failed(): void } | undefined;

/**
 * A session or interaction save: with the grant and authorization code the request holds, and (a
 * session) with the touch of its device record when one is due, in one step (one statement on
 * PostgreSQL).
 */
function heldSaver(payloads: OidcPayloadRepository, deviceTouches: DeviceTouches | undefined): (save: PayloadSave) => Promise<void> {
  return async (save) => {
    const ctx = Provider.ctx as (object & { ip?: string; get?(field: string): string }) | undefined;
    const authorization = heldAuthorization(ctx);
    const taken = authorization ? authorization.saves.splice(0) : [];
    const saves = [...taken, save];
    const { uid, accountId } = save.payload;
    const due = save.model === 'Session' && ctx?.get && typeof uid === 'string' && typeof accountId === 'string' && accountId
      ? deviceTouches?.({ uid, accountId }, { ip: ctx.ip ?? '', userAgent: ctx.get('user-agent') })
      : undefined;
    if (saves.length === 1 && !due) return payloads.upsert(save.model, save.id, save.payload, save.expiresInSeconds);
    try {
      await payloads.saveAll(saves, due?.touch);
    } catch (err) {
      due?.failed();
      // The session the request still saves names the held grant: it takes it along instead.
      if (save.model === 'Interaction') authorization?.saves.unshift(...taken);
      throw err;
    }
  };
}

export function createAdapterClass(payloads: OidcPayloadRepository, clients: ClientRepository, deviceTouches?: DeviceTouches): AdapterWithHeldWrites {
  const batched = createSaveBatcher(payloads);
  const saveWithHeld = heldSaver(payloads, deviceTouches);
  return class KnexAdapter implements Adapter {
    constructor(readonly name: string) {}

    static async settle(ctx: { status: number; body: unknown }, record?: AuditEntryInput): Promise<boolean> {
      const writes = held.get(ctx);
      if (!writes) return false;
      held.delete(ctx);
      const { grant, saves } = writes;
      const done = (written: Promise<void>) => written.then(() => false);
      // What an authorization response saved and no session save took along.
      if (!grant) return saves.length > 0 ? done(payloads.saveAll(saves)) : false;
      if (ctx.status !== 200) return false; // a failed exchange leaves the presented code or token as it was
      if (!grant.consumed) return done(payloads.saveAll(saves));
      if (saves.length === 0) return done(payloads.consume(grant.consumes, grant.consumed));
      if (await payloads.consumeAndSave(grant.consumes, grant.consumed, saves, record)) return record !== undefined;
      // Another request consumed the same code or token first: reuse, answered as oidc-provider does.
      const grantId = saves.find((x) => x.payload.grantId)?.payload.grantId;
      if (grantId) await payloads.revokeByGrantId(String(grantId));
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: 'grant request is invalid' };
      return false;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.name === 'Client') throw new Error('clients are managed through Kapija, not dynamic registration');
      forget(this.name, id);
      if (this.name === 'Interaction' && claimedHere(id)) return payloads.reviveInteraction(id, payload as OidcPayload, expiresIn);
      const save: PayloadSave = { model: this.name, id, payload: payload as OidcPayload, expiresInSeconds: expiresIn };
      const writes = heldFor(this.name);
      if (writes) {
        writes.saves.push(save);
        return;
      }
      if (this.name === 'Session' || this.name === 'Interaction') return saveWithHeld(save);
      if (BATCHED.has(this.name)) return batched(save);
      await payloads.upsert(this.name, id, payload as OidcPayload, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === 'Client') return (await clients.findMetadata(id)) as AdapterPayload | undefined;
      const ctx = Provider.ctx as object | undefined;
      if (!ctx) return (await payloads.find(this.name, id)) as AdapterPayload | undefined;
      if (this.name === 'Interaction' && (ctx as EngineContext).oidc?.route === 'resume') {
        const ids = claimed.get(ctx) ?? new Set<string>();
        claimed.set(ctx, ids);
        if (ids.has(id)) return undefined;
        ids.add(id);
        return (await payloads.claimInteraction(id)) as AdapterPayload | undefined;
      }
      if (this.name === 'Grant') {
        const mine = heldAuthorization(ctx)?.saves.findLast((x) => x.model === 'Grant' && x.id === id);
        if (mine) return structuredClone(mine.payload) as AdapterPayload;
        const kept = readAlong.get(ctx)?.grants;
        if (kept?.has(id)) return structuredClone(kept.get(id)) as AdapterPayload | undefined;
      }
      if (READ_WITH_CONTEXT.has(this.name)) {
        const kept = alongFor(ctx);
        const pending = kept.tokens.get(id);
        if (pending?.models.delete(this.name)) return structuredClone((await pending.read).payloads.get(this.name)) as AdapterPayload | undefined;
        const route = (ctx as EngineContext).oidc?.route;
        const models = route && TOKEN_LOOKUP_ROUTES.has(route) && LOOKED_UP_AS.includes(this.name) ? LOOKED_UP_AS : [this.name];
        // A session is read at the authorization endpoint before the client is: its grant for the
        // client the request names is read along (checked by id when the engine asks for it).
        const query = (ctx as { query?: Record<string, unknown> }).query;
        const clientId = this.name === 'Session' && route && AUTHORIZATION_ROUTES.has(route) && typeof query?.client_id === 'string' ? query.client_id : undefined;
        const read = payloads.findWithContext(models, id, clientId).then((found) => {
          // One artefact is found (a value is not issued twice); should several be, each keeps only
          // what is its own, and the rest is read when asked for.
          const one = found.payloads.size === 1;
          for (const payload of found.payloads.values()) {
            const { grantId, sessionUid, accountId } = payload as { grantId?: unknown; sessionUid?: unknown; accountId?: unknown };
            if (typeof grantId === 'string' && (one || found.grant?.jti === grantId)) kept.grants.set(grantId, found.grant);
            if (typeof sessionUid === 'string' && (one || found.session?.uid === sessionUid)) kept.sessions.set(sessionUid, found.session);
            if (typeof accountId === 'string' && (one || found.account?.id === accountId)) kept.accounts.set(accountId, found.account);
          }
          if (found.refusals) kept.refusals.set(`${found.refusals.accountId} ${found.refusals.clientId}`, found.refusals.claims);
          if (found.account && found.identityRow !== undefined) kept.identities.set(found.account.id, found.identityRow);
          const grantId = found.grant?.jti;
          if (typeof grantId === 'string') {
            // The session's grant (read by client id) is its own only if the session holds it.
            if (clientId !== undefined && !kept.grants.has(grantId)) kept.grants.set(grantId, found.grant);
            if (found.grantUnderMandate !== undefined) kept.mandated.set(grantId, found.grantUnderMandate);
          }
          return found;
        });
        kept.tokens.set(id, { models: new Set(models.filter((m) => m !== this.name)), read });
        return (await read).payloads.get(this.name) as AdapterPayload | undefined;
      }
      return (await payloads.find(this.name, id)) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await payloads.findByUserCode(this.name, userCode)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const ctx = Provider.ctx as object | undefined;
      const kept = this.name === 'Session' && ctx ? readAlong.get(ctx)?.sessions : undefined;
      if (kept?.has(uid)) return structuredClone(kept.get(uid)) as AdapterPayload | undefined;
      return (await payloads.findByUid(this.name, uid)) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      forget(this.name, id);
      const grant = heldFor(this.name)?.grant;
      if (grant && grant.consumes === this.name && !grant.consumed) {
        grant.consumed = id;
        return;
      }
      await payloads.consume(this.name, id);
    }

    async destroy(id: string): Promise<void> {
      forget(this.name, id);
      drop((x) => x.model === this.name && x.id === id);
      if (this.name === 'Interaction' && claimedHere(id)) return;
      await payloads.destroy(this.name, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      forget('Grant', grantId);
      drop((x) => x.model !== 'Grant' && x.payload.grantId === grantId);
      await payloads.revokeByGrantId(grantId);
    }
  };
}

type EngineContext = { oidc?: { route?: string; params?: { grant_type?: unknown } } };

/** The writes held for the request being served, when it holds writes of `model`. */
function heldFor(model: string): HeldWrites | undefined {
  const ctx = Provider.ctx as EngineContext | undefined;
  const route = ctx?.oidc?.route;
  if (!ctx || !route) return undefined;
  if (route === 'token') {
    const grantType = ctx.oidc?.params?.grant_type;
    const consumes = typeof grantType === 'string' ? GRANTS[grantType] : undefined;
    if (!consumes || (model !== consumes && !ISSUED.has(model))) return undefined;
    return heldBy(ctx) ?? hold(ctx, { grant: { consumes }, saves: [] });
  }
  if ((model === 'AuthorizationCode' || model === 'Grant') && AUTHORIZATION_ROUTES.has(route)) return heldBy(ctx) ?? hold(ctx, { saves: [] });
  return undefined;
}

/** The writes an authorization response holds (none for a token grant). */
function heldAuthorization(ctx: object | undefined): HeldWrites | undefined {
  const writes = heldBy(ctx);
  return writes && !writes.grant ? writes : undefined;
}

/** Drops what an authorization response holds and the request destroyed or revoked before it was written. */
function drop(destroyed: (save: PayloadSave) => boolean): void {
  const writes = heldAuthorization(Provider.ctx as object | undefined);
  if (writes) writes.saves = writes.saves.filter((x) => !destroyed(x));
}

const heldBy = (ctx: object | undefined) => (ctx ? held.get(ctx) : undefined);
function hold(ctx: object, writes: HeldWrites): HeldWrites {
  held.set(ctx, writes);
  return writes;
}
