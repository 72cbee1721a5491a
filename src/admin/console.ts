/**
 * The administration console at /admin: server-rendered pages over the same service as the API.
 * Sign-in goes through Kapija itself (http/own-sign-in.ts) at the configured level of assurance
 * (ADMIN_MIN_ACR); a change needs a sign-in from the last 10 minutes, else the administrator signs
 * in again and returns to the page. CSRF protects every form (mounted in index.ts).
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { KapijaError } from '../errors.js';
import type { OwnSignIn } from '../http/own-sign-in.js';
import type { Renderer } from '../http/render.js';
import type { Translate } from '../i18n/index.js';
import { levelOfAcr, rank } from '../oidc/acr.js';
import type { AccountRepository } from '../store/accounts.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { RoleRepository } from '../store/roles.js';
import { auditFilter } from './api.js';
import { z } from 'zod';
import { parseBody, parseWith } from '../http/guard.js';
import { auditQuery, clientCreateBody, clientUpdateBody } from './schemas.js';
import { ADMIN_REAUTH_SECONDS, auditCsv, auditEntryJson, type Actor, type AdminService } from './service.js';

/** Changes need both factors proven within this many seconds. */
export const REAUTH_SECONDS = ADMIN_REAUTH_SECONDS;
const LANGS = ['sr-Cyrl', 'sr-Latn', 'en'] as const;

/** A console form as the browser sends it: each field one string or, repeated, several. */
const consoleForm = z.record(z.string(), z.union([z.string(), z.array(z.string())]).optional());
type Form = z.infer<typeof consoleForm>;
const str = (f: Form, k: string) => {
  const v = f[k];
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
};
const lines = (f: Form, k: string) => str(f, k).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);

/** Turns the client form into an API body; empty fields are left out (create) or removed (update). */
function clientBodyFromForm(f: Form, forUpdate: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const set = (k: string, v: unknown, empty: boolean) => {
    if (!empty) body[k] = v;
    else if (forUpdate) body[k] = null;
  };
  for (const k of ['client_name', 'client_name#sr-Cyrl', 'client_name#sr-Latn', 'client_name#en', 'logo_uri', 'policy_uri', 'backchannel_logout_uri', 'jwks_uri', 'kapija_sector_identifier_uri', 'kapija_min_acr']) {
    set(k, str(f, k), str(f, k) === '');
  }
  for (const k of ['scope', 'token_endpoint_auth_method', 'application_type']) if (str(f, k)) body[k] = str(f, k);
  body.redirect_uris = lines(f, 'redirect_uris');
  body.post_logout_redirect_uris = lines(f, 'post_logout_redirect_uris');
  for (const k of ['kapija_access_token_ttl', 'kapija_refresh_token_ttl']) set(k, Number(str(f, k)), str(f, k) === '');
  const jwks = str(f, 'jwks');
  if (jwks) {
    try {
      body.jwks = JSON.parse(jwks);
    } catch {
      throw new KapijaError('request.invalid', 400, { details: { field: 'jwks', message: 'not JSON' } });
    }
  } else if (forUpdate) body.jwks = null;
  const purposes: Record<string, Record<string, string>> = {};
  for (const lang of LANGS) {
    for (const line of lines(f, `purposes_${lang}`)) {
      const i = line.indexOf(':');
      if (i <= 0) throw new KapijaError('request.invalid', 400, { details: { field: `purposes_${lang}`, message: 'write claim: purpose' } });
      const claim = line.slice(0, i).trim();
      (purposes[claim] ??= {})[lang] = line.slice(i + 1).trim();
    }
  }
  set('kapija_claim_purposes', purposes, Object.keys(purposes).length === 0);
  if (!forUpdate) body.client_id = str(f, 'client_id');
  return body;
}

/** The form's initial values from a stored client. */
function formFromClient(c: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(c)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  out.redirect_uris = ((c.redirect_uris as string[] | undefined) ?? []).join('\n');
  out.post_logout_redirect_uris = ((c.post_logout_redirect_uris as string[] | undefined) ?? []).join('\n');
  if (c.jwks) out.jwks = JSON.stringify(c.jwks, null, 2);
  const purposes = (c.kapija_claim_purposes as Record<string, Record<string, string>> | undefined) ?? {};
  for (const lang of LANGS) {
    out[`purposes_${lang}`] = Object.entries(purposes)
      .filter(([, t]) => t[lang])
      .map(([claim, t]) => `${claim}: ${t[lang]}`)
      .join('\n');
  }
  return out;
}

