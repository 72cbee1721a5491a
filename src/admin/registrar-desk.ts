/**
 * The registration desk in the console (/admin/desk): a registrar, signed in at high through the
 * console's own sign-in, finds the citizen's account (or opens one for a citizen without e-mail or
 * phone), records the document check with the verified attributes and the level, and hands over the
 * printed activation code; revokes an identity (e.g. fraud). The same operations as the registrar
 * routes of the admin API (registrar-api.ts), with the same checks in identity/service.ts. Forms
 * carry the CSRF token; a change needs a sign-in from the last 10 minutes.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { KapijaError } from '../errors.js';
import type { OwnSignIn } from '../http/own-sign-in.js';
import type { Renderer } from '../http/render.js';
import { isUsername } from '../http/validators.js';
import type { Translate } from '../i18n/index.js';
import { ACR, levelOfAcr } from '../oidc/acr.js';
import type { IdentityService } from '../identity/service.js';
import type { RegistrarRoles } from '../identity/registrar.js';
import { normaliseUsername, type AccountRepository } from '../store/accounts.js';
import { documentCheckBody, proofingOf, revocationBody } from './registrar-schemas.js';
import { ADMIN_REAUTH_SECONDS } from './service.js';
import type { MandateService } from '../mandates/service.js';
import { legalRepresentationRoutes } from './registrar-mandates.js';
import { deskPidRoutes, type DeskPidOffers } from './registrar-wallet.js';

type Form = Record<string, string | string[] | undefined>;

export interface RegistrarDeskDeps {
  signIn: OwnSignIn;
  accounts: AccountRepository;
  identity: IdentityService;
  registrars: RegistrarRoles;
  render: Renderer;
  /** Legal representation recorded at the desk (registrar-mandates.ts); absent, not offered. */
  mandates?: MandateService;
  /** Kapija's PID for the citizen's wallet (registrar-wallet.ts); absent, not offered. */
  pidOffers?: DeskPidOffers;
}

const FIELDS = ['level', 'office', 'document_type', 'issuing_country', 'document_number', 'expiry', 'given_name_cyrl', 'family_name_cyrl', 'given_name_latn', 'family_name_latn', 'birthdate', 'jmbg'] as const;

