/**
 * Sign-in sessions as administrators see and end them. Ending one revokes its grants and tells
 * the services by back-channel logout; a failed delivery is retried twice after a pause, then
 * later from the database, and each outcome goes to the audit trail.
 */
import type { LogoutDelivery, SessionSummary } from '../oidc/sessions.js';
import { sendBackchannelLogout } from '../oidc/logout-retries.js';
import { iso, type Actor, type AdminContext } from './context.js';

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

export function createSessionAdmin(c: AdminContext) {
  const { provider, accounts, payloads, sessions } = c.deps;
  const { record, requireWrite } = c;
  const retryDelayMs = c.deps.retryDelayMs ?? 500;

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
    endSessions,
    sessionView,
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
  };
}
