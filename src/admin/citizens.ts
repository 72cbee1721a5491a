/**
 * Citizens as administrators find, read, lock, sign out and reset them. Every search and every read
 * of a record is recorded (and a read shows in the citizen's own ledger).
 */
import { KapijaError } from '../errors.js';
import { accountRecord, type Account } from '../store/accounts.js';
import { iso, type Actor, type AdminContext } from './context.js';
import type { createSessionAdmin } from './sessions.js';

export interface CitizenSummary {
  id: string;
  username: string;
  email: string | null;
  name: string | null;
  status: Account['status'];
}

export function createCitizenAdmin(c: AdminContext, sessionAdmin: ReturnType<typeof createSessionAdmin>) {
  const { accounts, credentials, payloads, sessions, roles } = c.deps;
  const { record, atomically, requireWrite, getAccount } = c;
  const { endSessions, sessionView } = sessionAdmin;
  return {
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
          .filter((cred) => c.deps.factors.listed(cred.type))
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
      // A remembered browser stands for the second factor: after an unlock it must be proven again
      // (a lock often answers a suspected takeover, and the taker's browser may be among them).
      if (locked) await c.deps.forgetBrowsers?.(id);
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
        for (const type of c.deps.factors.credentialTypes()) removed[type] = await credentials.removeType(id, type, trx);
        await record(actor, 'admin.citizen.factors_reset', { subjectAccountId: id, details: { removed } }, trx);
      });
      await c.deps.sendReenrolLink?.(id);
      return { id, removed };
    },
    /**
     * Deletes the account the way the citizen would from the portal (account/deletion.ts); the
     * audit entry is written in the same transaction, so there is no deletion without its entry.
     */
    async delete(actor: Actor, id: string) {
      requireWrite(actor);
      // An erased account keeps only its id (a tombstone row the store types do not name): a second deletion is a 404.
      if (((await getAccount(id)).status as string) === 'deleted') throw new KapijaError('admin.citizen.not_found', 404);
      await c.deps.deletion.delete(id, { alongside: (trx) => record(actor, 'admin.citizen.deleted', { subjectAccountId: id }, trx) });
      return { id, status: 'deleted' as const };
    },
    async signOutEverywhere(actor: Actor, id: string) {
      requireWrite(actor);
      await getAccount(id);
      const ended = await endSessions(actor, await sessions.listForAccount(id), 'admin.session.ended');
      await record(actor, 'admin.citizen.signed_out', { subjectAccountId: id, details: { sessions_ended: ended.length } });
      return { id, sessions_ended: ended };
    },
  };
}
