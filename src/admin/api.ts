/**
 * The admin API under /admin/api: JSON only, bearer tokens (auth.ts), bodies validated with zod.
 * Every route is described in openapi.ts; a test checks that none is missing.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { KapijaError } from '../errors.js';
import { apiErrors } from '../http/error-handler.js';
import { parseWith } from '../http/guard.js';
import { bodyParser } from '../http/middleware.js';
import type { AcrLevel } from '../oidc/acr.js';
import type { AccountRepository } from '../store/accounts.js';
import type { AuditFilter } from '../store/audit.js';
import type { RoleRepository } from '../store/roles.js';
import { bearerAuth, requireFreshSignIn } from './auth.js';
import { openApiDocument } from './openapi.js';
import { auditQuery, clientCreateBody, clientUpdateBody, sessionsEndBody, type AuditQuery } from './schemas.js';
import { auditCsv, auditEntryJson, type Actor, type AdminService } from './service.js';
import { registerIdentityOversightRoutes, registerRegistrarRoutes, type RegistrarApiDeps } from './registrar-api.js';

export const API_PREFIX = '/admin/api';

export function auditFilter(q: AuditQuery): AuditFilter {
  const date = (v: string | undefined, end: boolean) => (v === undefined ? undefined : new Date(v.length === 10 ? `${v}T${end ? '23:59:59.999' : '00:00:00.000'}Z` : v));
  return {
    chain: q.chain || undefined,
    actor: q.actor || undefined,
    action: q.action || undefined,
    subject: q.subject || undefined,
    client: q.client || undefined,
    from: date(q.from || undefined, false),
    to: date(q.to || undefined, true),
    limit: q.limit,
    offset: q.offset,
  };
}

export function createAdminApi(deps: { provider: Provider; accounts: AccountRepository; roles: RoleRepository; service: AdminService; issuer: string; minAcr: AcrLevel; registrar?: RegistrarApiDeps }) {
  const { service } = deps;
  const router = new Router({ prefix: API_PREFIX });
  const actor = (ctx: Context) => ctx.state.actor as Actor;
  const write = async (ctx: Context, next: Next) => {
    service.requireWrite(actor(ctx));
    requireFreshSignIn(ctx);
    await next();
  };
  const query = (ctx: Context) => parseWith(auditQuery, ctx.query);

  router.use(apiErrors);
  router.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument(deps.issuer);
  });
  // Registrars have their own check (signed in at high, the registrar role), before the administrators'.
  registerRegistrarRoutes(router, () => deps.registrar);
  const identity = deps.registrar?.identity;
  router.use(bearerAuth({ ...deps, identityLevel: identity && ((accountId: string) => identity.levelOf(accountId)) }), bodyParser());
  registerIdentityOversightRoutes(router, () => deps.registrar);

  router.get('/me', (ctx) => {
    ctx.body = { account_id: actor(ctx).accountId, role: actor(ctx).role };
  });

  // ------------------------------------------------------------------ clients
  router.get('/clients', async (ctx) => {
    ctx.body = { clients: await service.clients.list() };
  });
  router.post('/clients', write, async (ctx) => {
    ctx.status = 201;
    ctx.body = await service.clients.create(actor(ctx), parseWith(clientCreateBody, ctx.request.body));
  });
  router.get('/clients/:clientId', async (ctx) => {
    ctx.body = await service.clients.get(ctx.params.clientId!);
  });
  router.patch('/clients/:clientId', write, async (ctx) => {
    ctx.body = await service.clients.update(actor(ctx), ctx.params.clientId!, parseWith(clientUpdateBody, ctx.request.body));
  });
  router.post('/clients/:clientId/secret', write, async (ctx) => {
    ctx.body = await service.clients.rotateSecret(actor(ctx), ctx.params.clientId!);
  });
  router.post('/clients/:clientId/disable', write, async (ctx) => {
    ctx.body = await service.clients.setEnabled(actor(ctx), ctx.params.clientId!, false);
  });
  router.post('/clients/:clientId/enable', write, async (ctx) => {
    ctx.body = await service.clients.setEnabled(actor(ctx), ctx.params.clientId!, true);
  });
  router.delete('/clients/:clientId', write, async (ctx) => {
    await service.clients.delete(actor(ctx), ctx.params.clientId!);
    ctx.status = 204;
  });

  // ------------------------------------------------------------------ citizens
  router.get('/citizens', async (ctx) => {
    const q = parseWith(z.object({ q: z.string().max(200).default(''), limit: z.coerce.number().int().min(1).max(200).default(50) }), ctx.query);
    ctx.body = { citizens: await service.citizens.search(actor(ctx), q.q, q.limit) };
  });
  router.get('/citizens/:accountId', async (ctx) => {
    ctx.body = await service.citizens.view(actor(ctx), ctx.params.accountId!);
  });
  router.delete('/citizens/:accountId', write, async (ctx) => {
    ctx.body = await service.citizens.delete(actor(ctx), ctx.params.accountId!);
  });
  router.post('/citizens/:accountId/lock', write, async (ctx) => {
    ctx.body = await service.citizens.setLocked(actor(ctx), ctx.params.accountId!, true);
  });
  router.post('/citizens/:accountId/unlock', write, async (ctx) => {
    ctx.body = await service.citizens.setLocked(actor(ctx), ctx.params.accountId!, false);
  });
  router.post('/citizens/:accountId/reset-factors', write, async (ctx) => {
    ctx.body = await service.citizens.resetFactors(actor(ctx), ctx.params.accountId!);
  });
  router.post('/citizens/:accountId/sign-out', write, async (ctx) => {
    ctx.body = await service.citizens.signOutEverywhere(actor(ctx), ctx.params.accountId!);
  });

  // ------------------------------------------------------------------ sessions
  router.get('/sessions', async (ctx) => {
    const q = parseWith(z.object({ account: z.string().max(36).optional(), client: z.string().max(255).optional() }), ctx.query);
    ctx.body = { sessions: await service.sessions.list(actor(ctx), { accountId: q.account || undefined, clientId: q.client || undefined }) };
  });
  router.post('/sessions/end', write, async (ctx) => {
    ctx.body = await service.sessions.end(actor(ctx), parseWith(sessionsEndBody, ctx.request.body).sessions);
  });
  router.delete('/sessions/:uid', write, async (ctx) => {
    const result = await service.sessions.end(actor(ctx), [ctx.params.uid!]);
    if (result.ended.length === 0) throw new KapijaError('request.not_found', 404);
    ctx.body = result.ended[0];
  });

  // ------------------------------------------------------------------ audit
  router.get('/audit', async (ctx) => {
    const filter = auditFilter(query(ctx));
    const [entries, total] = await Promise.all([service.audit.list(actor(ctx), filter), service.audit.count(filter)]);
    ctx.body = { total, entries: entries.map(auditEntryJson) };
  });
  router.get('/audit/export', async (ctx) => {
    const q = query(ctx);
    const format = q.format ?? 'json';
    const entries = await service.audit.export(actor(ctx), auditFilter(q), format);
    ctx.set('content-disposition', `attachment; filename="kapija-audit.${format}"`);
    if (format === 'csv') {
      ctx.type = 'text/csv; charset=utf-8';
      ctx.body = auditCsv(entries);
    } else {
      ctx.body = entries.map(auditEntryJson);
    }
  });
  router.get('/audit/verify', async (ctx) => {
    const q = parseWith(z.object({ chain: z.string().max(100).optional() }), ctx.query);
    ctx.body = await service.audit.verify(q.chain || undefined);
  });

  return router;
}
