/**
 * Client-Initiated Backchannel Authentication (OpenID Connect CIBA Core 1.0), Kapija's side of it.
 * A service (a call centre) names a citizen with a `login_hint`; oidc-provider saves the request in
 * `oidc_payloads` (with its account, so the portal lists it per citizen) and the service polls or
 * waits for a ping. The citizen answers in the account portal (account/requests.ts): an approval
 * needs a second factor proven for it, a denial nothing. Every request that named an account, and
 * every answer, is in the citizen's ledger.
 *
 * - **Hints.** A username (as typed at sign-in). A service registered with `kapija_ciba_jmbg_hint`
 *   may also give a JMBG, which names the account whose identity in force (identity proofing)
 *   carries it; a hint that names two accounts (a username that is another citizen's JMBG) names
 *   none. An unknown hint is `unknown_user_id`, as CIBA §13 requires: only registered services that
 *   authenticate and were allowed the grant can ask, each lookup is one indexed read whether or not
 *   the hint exists, and the hint itself is never logged.
 * - **One answer.** The answer is written first, keyed by a keyed hash of the auth_req_id
 *   (store/ciba-decisions.ts): a second approval, a denial after an approval or the other way
 *   round, at this instance or another, finds it taken. The portal never shows the auth_req_id (the
 *   service's secret): requests are named by the same keyed hash.
 */
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { KapijaError } from '../errors.js';
import { ledgerEntry } from '../account/ledger.js';
import { isValidJmbg } from '../assurance/jmbg.js';
import { ACR, completeAmr, levelFor, rank, requiredLevel, type AcrLevel } from '../assurance/levels.js';
import { honestLevel, type IdentityLevel } from '../identity/levels.js';
import { claimsOfScopes, receivableClaims } from '../oidc/claims-policy.js';
import { TooManyUnknownHints, type CibaHooks } from '../oidc/provider.js';
import { createThrottle, type ThrottleStorage, type Tier } from '../security/rate-limit.js';
import type { EventBus } from '../events.js';
import { LOCALES, type Locale } from '../i18n/index.js';
import { serviceName } from '../i18n/service-name.js';
import type { SecretBox } from '../security/crypto.js';
import type { AccountRepository } from '../store/accounts.js';
import type { AuditLog } from '../store/audit.js';
import type { CibaDecisionRepository } from '../store/ciba-decisions.js';
import type { ConsentRefusalRepository } from '../store/consent-refusals.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';

export const CIBA_MODEL = 'BackchannelAuthenticationRequest';

/**
 * Hints that name nobody, per service: a call centre mistyping a username now and then never meets
 * these; a service trying names to learn who has an account is held back (429 `slow_down`) once more than 20 in 15 minutes named nobody.
 */
/**
 * Notices by mail, per citizen and service: a service that keeps asking (a script, a compromised
 * call centre) cannot flood the citizen's mailbox; after four in ten minutes the rest wait in the
 * portal unannounced for ten minutes. Every request is still in the ledger.
 */
export const NOTICE_TIERS: readonly Tier[] = [{ by: ['account'], points: 3, duration: 10 * 60, blockDuration: 10 * 60 }];

export const UNKNOWN_HINT_TIERS: readonly Tier[] = [
  { by: ['account'], points: 20, duration: 15 * 60, blockDuration: 15 * 60 },
  { by: ['account'], points: 100, duration: 24 * 3600, blockDuration: 3600 },
];

/** A request waiting for the citizen, as the portal shows it. */
export interface PendingRequest {
  /** The keyed hash of the auth_req_id: the request's name on the portal and in ciba_decisions. */
  handle: string;
  id: string;
  clientId: string;
  bindingMessage: string | undefined;
  scopes: string[];
  /** The personal claims the approval would release (less those the citizen refused to the service). */
  claims: string[];
  /** The level the service asked for (its registered minimum, raised by acr_values). */
  required: AcrLevel;
  expiresAt: Date;
}

export interface CibaDeps {
  accounts: Pick<AccountRepository, 'findByUsername'>;
  identity: { findAccountByVerifiedJmbg(jmbg: string): Promise<string | undefined>; levelOf(accountId: string): Promise<IdentityLevel> };
  payloads: Pick<OidcPayloadRepository, 'listByAccount'>;
  decisions: CibaDecisionRepository;
  refusals: Pick<ConsentRefusalRepository, 'list'>;
  audit: Pick<AuditLog, 'append'>;
  /** Announces each request (`ciba.requested`: the citizen's notice by mail). */
  events?: Pick<EventBus, 'emit'>;
  box: Pick<SecretBox, 'mac'>;
  /** Where the unknown-hint throttle keeps its counters (all instances share them). */
  throttleStorage?: ThrottleStorage;
  /** Where a ping that did not reach the service is reported (the service may still poll). */
  logger?: { warn(obj: object, msg: string): void };
  now?: () => number;
}