export function createAdminConsole(d: { service: AdminService; signIn: OwnSignIn; roles: RoleRepository; accounts: AccountRepository; factors: Pick<FactorRegistry, 'label'>; render: Renderer; minAcr: string; lowered?: boolean }) {
  const { service, signIn, render } = d;
  const router = new Router({ prefix: '/admin' });
  const t = (ctx: Context) => ctx.state.t as Translate;
  const actor = (ctx: Context) => ctx.state.actor as Actor;
  const minLevel = levelOfAcr(d.minAcr) ?? 'high';
  /** In development the console may accept less than production's security key; every page says so. */
  const devBanner = d.lowered ? `admin.acr.${minLevel}` : undefined;

  const page = (ctx: Context, view: string, title: string, data: Record<string, unknown> = {}) => {
    const a = ctx.state.actor as Actor | undefined;
    render(ctx, `admin/${view}`, { title, wide: true, nav: ctx.path, actorName: ctx.state.actorName, role: a?.role, canWrite: a?.role === 'admin', devBanner, ...data });
  };

  /** Renders the page again with the error; a KapijaError's details (the field at fault) are shown too. */
  const withError = async (ctx: Context, err: unknown, again: (error: string) => Promise<void> | void) => {
    if (!(err instanceof KapijaError) || err.status !== 400 && err.status !== 409) throw err;
    const details = err.details?.message ? `${err.details.field ? `${String(err.details.field)}: ` : ''}${String(err.details.message)}` : '';
    ctx.status = err.status;
    await again(`${t(ctx)(`error.${err.code}` as Parameters<Translate>[0])}${details ? ` ${t(ctx)('admin.error.details', { message: details })}` : ''}`);
  };

  router.get('/login', (ctx) => {
    signIn.login(ctx, { returnTo: typeof ctx.query.return_to === 'string' ? ctx.query.return_to : '/admin', reauthenticate: ctx.query.reauth === '1', acrValues: d.minAcr });
  });
  router.get('/callback', async (ctx) => {
    let to: string;
    try {
      to = await signIn.callback(ctx);
    } catch (err) {
      // The sign-in could not reach ADMIN_MIN_ACR: say where the administrator adds the factor it needs.
      if (err instanceof KapijaError && err.code === 'login.acr_unmet') {
        throw new KapijaError('admin.step_up_required', 403, { details: { help: { href: '/account/security', text: 'error.admin.security_link' } } });
      }
      throw err;
    }
    ctx.status = 303;
    ctx.redirect(to);
  });
  router.post('/logout', (ctx) => {
    signIn.clear(ctx);
    ctx.status = 303;
    ctx.redirect('/session/end');
  });

  // Everything below needs a signed-in administrator or auditor at the required level.
  router.use(async (ctx: Context, next: Next) => {
    if (['/admin/login', '/admin/callback', '/admin/logout'].includes(ctx.path)) return next();
    const session = await signIn.current(ctx);
    const returnTo = ctx.method === 'GET' ? ctx.originalUrl : ctx.get('referer').replace(/^https?:\/\/[^/]+/, '') || '/admin';
    const toLogin = (reauth: boolean) => {
      ctx.status = 303;
      ctx.redirect(`/admin/login?${new URLSearchParams({ return_to: returnTo.startsWith('/admin') ? returnTo : '/admin', ...(reauth ? { reauth: '1' } : {}) }).toString()}`);
    };
    if (!session || rank(levelOfAcr(session.acr) ?? 'low') < rank(minLevel)) return toLogin(false);
    const account = await d.accounts.findById(session.accountId);
    const roles = account?.status === 'active' ? await d.roles.rolesOf(session.accountId) : [];
    if (!account || roles.length === 0) throw new KapijaError('admin.forbidden', 403);
    ctx.state.actor = { accountId: account.id, role: roles.includes('admin') ? 'admin' : 'auditor', ip: ctx.ip || null } satisfies Actor;
    ctx.state.actorName = account.username;
    if (ctx.method === 'POST') {
      service.requireWrite(actor(ctx));
      if (Math.floor(Date.now() / 1000) - session.authTime > REAUTH_SECONDS) return toLogin(true);
    }
    await next();
  });

  router.get('/', (ctx) => {
    ctx.status = 303;
    ctx.redirect('/admin/clients');
  });

  clientPages(router, { service, t, actor, page, withError });

  // ------------------------------------------------------------------ citizens
  router.get('/citizens', async (ctx) => {
    const q = typeof ctx.query.q === 'string' ? ctx.query.q.slice(0, 200) : '';
    page(ctx, 'citizens', t(ctx)('admin.citizens.heading'), { q, citizens: q ? await service.citizens.search(actor(ctx), q) : undefined });
  });
  router.get('/citizens/:accountId', async (ctx) => {
    const citizen = await service.citizens.view(actor(ctx), ctx.params.accountId!);
    // Each factor as the registry names it ("Authenticator app"), not its credential type.
    const factors = citizen.factors.map((f) => ({ ...f, typeLabel: d.factors.label(f.type) }));
    page(ctx, 'citizen', t(ctx)('admin.citizen.heading', { user: citizen.username }), { citizen: { ...citizen, factors }, saved: ctx.query.saved === '1' });
  });
  const citizenAction = (path: string, run: (a: Actor, id: string) => Promise<unknown>) =>
    router.post(`/citizens/:accountId/${path}`, async (ctx) => {
      await run(actor(ctx), ctx.params.accountId!);
      ctx.status = 303;
      ctx.redirect(`/admin/citizens/${encodeURIComponent(ctx.params.accountId!)}?saved=1`);
    });
  citizenAction('lock', (a, id) => service.citizens.setLocked(a, id, true));
  citizenAction('unlock', (a, id) => service.citizens.setLocked(a, id, false));
  citizenAction('reset-factors', (a, id) => service.citizens.resetFactors(a, id));
  citizenAction('sign-out', (a, id) => service.citizens.signOutEverywhere(a, id));

  // ------------------------------------------------------------------ sessions
  router.get('/sessions', async (ctx) => {
    const account = typeof ctx.query.account === 'string' ? ctx.query.account.trim().slice(0, 36) : '';
    const client = typeof ctx.query.client === 'string' ? ctx.query.client.trim().slice(0, 255) : '';
    const sessions = await service.sessions.list(actor(ctx), { accountId: account || undefined, clientId: client || undefined });
    page(ctx, 'sessions', t(ctx)('admin.sessions.heading'), { sessions, account, client });
  });
  router.post('/sessions/end', async (ctx) => {
    const raw = parseBody(ctx, consoleForm).sessions;
    const uids = (Array.isArray(raw) ? raw : raw ? [raw] : []).filter((s) => typeof s === 'string' && s.length <= 255);
    if (uids.length === 0) throw new KapijaError('request.invalid', 400);
    const result = await service.sessions.end(actor(ctx), uids);
    page(ctx, 'sessions-ended', t(ctx)('admin.sessions.ended', { count: result.ended.length }), { result, canonicalUrl: '/admin/sessions' });
  });

  // ------------------------------------------------------------------ audit
  router.get('/audit', async (ctx) => {
    const q = parseWith(auditQuery, ctx.query);
    const filter = auditFilter(q);
    const [entries, total] = await Promise.all([service.audit.list(actor(ctx), { ...filter, limit: filter.limit ?? 100 }), service.audit.count(filter)]);
    const verification = ctx.query.verify === '1' ? await service.audit.verify(q.chain || undefined) : undefined;
    const exportQuery = new URLSearchParams(Object.entries(q).filter(([k, v]) => v !== undefined && v !== '' && k !== 'format').map(([k, v]): [string, string] => [k, String(v)])).toString();
    page(ctx, 'audit', t(ctx)('admin.audit.heading'), { entries: entries.map(auditEntryJson), total, q, verification, exportQuery });
  });
  router.get('/audit/export', async (ctx) => {
    const q = parseWith(auditQuery, ctx.query);
    const format = q.format ?? 'csv';
    const entries = await service.audit.export(actor(ctx), auditFilter(q), format);
    ctx.set('content-disposition', `attachment; filename="kapija-audit.${format}"`);
    ctx.set('cache-control', 'no-store');
    if (format === 'csv') {
      ctx.type = 'text/csv; charset=utf-8';
      ctx.body = auditCsv(entries);
    } else {
      ctx.body = entries.map(auditEntryJson);
    }
  });

  return router;
}

