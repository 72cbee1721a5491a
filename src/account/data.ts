/**
 * The your-data page: the export of everything Kapija keeps about the citizen (never a secret) and
 * the account's deletion; the portal's own sign-in link.
 */
import type Router from '@koa/router';

import { accountRecord } from '../store/accounts.js';
import type { PortalKit } from './kit.js';

export function dataRoutes(router: Router, p: PortalKit): void {
  const { d, t, body, citizen, requireCitizen, requireRecentAuth, page } = p;
  router.get('/data', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    page(ctx, 'account/data', 'account.data.title', { username: me.account.username });
  });

  router.get('/data/export.json', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    const a = me.account;
    const [creds, sessions, grants, devices, refused] = await Promise.all([
      d.credentials.list(a.id),
      d.sessions.listForAccount(a.id),
      d.payloads.listByAccount(a.id, 'Grant'),
      d.devices.listForAccount(a.id),
      d.refusals.listByAccount(a.id),
    ]);
    const identity = await d.identity?.find(a.id);
    const pids = (await d.wallet?.list(a.id)) ?? [];
    const requests = (await d.ciba?.pending(a.id)) ?? [];
    ctx.set('content-disposition', 'attachment; filename="kapija-export.json"');
    ctx.set('cache-control', 'no-store');
    ctx.body = {
      exported_at: new Date().toISOString(),
      account: { ...accountRecord(a), updated_at: a.updatedAt.toISOString() },
      // Secrets (password hash, TOTP keys, recovery codes, public keys) are never exported.
      factors: creds.map((c) => ({ type: c.type, name: c.name, created_at: c.createdAt.toISOString(), last_used_at: c.lastUsedAt?.toISOString() ?? null, used_at: c.usedAt?.toISOString() ?? null })),
      sessions: sessions.map((s) => ({ started_at: s.loginAt?.toISOString() ?? null, expires_at: s.expiresAt?.toISOString() ?? null, acr: s.acr, amr: s.amr, services: s.clients.map((c) => c.clientId) })),
      devices: devices.map((x) => ({ ip: x.ip, user_agent: x.userAgent, first_seen_at: x.createdAt.toISOString(), last_seen_at: x.lastSeenAt.toISOString() })),
      consents: grants.map((g) => ({ service: g.payload.clientId, granted: g.payload.openid ?? {}, expires_at: g.expiresAt ? new Date(g.expiresAt).toISOString() : null })),
      refused_claims: [...refused].map(([service, claims]) => ({ service, claims: [...claims].sort() })),
      // Requests from services still waiting for an answer (CIBA); the answers are in the ledger.
      service_requests: requests.map((r) => ({ service: r.clientId, binding_message: r.bindingMessage ?? null, scopes: r.scopes, claims: r.claims, expires_at: r.expiresAt.toISOString() })),
      // What was verified and how (never a keyed hash, never the officer's account).
      verified_identity: identity
        ? { level: identity.level, method: identity.method, office: identity.office, verified_at: identity.verifiedAt.toISOString(), revoked_at: identity.revokedAt?.toISOString() ?? null, evidence: { type: identity.evidence.type, document_type: identity.evidence.documentType ?? null, issuing_country: identity.evidence.issuingCountry ?? null, expiry: identity.evidence.expiry ?? null }, attributes: identity.attributes }
        : null,
      // PIDs issued to the citizen's wallets (the credentials themselves are only in the wallets).
      wallet_credentials: pids.map((c) => ({ id: c.id, wallet: c.clientId, level: c.level, channel: c.channel, issued_at: c.issuedAt.toISOString(), expires_at: c.expiresAt.toISOString(), revoked_at: c.revokedAt?.toISOString() ?? null })),
    };
  });

  router.post('/delete', requireCitizen, requireRecentAuth('/account/data'), async (ctx) => {
    const me = citizen(ctx);
    if (String(body(ctx).confirm ?? '').trim().toLowerCase() !== me.account.username) {
      ctx.status = 400;
      return page(ctx, 'account/data', 'account.data.title', { username: me.account.username, error: t(ctx)('account.delete.mismatch') });
    }
    await d.deletion.delete(me.account.id);
    d.signIn.clear(ctx);
    ctx.status = 303;
    ctx.redirect('/account/deleted');
  });

  router.get('/deleted', async (ctx) => {
    page(ctx, 'account/deleted', 'account.deleted.title', {});
  });

  router.get('/login', async (ctx) => {
    d.signIn.login(ctx, { returnTo: typeof ctx.query.return === 'string' ? ctx.query.return : '/account' });
  });
}