/** The engine's hooks (oidc/provider.ts `features.ciba`). */
export function createCibaHooks(d: CibaDeps): CibaHooks {
  const throttle = d.throttleStorage ? createThrottle(d.throttleStorage, { scope: 'ciba-unknown-hint', box: d.box, tiers: UNKNOWN_HINT_TIERS }) : undefined;
  const notices = d.throttleStorage ? createThrottle(d.throttleStorage, { scope: 'ciba-notice', box: d.box, tiers: NOTICE_TIERS }) : undefined;
  const resolve = async (hint: string, jmbgAllowed: boolean) => {
    const byName = (await d.accounts.findByUsername(hint))?.id;
    if (!jmbgAllowed || !isValidJmbg(hint)) return byName;
    const byJmbg = await d.identity.findAccountByVerifiedJmbg(hint);
    // Two different citizens answer to this hint: name neither.
    if (byName && byJmbg && byName !== byJmbg) return undefined;
    return byJmbg ?? byName;
  };
  return {
    async accountOfHint(hint, client) {
      const keys = { account: client.clientId, ip: '' };
      const wait = (await throttle?.retryAfter(keys)) ?? 0;
      if (wait > 0) throw new TooManyUnknownHints(wait);
      const accountId = await resolve(hint, client.metadata()['kapija_ciba_jmbg_hint'] === true);
      if (!accountId) await throttle?.fail(keys);
      return accountId;
    },
    async requested(r, client) {
      await d.audit.append(ledgerEntry(r.accountId, 'ledger.ciba_requested', r.clientId, { scopes: r.scope.split(' ').filter(Boolean) }));
      // A notice by mail (notices/): the service's name only, and a link to the portal.
      const keys = { account: `${r.accountId} ${r.clientId}`, ip: '' };
      if (notices && (await notices.retryAfter(keys)) > 0) return;
      await notices?.fail(keys);
      const names = Object.fromEntries(LOCALES.map((l) => [l, serviceName(client.metadata(), l, client.clientName ?? r.clientId)])) as Record<Locale, string>;
      await d.events?.emit('ciba.requested', { accountId: r.accountId, clientId: r.clientId, serviceNames: names });
    },
  };
}

type Payload = Record<string, unknown> & { jti?: string; clientId?: string; scope?: string; claims?: Record<string, Record<string, unknown> | undefined>; params?: Record<string, unknown>; grantId?: string; error?: string; consumed?: number; exp?: number };

/** The personal claims a request asks for through its claims parameter. */
function claimsParameterNames(claims: Payload['claims']): string[] {
  return [...new Set([...Object.keys(claims?.id_token ?? {}), ...Object.keys(claims?.userinfo ?? {})])];
}

/** Claims that describe the sign-in, not the person: never listed, never refused. */
const PROTOCOL = new Set(['sub', 'acr', 'amr', 'auth_time', 'sid']);

export interface Approval {
  /** The methods proven for the approval: the portal sign-in's, and the second factor proven now. */
  amr: readonly string[];
}