/** The console's pages for one resource: what they share with the rest of the console. */
interface ConsoleKit {
  service: AdminService;
  t(ctx: Context): Translate;
  actor(ctx: Context): Actor;
  page(ctx: Context, view: string, title: string, data?: Record<string, unknown>): void;
  withError(ctx: Context, err: unknown, again: (error: string) => Promise<void> | void): Promise<void>;
}

/** Services (clients): list, create, change, rotate the secret, delete. */
function clientPages(router: Router, kit: ConsoleKit): void {
  const { service, t, actor, page, withError } = kit;
  // ------------------------------------------------------------------ clients
  router.get('/clients', async (ctx) => page(ctx, 'clients', t(ctx)('admin.clients.heading'), { clients: await service.clients.list() }));
  const clientForm = (ctx: Context, values: Record<string, string>, error?: string, clientId?: string) =>
    page(ctx, 'client-form', clientId ? t(ctx)('admin.client.edit.heading', { client: clientId }) : t(ctx)('admin.client.new.heading'), {
      values,
      error,
      clientId,
      saved: ctx.method === 'GET' && ctx.query.saved === '1',
      langs: LANGS,
      canonicalUrl: clientId ? `/admin/clients/${encodeURIComponent(clientId)}` : '/admin/clients/new',
    });
  router.get('/clients/new', (ctx) => clientForm(ctx, { scope: 'openid profile email offline_access' }));
  router.post('/clients', async (ctx) => {
    const form = parseBody(ctx, consoleForm);
    try {
      const body = parseWith(clientCreateBody, clientBodyFromForm(form, false));
      const { client, client_secret } = await service.clients.create(actor(ctx), body);
      if (!client_secret) {
        ctx.status = 303;
        return ctx.redirect(`/admin/clients/${encodeURIComponent(client.client_id)}`);
      }
      page(ctx, 'client-secret', t(ctx)('admin.client.secret.heading', { client: client.client_id }), { clientId: client.client_id, secret: client_secret, canonicalUrl: '/admin/clients' });
    } catch (err) {
      await withError(ctx, err, (error) => clientForm(ctx, Object.fromEntries(Object.entries(form).map(([k, v]) => [k, String(v ?? '')])), error));
    }
  });
  router.get('/clients/:clientId', async (ctx) => {
    const client = await service.clients.get(ctx.params.clientId!);
    clientForm(ctx, formFromClient(client), undefined, client.client_id);
  });
  router.post('/clients/:clientId', async (ctx) => {
    const form = parseBody(ctx, consoleForm);
    const clientId = ctx.params.clientId!;
    try {
      const { client_secret } = await service.clients.update(actor(ctx), clientId, parseWith(clientUpdateBody, clientBodyFromForm(form, true)));
      if (client_secret) return page(ctx, 'client-secret', t(ctx)('admin.client.secret.heading', { client: clientId }), { clientId, secret: client_secret });
      ctx.status = 303;
      ctx.redirect(`/admin/clients/${encodeURIComponent(clientId)}?saved=1`);
    } catch (err) {
      await withError(ctx, err, (error) => clientForm(ctx, Object.fromEntries(Object.entries(form).map(([k, v]) => [k, String(v ?? '')])), error, clientId));
    }
  });
  router.post('/clients/:clientId/secret', async (ctx) => {
    const clientId = ctx.params.clientId!;
    const { client_secret } = await service.clients.rotateSecret(actor(ctx), clientId);
    page(ctx, 'client-secret', t(ctx)('admin.client.secret.heading', { client: clientId }), { clientId, secret: client_secret, canonicalUrl: `/admin/clients/${encodeURIComponent(clientId)}` });
  });
  for (const [path, enabled] of [['disable', false], ['enable', true]] as const) {
    router.post(`/clients/:clientId/${path}`, async (ctx) => {
      await service.clients.setEnabled(actor(ctx), ctx.params.clientId!, enabled);
      ctx.status = 303;
      ctx.redirect(`/admin/clients/${encodeURIComponent(ctx.params.clientId!)}?saved=1`);
    });
  }
  router.post('/clients/:clientId/delete', async (ctx) => {
    await service.clients.delete(actor(ctx), ctx.params.clientId!);
    ctx.status = 303;
    ctx.redirect('/admin/clients');
  });
}