export function createRegistrarDesk(d: RegistrarDeskDeps): Router {
  const router = new Router({ prefix: '/admin/desk' });
  const t = (ctx: Context) => ctx.state.t as Translate;
  const me = (ctx: Context) => ctx.state.registrar as { accountId: string; username: string };
  const str = (form: Form, k: string) => {
    const v = form[k];
    return typeof v === 'string' ? v.trim() : '';
  };
  const page = (ctx: Context, view: string, title: string, data: Record<string, unknown> = {}) =>
    d.render(ctx, `admin/${view}`, { title, wide: true, actorName: me(ctx).username, ...data });

  router.use(async (ctx: Context, next: Next) => {
    const session = await d.signIn.current(ctx);
    const returnTo = ctx.method === 'GET' ? ctx.originalUrl : '/admin/desk';
    if (!session || levelOfAcr(session.acr) !== 'high') return d.signIn.login(ctx, { returnTo, acrValues: ACR.high });
    const account = await d.accounts.findById(session.accountId);
    if (!account || account.status !== 'active' || !(await d.registrars.isRegistrar(account.id))) throw new KapijaError('identity.registrar_required', 403);
    if (ctx.method === 'POST' && Math.floor(Date.now() / 1000) - session.authTime > ADMIN_REAUTH_SECONDS) return d.signIn.login(ctx, { returnTo, reauthenticate: true, acrValues: ACR.high });
    ctx.state.registrar = { accountId: account.id, username: account.username };
    await next();
  });

  router.get('/', async (ctx) => {
    const q = typeof ctx.query.q === 'string' ? ctx.query.q.trim().slice(0, 200) : '';
    const found = q.length >= 2 ? await d.accounts.search(q, 20) : undefined;
    const accounts = found
      ? await Promise.all(found.filter((a) => a.status === 'active').map(async (a) => ({ id: a.id, username: a.username, email: a.email, level: await d.identity.levelOf(a.id) })))
      : undefined;
    page(ctx, 'desk', t(ctx)('desk.title'), { q, accounts });
  });

  const checkForm = async (ctx: Context, values: Record<string, string>, error?: string) => {
    const accountId = values.account_id || undefined;
    const account = accountId ? await d.accounts.findById(accountId) : undefined;
    if (accountId && !account) throw new KapijaError('identity.not_found', 404);
    page(ctx, 'desk-check', t(ctx)('desk.check.heading'), { values, account, error });
  };
  router.get('/check', async (ctx) => checkForm(ctx, { account_id: typeof ctx.query.account === 'string' ? ctx.query.account : '', level: 'high', issuing_country: 'RS', document_type: 'idcard' }));

  router.post('/check', async (ctx) => {
    const form = (ctx.request.body ?? {}) as Form;
    const values: Record<string, string> = { account_id: str(form, 'account_id'), username: str(form, 'username') };
    for (const f of FIELDS) values[f] = str(form, f);
    const body = {
      level: values.level,
      office: values.office,
      evidence: { document_type: values.document_type, issuing_country: values.issuing_country, document_number: values.document_number, expiry: values.expiry },
      attributes: { given_name_cyrl: values.given_name_cyrl, family_name_cyrl: values.family_name_cyrl, given_name_latn: values.given_name_latn, family_name_latn: values.family_name_latn, birthdate: values.birthdate, jmbg: values.jmbg },
    };
    const parsed = documentCheckBody.safeParse(body);
    if (!parsed.success) {
      ctx.status = 400;
      const field = parsed.error.issues[0]!.path.at(-1);
      return checkForm(ctx, values, t(ctx)('desk.error.field', { field: t(ctx)(`desk.field.${String(field)}` as Parameters<Translate>[0]) }));
    }
    const by = { actor: me(ctx).accountId, ip: ctx.ip || null };
    try {
      const proofing = proofingOf(parsed.data, me(ctx).accountId);
      let accountId = values.account_id || undefined;
      let username: string | undefined;
      let opened: string | undefined;
      if (!accountId) {
        username = normaliseUsername(values.username);
        if (!isUsername(username) || (await d.accounts.findByUsername(username))) {
          ctx.status = 400;
          return checkForm(ctx, values, t(ctx)('desk.error.username'));
        }
        if (proofing.attributes.jmbg && (await d.identity.findAccountByVerifiedJmbg(proofing.attributes.jmbg))) await d.identity.issueActivationCode(proofing, by);
        accountId = opened = (await d.accounts.create({ username, emailVerified: false }, null)).id;
      } else {
        username = (await d.accounts.findById(accountId))?.username;
      }
      const { code, expiresAt } = await d.identity.issueActivationCode(proofing, by, { accountId }).catch(async (err: unknown) => {
        // The check was refused (e.g. an expired document): the account opened for it goes too.
        if (opened) await d.accounts.erase(opened);
        throw err;
      });
      page(ctx, 'desk-code', t(ctx)('desk.code.heading'), { code, username, expires: new Intl.DateTimeFormat(String(ctx.state.locale), { dateStyle: 'long' }).format(expiresAt) });
    } catch (err) {
      if (!(err instanceof KapijaError) || err.status >= 500 || err.status === 404) throw err;
      ctx.status = err.status;
      return checkForm(ctx, values, t(ctx)(`error.${err.code}` as Parameters<Translate>[0]));
    }
  });

  const identityPage = async (ctx: Context, id: string, error?: string) => {
    const account = await d.accounts.findById(id);
    if (!account) throw new KapijaError('identity.not_found', 404);
    const identity = await d.identity.find(id);
    if (identity) await d.identity.recordView(id, { actor: me(ctx).accountId, ip: ctx.ip || null });
    page(ctx, 'desk-identity', t(ctx)('desk.identity.heading', { user: account.username }), { account, identity, error, own: id === me(ctx).accountId, pidOffers: Boolean(d.pidOffers) });
  };
  router.get('/identity/:id', async (ctx) => identityPage(ctx, ctx.params.id!));
  router.post('/identity/:id/revoke', async (ctx) => {
    const id = ctx.params.id!;
    const parsed = revocationBody.safeParse({ reason: str((ctx.request.body ?? {}) as Form, 'reason') });
    if (!parsed.success) {
      ctx.status = 400;
      return identityPage(ctx, id, t(ctx)('desk.error.field', { field: t(ctx)('desk.field.reason') }));
    }
    if (id === me(ctx).accountId) throw new KapijaError('identity.own_account', 403);
    await d.identity.revoke(id, { actor: me(ctx).accountId, ip: ctx.ip || null }, parsed.data.reason);
    ctx.status = 303;
    ctx.redirect(`/admin/desk/identity/${encodeURIComponent(id)}`);
  });

  if (d.mandates) legalRepresentationRoutes(router, { mandates: d.mandates, accounts: d.accounts, page, me });
  if (d.pidOffers) deskPidRoutes(router, { offers: d.pidOffers, accounts: d.accounts, render: d.render, me });
  return router;
}
