/**
 * What administrators can do, shared by the admin API and the console, one module per resource:
 * clients.ts, citizens.ts, sessions.ts and audit.ts. Every change (and every read of a citizen's
 * record) is appended to the 'admin' audit chain with who, what, when and from where. Secrets never
 * leave: a client secret is returned once at creation or rotation, and a citizen's factors are
 * described, never disclosed.
 */
import { createAuditAdmin } from './audit.js';
import { createCitizenAdmin } from './citizens.js';
import { createClientAdmin } from './clients.js';
import { createAdminContext, type AdminServiceDeps } from './context.js';
import { createSessionAdmin } from './sessions.js';

export { ACCOUNT_CLIENT_ID, ADMIN_CHAIN, ADMIN_CLIENT_ID, ADMIN_REAUTH_SECONDS, ADMIN_SCOPE, type Actor, type AdminServiceDeps } from './context.js';
export { toClientView, type ClientView } from './clients.js';
export type { CitizenSummary } from './citizens.js';
export type { EndedSessionView, SessionView } from './sessions.js';
export { auditCsv, auditEntryJson } from './audit.js';

export function createAdminService(deps: AdminServiceDeps) {
  const context = createAdminContext(deps);
  const sessionAdmin = createSessionAdmin(context);
  const { endSessions: _endSessions, sessionView: _sessionView, ...sessions } = sessionAdmin;
  return {
    requireWrite: context.requireWrite,
    clients: createClientAdmin(context),
    citizens: createCitizenAdmin(context, sessionAdmin),
    sessions,
    audit: createAuditAdmin(context),
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
