/**
 * A citizen's sign-in sessions, which oidc-provider keeps but does not index by account: list them,
 * and end one or all. Ending a session ends it at Kapija, revokes every grant made in it (with the
 * tokens issued under them) and delivers back-channel logout tokens to the services that registered
 * for them, recording the outcome of each delivery; a failed delivery is retried later
 * (oidc/logout-retries.ts).
 */
import type Provider from 'oidc-provider';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import { sendBackchannelLogout, type LogoutRetries } from './logout-retries.js';

export interface SessionSummary {
  readonly id: string;
  readonly uid: string | undefined;
  readonly accountId: string;
  readonly loginAt: Date | undefined;
  readonly expiresAt: Date | undefined;
  readonly acr: string | undefined;
  readonly amr: string[];
  readonly clients: { clientId: string; grantId: string | undefined; sid: string | undefined }[];
}

export interface LogoutDelivery {
  readonly clientId: string;
  /** `delivered`, `failed` (tried again later), or `not_registered` when the service has no back-channel logout URI. */
  readonly backchannel: 'delivered' | 'failed' | 'not_registered';
  readonly error?: string;
}

export interface EndedSession {
  readonly sessionId: string;
  readonly accountId: string;
  readonly grantsRevoked: string[];
  readonly deliveries: LogoutDelivery[];
}

export interface SessionService {
  listForAccount(accountId: string): Promise<SessionSummary[]>;
  /** Live sessions of every citizen (or one), optionally only those signed in to one client; newest first. */
  listAll(filter?: { accountId?: string; clientId?: string; limit?: number }): Promise<SessionSummary[]>;
  /**
   * Ends one session; undefined when it does not exist (or belongs to another account, if given).
   * A failed delivery is kept for a later attempt unless `retryLater` is false (the caller retries
   * first and then hands what still failed to `retryLater`).
   */
  end(sessionId: string, opts?: { accountId?: string; retryLater?: boolean }): Promise<EndedSession | undefined>;
  /** Keeps a delivery that failed `attempts` times for a later attempt. */
  retryLater(target: { clientId: string; accountId: string; sid: string }, attempts: number, error: unknown): Promise<void>;
  endAllForAccount(accountId: string): Promise<EndedSession[]>;
}

interface SessionPayload {
  accountId?: string;
  uid?: string;
  loginTs?: number;
  exp?: number;
  acr?: string;
  amr?: string[];
  authorizations?: Record<string, { sid?: string; grantId?: string }>;
}

function summarise(id: string, p: SessionPayload): SessionSummary {
  return {
    id,
    uid: p.uid,
    accountId: p.accountId ?? '',
    loginAt: p.loginTs ? new Date(p.loginTs * 1000) : undefined,
    expiresAt: p.exp ? new Date(p.exp * 1000) : undefined,
    acr: p.acr,
    amr: p.amr ?? [],
    clients: Object.entries(p.authorizations ?? {}).map(([clientId, a]) => ({ clientId, grantId: a.grantId, sid: a.sid })),
  };
}

export function createSessionService(deps: { provider: Provider; payloads: OidcPayloadRepository; retries: LogoutRetries }): SessionService {
  const { provider, payloads, retries } = deps;

  const service: SessionService = {
    async listForAccount(accountId) {
      const rows = await payloads.listByAccount(accountId, 'Session');
      return rows.map((r) => summarise(r.id, r.payload as SessionPayload)).sort((a, b) => (b.loginAt?.getTime() ?? 0) - (a.loginAt?.getTime() ?? 0));
    },

    async listAll(filter = {}) {
      const rows = await payloads.listByModel('Session', { accountId: filter.accountId, limit: filter.limit ?? 1000 });
      return rows
        .map((r) => summarise(r.id, r.payload as SessionPayload))
        .filter((s) => s.accountId && (!filter.clientId || s.clients.some((c) => c.clientId === filter.clientId)))
        .sort((a, b) => (b.loginAt?.getTime() ?? 0) - (a.loginAt?.getTime() ?? 0));
    },

    async end(sessionId, opts = {}) {
      const payload = (await payloads.find('Session', sessionId)) as SessionPayload | undefined;
      if (!payload?.accountId) return undefined;
      if (opts.accountId !== undefined && payload.accountId !== opts.accountId) return undefined;
      const session = summarise(sessionId, payload);
      // End it first: from here on the browser's cookie points at nothing.
      await payloads.destroy('Session', sessionId);
      const grantsRevoked: string[] = [];
      const deliveries = await Promise.all(
        session.clients.map(async ({ clientId, grantId, sid }): Promise<LogoutDelivery> => {
          if (grantId) {
            await payloads.revokeByGrantId(grantId);
            await payloads.destroy('Grant', grantId);
            grantsRevoked.push(grantId);
          }
          const client = await provider.Client.find(clientId);
          if (!client?.backchannelLogoutUri) return { clientId, backchannel: 'not_registered' };
          try {
            await sendBackchannelLogout(client, session.accountId, sid ?? '');
            return { clientId, backchannel: 'delivered' };
          } catch (err) {
            if (opts.retryLater !== false) await retries.later({ clientId, accountId: session.accountId, sid: sid ?? '' }, 1, err);
            return { clientId, backchannel: 'failed', error: err instanceof Error ? err.message : String(err) };
          }
        }),
      );
      return { sessionId, accountId: session.accountId, grantsRevoked, deliveries };
    },

    retryLater: (target, attempts, error) => retries.later(target, attempts, error),

    async endAllForAccount(accountId) {
      const sessions = await service.listForAccount(accountId);
      const ended = await Promise.all(sessions.map((s) => service.end(s.id, { accountId })));
      return ended.filter((e): e is EndedSession => e !== undefined);
    },
  };
  return service;
}
