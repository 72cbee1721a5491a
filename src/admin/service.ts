/**
 * What administrators can do, shared by the admin API and the console: every change (and every read
 * of a citizen's record) is appended to the 'admin' audit chain with who, what, when and from where.
 * Secrets never leave: a client secret is returned once at creation or rotation, and a citizen's
 * factors are described, never disclosed.
 */
import { createHash, randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';
import { KapijaError } from '../errors.js';
import { ACR, levelOfAcr, type AcrLevel } from '../oidc/acr.js';
import { clientUriProblem } from '../oidc/client-metadata.js';
import type { SessionService, SessionSummary, LogoutDelivery } from '../oidc/sessions.js';
import { sendBackchannelLogout } from '../oidc/logout-retries.js';
import { csvCell } from '../security/csv.js';
import { accountRecord, type AccountRepository, type Account } from '../store/accounts.js';
import { type AuditEntry, type AuditFilter, type AuditLog } from '../store/audit.js';
import type { ClientMetadata, ClientRepository, ClientSummary } from '../store/clients.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { Repositories } from '../store/index.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import type { Role, RoleRepository } from '../store/roles.js';
import type { ClientCreateBody, ClientUpdateBody } from './schemas.js';

export const ADMIN_CLIENT_ID = 'kapija-admin';
/** The account portal's own client (src/account/). */
export const ACCOUNT_CLIENT_ID = 'kapija-account';
export const ADMIN_SCOPE = 'kapija:admin';
export const ADMIN_CHAIN = 'admin';
/** Changes (console and API) need both factors proven within this many seconds. */
export const ADMIN_REAUTH_SECONDS = 10 * 60;

/** Who is acting, from where. */
export interface Actor {
  readonly accountId: string;
  readonly role: Role;
  readonly ip: string | null;
}

export interface ClientView extends Record<string, unknown> {
  client_id: string;
  enabled: boolean;
  has_secret: boolean;
  created_at: string;
}

export interface CitizenSummary {
  id: string;
  username: string;
  email: string | null;
  name: string | null;
  status: Account['status'];
}

export interface SessionView {
  uid: string;
  account_id: string;
  username: string | null;
  login_at: string | null;
  expires_at: string | null;
  acr: string | null;
  amr: string[];
  clients: string[];
}

export interface EndedSessionView {
  uid: string;
  account_id: string;
  grants_revoked: number;
  deliveries: (LogoutDelivery & { attempts: number })[];
}

export interface AdminServiceDeps {
  provider: Provider;
  /** A change and its audit entry commit together or not at all (store/index.ts). */
  atomically: Repositories['atomically'];
  accounts: AccountRepository;
  clients: ClientRepository;
  credentials: CredentialRepository;
  payloads: OidcPayloadRepository;
  sessions: SessionService;
  audit: AuditLog;
  roles: RoleRepository;
  production: boolean;
  /** Pause between back-channel logout retries, in ms. */
  retryDelayMs?: number;
  /**
   * After a factor reset: tells the citizen (in the account's language) and mails the single-use
   * link through which alone a new factor can be enrolled.
   */
  sendReenrolLink?: (accountId: string) => Promise<void>;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

function invalid(message: string): KapijaError {
  return new KapijaError('admin.client.invalid_metadata', 400, { details: { message } });
}

export function toClientView(c: ClientSummary): ClientView {
  const { client_secret: _never, ...metadata } = c.metadata;
  const minAcr = levelOfAcr(metadata['kapija_min_acr']);
  return {
    ...metadata,
    ...(minAcr ? { kapija_min_acr: minAcr } : {}),
    client_id: c.clientId,
    enabled: c.enabled,
    has_secret: c.hasSecret,
    created_at: c.createdAt.toISOString(),
  };
}

/** Kapija's URI rules (oidc/client-metadata.ts) as the admin API's error. */
function checkUris(metadata: ClientMetadata, production: boolean): void {
  const problem = clientUriProblem(metadata, production);
  if (problem) throw invalid(problem);
}

/** Turns an API body into stored metadata: acr names become eIDAS URIs, derived fields filled in. */
function normalise(input: Record<string, unknown>): ClientMetadata {
  const out: Record<string, unknown> = { ...input };
  if (typeof out.kapija_min_acr === 'string' && out.kapija_min_acr in ACR) out.kapija_min_acr = ACR[out.kapija_min_acr as AcrLevel];
  const grants = (out.grant_types as string[] | undefined) ?? ['authorization_code', 'refresh_token'];
  out.grant_types = grants;
  out.response_types = grants.includes('authorization_code') ? ['code'] : [];
  if (out.backchannel_logout_uri) out.backchannel_logout_session_required = true;
  else delete out.backchannel_logout_session_required;
  return out as ClientMetadata;
}

export function createAdminService(deps: AdminServiceDeps) {
  const { provider, accounts, clients, credentials, payloads, sessions, audit, roles } = deps;
  const retryDelayMs = deps.retryDelayMs ?? 500;

  type Trx = Parameters<AuditLog['append']>[1];
  const record = (actor: Actor, action: string, extra: { subjectAccountId?: string | null; clientId?: string | null; details?: Record<string, unknown> } = {}, trx?: Trx) =>
    audit.append({ chain: ADMIN_CHAIN, actor: actor.accountId, action, ip: actor.ip, ...extra }, trx);
  /**
   * A change and its audit entry in one transaction: both commit, or neither (an entry that cannot
   * be written undoes the change). Run again on the new head when a concurrent append took its place.
   */
  const { atomically } = deps;

  const requireWrite = (actor: Actor) => {
    if (actor.role !== 'admin') throw new KapijaError('admin.read_only', 403);
  };

  /** Lets the engine parse the metadata, so what it would refuse at sign-in is refused now. */
  const validate = async (metadata: ClientMetadata) => {
    if (metadata.token_endpoint_auth_method === 'private_key_jwt' && !metadata.jwks && !metadata.jwks_uri) {
      throw invalid('private_key_jwt needs jwks or jwks_uri');
    }
    if (metadata.token_endpoint_auth_method === 'none' && (metadata.grant_types as string[]).includes('client_credentials')) {
      throw invalid('a public client cannot use client_credentials');
    }
    const needsSecret = (provider.Client as unknown as { needsSecret(m: unknown): boolean }).needsSecret(metadata);
    try {
      await (provider.Client as unknown as { validate(m: unknown): Promise<void> }).validate({
        ...metadata,
        ...(needsSecret ? { client_secret: randomBytes(32).toString('base64url') } : {}),
      });
    } catch (err) {
      const e = err as { error_description?: string; message?: string };
      throw invalid(e.error_description ?? e.message ?? 'invalid client metadata');
    }
    return needsSecret;
  };

  const getClient = async (clientId: string) => {
    const c = await clients.find(clientId);
    if (!c) throw new KapijaError('admin.client.not_found', 404);
    return c;
  };
  /** A client that may be changed: Kapija's own (the console, the account portal) are set up by Kapija alone. */
  const changeableClient = async (clientId: string) => {
    if (clientId === ADMIN_CLIENT_ID || clientId === ACCOUNT_CLIENT_ID) throw new KapijaError('admin.client.protected', 409);
    const current = await getClient(clientId);
    if (current.metadata.kapija_first_party === true) throw new KapijaError('admin.client.protected', 409);
    return current;
  };
  const getAccount = async (id: string) => {
    const a = await accounts.findById(id);
    if (!a) throw new KapijaError('admin.citizen.not_found', 404);
    return a;
  };

  const changedKeys = (before: Record<string, unknown>, after: Record<string, unknown>) =>
    [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();

  /**
   * Ends sessions, retrying back-channel deliveries that failed (twice, after a pause, then later
   * from the database); each outcome and the number of attempts goes to the audit trail.
   */
  const endSessions = async (actor: Actor, targets: SessionSummary[], action: string): Promise<EndedSessionView[]> => {
    const results: EndedSessionView[] = [];
    for (const s of targets) {
      const ended = await sessions.end(s.id, { retryLater: false });
      if (!ended) continue;
      const deliveries = await Promise.all(
        ended.deliveries.map(async (d) => {
          let current: LogoutDelivery = d;
          let attempts = d.backchannel === 'not_registered' ? 0 : 1;
          const sid = s.clients.find((c) => c.clientId === d.clientId)?.sid ?? '';
          while (current.backchannel === 'failed' && attempts < 3) {
            await new Promise((r) => setTimeout(r, retryDelayMs * attempts));
            attempts += 1;
            try {
              const client = await provider.Client.find(d.clientId);
              if (!client) throw new Error('the service no longer exists');
              await sendBackchannelLogout(client, s.accountId, sid);
              current = { clientId: d.clientId, backchannel: 'delivered' };
            } catch (err) {
              current = { clientId: d.clientId, backchannel: 'failed', error: err instanceof Error ? err.message : String(err) };
            }
          }
          if (current.backchannel === 'failed') await sessions.retryLater({ clientId: d.clientId, accountId: s.accountId, sid }, attempts, current.error);
          return { ...current, attempts };
        }),
      );
      const view: EndedSessionView = { uid: s.uid ?? '', account_id: s.accountId, grants_revoked: ended.grantsRevoked.length, deliveries };
      await record(actor, action, { subjectAccountId: s.accountId, details: { session: view.uid, grants_revoked: view.grants_revoked, deliveries } });
      results.push(view);
    }
    return results;
  };

  const sessionView = async (s: SessionSummary, names = new Map<string, string | null>()): Promise<SessionView> => {
    if (!names.has(s.accountId)) names.set(s.accountId, (await accounts.findById(s.accountId))?.username ?? null);
    return {
      uid: s.uid ?? '',
      account_id: s.accountId,
      username: names.get(s.accountId) ?? null,
      login_at: iso(s.loginAt),
      expires_at: iso(s.expiresAt),
      acr: s.acr ?? null,
      amr: s.amr,
      clients: s.clients.map((c) => c.clientId),
    };
  };

  return {
    requireWrite,

    clients: {
      async list(): Promise<ClientView[]> {
        return (await clients.list()).map(toClientView);
      },
      async get(clientId: string): Promise<ClientView> {
        return toClientView(await getClient(clientId));
      },
      async create(actor: Actor, body: ClientCreateBody): Promise<{ client: ClientView; client_secret?: string }> {
        requireWrite(actor);
        const metadata = normalise({
          client_name: body.client_name ?? body.client_id,
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'openid profile email offline_access',
          application_type: 'web',
          redirect_uris: [],
          post_logout_redirect_uris: [],
          ...body,
        });
        checkUris(metadata, deps.production);
        const needsSecret = await validate(metadata);
        if (await clients.find(body.client_id)) throw new KapijaError('admin.client.exists', 409);
        const secret = needsSecret ? randomBytes(32).toString('base64url') : undefined;
        await atomically(async (trx) => {
          try {
            await clients.create(metadata, secret, trx);
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (code === '23505' || code?.startsWith('SQLITE_CONSTRAINT')) throw new KapijaError('admin.client.exists', 409);
            throw err;
          }
          await record(actor, 'admin.client.created', { clientId: body.client_id, details: { properties: Object.keys(metadata).sort() } }, trx);
        });
        return { client: toClientView(await getClient(body.client_id)), ...(secret ? { client_secret: secret } : {}) };
      },
      async update(actor: Actor, clientId: string, body: ClientUpdateBody): Promise<{ client: ClientView; client_secret?: string }> {
        requireWrite(actor);
        const current = await changeableClient(clientId);
        const merged: Record<string, unknown> = { ...current.metadata };
        for (const [k, v] of Object.entries(body)) {
          if (v === null) delete merged[k];
          else if (v !== undefined) merged[k] = v;
        }
        const metadata = normalise(merged);
        checkUris(metadata, deps.production);
        const needsSecret = await validate(metadata);
        // A client that switches to a secret-based method needs a secret; one that leaves it drops it.
        const secret = needsSecret && !current.hasSecret ? randomBytes(32).toString('base64url') : undefined;
        await atomically(async (trx) => {
          await clients.update(clientId, metadata, trx);
          if (secret) await clients.rotateSecret(clientId, secret, trx);
          else if (!needsSecret && current.hasSecret) await clients.rotateSecret(clientId, undefined, trx);
          await record(actor, 'admin.client.updated', { clientId, details: { changed: changedKeys(current.metadata, metadata) } }, trx);
        });
        return { client: toClientView(await getClient(clientId)), ...(secret ? { client_secret: secret } : {}) };
      },
      async rotateSecret(actor: Actor, clientId: string): Promise<{ client_secret: string }> {
        requireWrite(actor);
        const current = await changeableClient(clientId);
        if (!current.hasSecret) throw new KapijaError('admin.client.no_secret', 409);
        const secret = randomBytes(32).toString('base64url');
        // The fingerprint lets the service confirm which secret is current, without the trail holding it.
        await atomically(async (trx) => {
          await clients.rotateSecret(clientId, secret, trx);
          await record(actor, 'admin.client.secret_rotated', { clientId, details: { fingerprint: sha256(secret).slice(0, 12) } }, trx);
        });
        return { client_secret: secret };
      },
      async setEnabled(actor: Actor, clientId: string, enabled: boolean): Promise<ClientView> {
        requireWrite(actor);
        await changeableClient(clientId);
        await atomically(async (trx) => {
          await clients.setEnabled(clientId, enabled, trx);
          await record(actor, enabled ? 'admin.client.enabled' : 'admin.client.disabled', { clientId }, trx);
        });
        return toClientView(await getClient(clientId));
      },
      async delete(actor: Actor, clientId: string): Promise<void> {
        requireWrite(actor);
        await changeableClient(clientId);
        await atomically(async (trx) => {
          await clients.delete(clientId, trx);
          await record(actor, 'admin.client.deleted', { clientId }, trx);
        });
      },
    },

    citizens: {
      /** Who searched for whom is recorded (the query and how many were found). */
      async search(actor: Actor, query: string, limit = 50): Promise<CitizenSummary[]> {
        const found = await accounts.search(query, limit);
        await record(actor, 'admin.citizen.searched', { details: { query, results: found.length } });
        return found.map((a) => ({
          id: a.id,
          username: a.username,
          email: a.email,
          name: [a.givenName, a.familyName].filter(Boolean).join(' ') || null,
          status: a.status,
        }));
      },
      /** The citizen's record; the read itself is recorded (and shows in the citizen's ledger). */
      async view(actor: Actor, id: string) {
        const a = await getAccount(id);
        const [creds, list, grants, accountRoles] = await Promise.all([
          credentials.list(id),
          sessions.listForAccount(id),
          payloads.listByAccount(id, 'Grant'),
          roles.rolesOf(id),
        ]);
        const recovery = creds.filter((c) => c.type === 'recovery');
        await record(actor, 'admin.citizen.viewed', { subjectAccountId: id });
        const names = new Map([[id, a.username]]);
        return {
          ...accountRecord(a),
          roles: accountRoles,
          factors: creds
            .filter((c) => c.type !== 'recovery')
            .map((c) => ({ id: c.id, type: c.type, name: c.name, created_at: iso(c.createdAt), last_used_at: iso(c.lastUsedAt) })),
          recovery_codes: { total: recovery.length, unused: recovery.filter((c) => !c.usedAt).length },
          sessions: await Promise.all(list.map((s) => sessionView(s, names))),
          consents: grants.map((g) => {
            const p = g.payload as { clientId?: string; openid?: { scope?: string; claims?: string[] } };
            return { client_id: p.clientId ?? null, scope: p.openid?.scope ?? null, claims: p.openid?.claims ?? [], expires_at: g.expiresAt ? new Date(g.expiresAt).toISOString() : null };
          }),
        };
      },
      async setLocked(actor: Actor, id: string, locked: boolean) {
        requireWrite(actor);
        await getAccount(id);
        await atomically(async (trx) => {
          await accounts.setStatus(id, locked ? 'locked' : 'active', trx);
          await record(actor, locked ? 'admin.citizen.locked' : 'admin.citizen.unlocked', { subjectAccountId: id }, trx);
        });
        // A locked citizen is also signed out everywhere, and the services are told (each session's
        // end and its back-channel deliveries are an entry of their own).
        const ended = locked ? await endSessions(actor, await sessions.listForAccount(id), 'admin.session.ended') : [];
        return { id, status: locked ? 'locked' : 'active', sessions_ended: ended };
      },
      /**
       * Removes every second factor. A sign-in with the password alone does not enrol a new one:
       * the citizen is mailed a single-use link, and enrols only after following it.
       */
      async resetFactors(actor: Actor, id: string) {
        requireWrite(actor);
        await getAccount(id);
        const removed: Record<string, number> = {};
        await atomically(async (trx) => {
          await accounts.setFactorsReset(id, true, trx);
          for (const type of ['totp', 'webauthn', 'recovery'] as const) removed[type] = await credentials.removeType(id, type, trx);
          await record(actor, 'admin.citizen.factors_reset', { subjectAccountId: id, details: { removed } }, trx);
        });
        await deps.sendReenrolLink?.(id);
        return { id, removed };
      },
      async signOutEverywhere(actor: Actor, id: string) {
        requireWrite(actor);
        await getAccount(id);
        const ended = await endSessions(actor, await sessions.listForAccount(id), 'admin.session.ended');
        await record(actor, 'admin.citizen.signed_out', { subjectAccountId: id, details: { sessions_ended: ended.length } });
        return { id, sessions_ended: ended };
      },
    },

    sessions: {
      /** The read is recorded (in the citizen's ledger too, when it is one citizen's sessions). */
      async list(actor: Actor, filter: { accountId?: string; clientId?: string; limit?: number } = {}): Promise<SessionView[]> {
        const names = new Map<string, string | null>();
        const list = await sessions.listAll(filter);
        await record(actor, filter.accountId ? 'admin.citizen.sessions_listed' : 'admin.session.listed', { subjectAccountId: filter.accountId ?? null, clientId: filter.clientId ?? null, details: { count: list.length } });
        return Promise.all(list.map((s) => sessionView(s, names)));
      },
      /** Ends sessions by their public uid (the session id is the browser's cookie and never shown). */
      async end(actor: Actor, uids: string[]): Promise<{ ended: EndedSessionView[]; not_found: string[] }> {
        requireWrite(actor);
        const targets: SessionSummary[] = [];
        const notFound: string[] = [];
        for (const uid of new Set(uids)) {
          const payload = (await payloads.findByUid('Session', uid)) as { jti?: string; accountId?: string } | undefined;
          const summary = payload?.jti && payload.accountId ? (await sessions.listForAccount(payload.accountId)).find((s) => s.id === payload.jti) : undefined;
          if (summary) targets.push(summary);
          else notFound.push(uid);
        }
        return { ended: await endSessions(actor, targets, 'admin.session.ended'), not_found: notFound };
      },
    },

    audit: {
      /** The read is recorded; a read of a citizen's ledger (or entries about them) shows in that ledger. */
      async list(actor: Actor, filter: AuditFilter): Promise<AuditEntry[]> {
        const entries = await audit.list(filter);
        const ledgerOf = filter.chain?.startsWith('account:') ? filter.chain.slice('account:'.length) : undefined;
        const subject = (ledgerOf ?? filter.subject)?.slice(0, 36);
        await record(actor, subject ? 'admin.citizen.ledger_read' : 'admin.audit.read', {
          subjectAccountId: subject ?? null,
          details: { count: entries.length, filter: { ...filter, from: iso(filter.from), to: iso(filter.to) } },
        });
        return entries;
      },
      count(filter: AuditFilter): Promise<number> {
        return audit.count(filter);
      },
      async export(actor: Actor, filter: AuditFilter, format: 'csv' | 'json') {
        const entries = await audit.list({ ...filter, limit: filter.limit ?? 10_000 });
        await record(actor, 'admin.audit.exported', { details: { format, count: entries.length, filter: { ...filter, from: iso(filter.from), to: iso(filter.to) } } });
        return entries;
      },
      verify: (chain?: string) => audit.verify(chain),
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;

export function auditEntryJson(e: AuditEntry) {
  return {
    id: e.id,
    chain: e.chain,
    seq: e.seq,
    at: e.at.toISOString(),
    actor: e.actor,
    action: e.action,
    subject_account_id: e.subjectAccountId,
    client_id: e.clientId,
    ip: e.ip,
    details: e.details,
    prev_hash: e.prevHash,
    hash: e.hash,
  };
}

const CSV_COLUMNS = ['at', 'chain', 'seq', 'actor', 'action', 'subject_account_id', 'client_id', 'ip', 'details', 'prev_hash', 'hash'] as const;

/** RFC 4180 CSV; a cell that a spreadsheet would run as a formula is prefixed with a quote. */
export function auditCsv(entries: AuditEntry[]): string {
  const rows = entries.map((e) => {
    const j = auditEntryJson(e);
    return CSV_COLUMNS.map((c) => csvCell(j[c])).join(',');
  });
  return `${[CSV_COLUMNS.join(','), ...rows].join('\r\n')}\r\n`;
}