/** The portal's side: the citizen's pending requests, and their answer. */
export function createCibaRequests(d: CibaDeps & { provider: Provider }) {
  const now = d.now ?? Date.now;
  const handleOf = (id: string) => d.box.mac('ciba-request', id);

  /** The account's requests still waiting for an answer, the one that expires first first. */
  const pending = async (accountId: string): Promise<PendingRequest[]> => {
    const rows = (await d.payloads.listByAccount(accountId, CIBA_MODEL)).filter((r) => {
      const p = r.payload as Payload;
      return !p.consumed && !p.grantId && !p.error && (r.expiresAt === null || r.expiresAt > now());
    });
    const decided = await d.decisions.decided(rows.map((r) => handleOf(r.id)));
    const out: PendingRequest[] = [];
    for (const r of rows) {
      const handle = handleOf(r.id);
      if (decided.has(handle)) continue;
      const p = r.payload as Payload;
      const clientId = String(p.clientId ?? '');
      const client = await d.provider.Client.find(clientId);
      if (!client) continue;
      const scopes = String(p.scope ?? '').split(' ').filter(Boolean);
      const refused = await d.refusals.list(accountId, clientId);
      const receivable = receivableClaims(client);
      const asked = new Set([...claimsOfScopes(scopes), ...claimsParameterNames(p.claims)]);
      const claims = [...asked].filter((c) => !PROTOCOL.has(c) && receivable.has(c) && !refused.has(c)).sort();
      const message = p.params?.binding_message;
      out.push({
        handle,
        id: r.id,
        clientId,
        bindingMessage: typeof message === 'string' ? message : undefined,
        scopes,
        claims,
        required: requiredLevel({ acrValues: p.params?.acr_values, clientMinimum: client.metadata()['kapija_min_acr'] }),
        expiresAt: new Date(r.expiresAt ?? now()),
      });
    }
    return out.sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime());
  };

  /** One of the account's pending requests, by handle; 404 for any other (another citizen's, answered, expired). */
  const find = async (accountId: string, handle: string): Promise<PendingRequest> => {
    const found = typeof handle === 'string' && handle.length <= 64 ? (await pending(accountId)).find((r) => r.handle === handle) : undefined;
    if (!found) throw new KapijaError('ciba.not_pending', 404);
    return found;
  };

  /** Takes the single answer, or 409 when the request was answered in the meantime. */
  const claim = async (accountId: string, r: PendingRequest, decision: 'approved' | 'denied') => {
    if (!(await d.decisions.claim({ requestHash: r.handle, accountId, clientId: r.clientId, decision, expiresAt: r.expiresAt.getTime() }))) {
      throw new KapijaError('ciba.answered', 409);
    }
  };
  /**
   * Tells the engine; if it cannot be told, the answer is taken back so the citizen may try again.
   * In ping mode the engine saves the answer, then notifies the service: a notification that fails
   * (the service down) leaves the answer standing, and the service gets it when it polls.
   */
  const tell = async (r: PendingRequest, decision: 'approved' | 'denied', work: () => Promise<void>) => {
    try {
      await work();
    } catch (err) {
      const saved = (await d.provider.BackchannelAuthenticationRequest.find(r.id, { ignoreExpiration: true }).catch(() => undefined)) as { grantId?: string; error?: string } | undefined;
      if (saved && (decision === 'approved' ? saved.grantId : saved.error)) {
        d.logger?.warn({ clientId: r.clientId, err: { message: (err as Error).message } }, 'CIBA ping notification failed; the service can still poll');
        return;
      }
      await d.decisions.release(r.handle, decision);
      // The request expired (or was withdrawn) between the page's checks and the engine: the same
      // answer as for any request no longer waiting, not a server error.
      if (!saved) throw new KapijaError('ciba.not_pending', 404);
      throw err;
    }
  };

  return {
    pending,
    find,
    /**
     * The level an approval with these methods reaches for this account: what the methods prove,
     * never above what the verified identity supports (identity/levels.ts honestLevel).
     */
    async levelFor(accountId: string, amr: readonly string[]): Promise<AcrLevel> {
      return honestLevel(levelFor(completeAmr(amr)), await d.identity.levelOf(accountId));
    },
    async approve(accountId: string, r: PendingRequest, approval: Approval): Promise<void> {
      const amr = completeAmr(approval.amr);
      const level = honestLevel(levelFor(amr), await d.identity.levelOf(accountId));
      if (rank(level) < rank(r.required)) throw new KapijaError('ciba.level_unmet', 403);
      await claim(accountId, r, 'approved');
      await tell(r, 'approved', async () => {
        const { Grant } = d.provider;
        const grant = new Grant({ accountId, clientId: r.clientId });
        grant.addOIDCScope(r.scopes.join(' '));
        const client = await d.provider.Client.find(r.clientId);
        const receivable = receivableClaims(client);
        const refused = await d.refusals.list(accountId, r.clientId);
        const payload = (await d.payloads.listByAccount(accountId, CIBA_MODEL)).find((x) => x.id === r.id)?.payload as Payload | undefined;
        const parameter = claimsParameterNames(payload?.claims).filter((c) => !PROTOCOL.has(c));
        const allowed = parameter.filter((c) => receivable.has(c) && !refused.has(c));
        if (allowed.length) grant.addOIDCClaims(allowed);
        // Refused claims and those the service is not registered for are never released (as consent.ts).
        const rejected = [...new Set([...refused, ...parameter.filter((c) => !receivable.has(c))])];
        if (rejected.length) grant.rejectOIDCClaims(rejected);
        await grant.save();
        await d.provider.backchannelResult(r.id, grant, { acr: ACR[level], amr, authTime: Math.floor(now() / 1000) });
      });
      await d.audit.append(ledgerEntry(accountId, 'ledger.ciba_approved', r.clientId, { scopes: r.scopes, claims: r.claims, acr: ACR[level], amr }));
    },
    /** A deleted account's waiting requests are refused at once (the service's poll gets access_denied). */
    async refuseAll(accountId: string): Promise<void> {
      for (const r of await pending(accountId)) {
        if (!(await d.decisions.claim({ requestHash: r.handle, accountId, clientId: r.clientId, decision: 'denied', expiresAt: r.expiresAt.getTime() }).catch(() => false))) continue;
        await d.provider.backchannelResult(r.id, new errors.AccessDenied('the account no longer exists')).catch((err: unknown) => d.logger?.warn({ clientId: r.clientId, err: { message: (err as Error).message } }, 'CIBA request of a deleted account not refused'));
      }
    },
    async deny(accountId: string, r: PendingRequest): Promise<void> {
      await claim(accountId, r, 'denied');
      await tell(r, 'denied', () => d.provider.backchannelResult(r.id, new errors.AccessDenied('the citizen denied the request')));
      await d.audit.append(ledgerEntry(accountId, 'ledger.ciba_denied', r.clientId, {}));
    },
  };
}

export type CibaRequests = ReturnType<typeof createCibaRequests>;
