/**
 * Legal representation at the registration desk (/admin/desk/mandates): a registrar records that a
 * citizen acts for another as guardian or parent, from an official decision whose reference is
 * kept, and ends such a representation when the decision does. The checks are the mandate
 * service's (mandates/service.ts): the registrar role, never a mandate naming the registrar, a
 * representative with a verified identity. Voluntary mandates are the citizens' own (/account/mandates).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { KapijaError } from '../errors.js';
import type { MessageKey, Translate } from '../i18n/index.js';
import { inForce, MANDATE_PURPOSES, type MandateService } from '../mandates/service.js';
import { normaliseUsername, type AccountRepository } from '../store/accounts.js';

type Form = Record<string, string | string[] | undefined>;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export interface LegalRepresentationDeps {
  mandates: MandateService;
  accounts: AccountRepository;
  /** Renders a desk page (the desk's own layout and registrar). */
  page(ctx: Context, view: string, title: string, data?: Record<string, unknown>): void;
  /** The registrar signed in at the desk. */
  me(ctx: Context): { accountId: string };
}

export function legalRepresentationRoutes(router: Router, d: LegalRepresentationDeps): void {
  const t = (ctx: Context) => ctx.state.t as Translate;

  const show = async (ctx: Context, principalId: string, extra: Record<string, unknown> = {}) => {
    const principal = await d.accounts.findById(principalId);
    if (!principal) throw new KapijaError('mandate.not_found', 404);
    const tr = t(ctx);
    const mandates = await Promise.all(
      (await d.mandates.listForPrincipal(principal.id)).map(async (m) => ({
        id: m.id,
        representative: (await d.accounts.findById(m.representativeId))?.username ?? '—',
        basis: tr(`account.mandates.basis.${m.basis}` as MessageKey),
        decisionRef: m.decisionRef,
        purposes: m.purposes.map((p) => tr(`account.mandates.purpose.${p}` as MessageKey)).join(', '),
        active: !m.withdrawnAt && inForce(m, Date.now()),
        legal: m.basis !== 'voluntary',
      })),
    );
    d.page(ctx, 'desk-mandates', tr('desk.mandates.heading', { user: principal.username }), {
      principal,
      mandates,
      purposes: MANDATE_PURPOSES.map((value) => ({ value, label: tr(`account.mandates.purpose.${value}` as MessageKey) })),
      form: {},
      ...extra,
    });
  };

  router.get('/mandates/:principal', async (ctx) => show(ctx, ctx.params.principal!));

  router.post('/mandates/:principal', async (ctx) => {
    const principalId = ctx.params.principal!;
    const form = (ctx.request.body ?? {}) as Form;
    const str = (k: string) => (typeof form[k] === 'string' ? (form[k] as string).trim() : '');
    const raw = form.purposes;
    const purposes = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((x): x is string => typeof x === 'string');
    const values = { representative: str('representative').slice(0, 200), basis: str('basis'), decision_ref: str('decision_ref').slice(0, 200), valid_until: str('valid_until'), purposes };
    try {
      const representative = values.representative ? await d.accounts.findByUsername(normaliseUsername(values.representative)) : undefined;
      if (!representative) throw new KapijaError('mandate.representative_invalid', 400);
      if (values.basis !== 'guardian' && values.basis !== 'parent') throw new KapijaError('mandate.invalid', 400);
      if (values.valid_until && !DATE.test(values.valid_until)) throw new KapijaError('mandate.invalid', 400);
      const validUntil = values.valid_until ? Date.parse(`${values.valid_until}T23:59:59Z`) : undefined;
      await d.mandates.record(
        { principalId, representativeId: representative.id, basis: values.basis, decisionRef: values.decision_ref, services: null, purposes, validUntil },
        { actor: d.me(ctx).accountId, ip: ctx.ip || null },
      );
    } catch (err) {
      if (!(err instanceof KapijaError) || err.status >= 500 || err.code === 'mandate.not_found') throw err;
      ctx.status = err.status;
      return show(ctx, principalId, { error: t(ctx)(`error.${err.code}` as MessageKey), form: values });
    }
    ctx.status = 303;
    ctx.redirect(`/admin/desk/mandates/${encodeURIComponent(principalId)}`);
  });

  router.post('/mandates/:principal/:id/withdraw', async (ctx) => {
    const m = await d.mandates.withdraw(ctx.params.id!, { actor: d.me(ctx).accountId, ip: ctx.ip || null });
    ctx.status = 303;
    ctx.redirect(`/admin/desk/mandates/${encodeURIComponent(m.principalId)}`);
  });
}
