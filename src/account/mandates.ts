/**
 * The mandates page: whom the citizen authorised to act for them (grant, see, withdraw) and for
 * whom they may act themselves. Granting and withdrawing need both factors proven recently. Legal
 * representation (guardian, parent) is shown but only a registrar records or ends it.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { KapijaError } from '../errors.js';
import type { MessageKey, Locale } from '../i18n/index.js';
import { serviceName } from '../i18n/service-name.js';
import { inForce, MANDATE_PURPOSES, type Mandate } from '../mandates/service.js';
import type { PortalKit } from './kit.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function mandatesRoutes(router: Router, p: PortalKit): void {
  const { d, t, body, fmt, citizen, requireCitizen, requireRecentAuth, page, localName } = p;
  const mandates = d.mandates;
  if (!mandates) return;

  /** The services a mandate may name: those that accept representation, by name in the page's language. */
  const representable = async (ctx: Context) => {
    const all = (await d.clients?.list()) ?? [];
    return all
      .filter((c) => c.enabled && c.metadata['kapija_accepts_representation'] === true)
      .map((c) => ({ clientId: c.clientId, name: serviceName(c.metadata, ctx.state.locale as Locale, String(c.metadata['client_name'] ?? c.clientId)) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  };

  const describe = async (ctx: Context, m: Mandate, otherId: string) => {
    const other = await d.accounts.findById(otherId);
    const tr = t(ctx);
    const name = other ? [other.givenName, other.familyName].filter(Boolean).join(' ') || other.username : '—';
    return {
      id: m.id,
      who: other ? `${name} (${other.username})` : '—',
      basis: tr(`account.mandates.basis.${m.basis}` as MessageKey),
      decisionRef: m.decisionRef,
      services: m.services === null ? tr('account.mandates.services.all') : (await Promise.all(m.services.map((s) => localName(ctx, s)))).join(', '),
      purposes: m.purposes.map((x) => tr(`account.mandates.purpose.${x}` as MessageKey)).join(', '),
      from: fmt(ctx, m.validFrom),
      until: fmt(ctx, m.validUntil ?? undefined),
      withdrawable: m.basis === 'voluntary',
      state: m.withdrawnAt ? tr('account.mandates.state.withdrawn', { when: fmt(ctx, m.withdrawnAt) }) : inForce(m, Date.now()) ? tr('account.mandates.state.active') : tr('account.mandates.state.inactive'),
      active: !m.withdrawnAt && inForce(m, Date.now()),
    };
  };

  const show = async (ctx: Context, extra: Record<string, unknown> = {}) => {
    const me = citizen(ctx);
    const [given, held] = await Promise.all([mandates.listForPrincipal(me.account.id), mandates.listForRepresentative(me.account.id)]);
    const tr = t(ctx);
    page(ctx, 'account/mandates', 'account.mandates.title', {
      given: await Promise.all(given.map((m) => describe(ctx, m, m.representativeId))),
      held: await Promise.all(held.map((m) => describe(ctx, m, m.principalId))),
      services: await representable(ctx),
      purposes: MANDATE_PURPOSES.map((value) => ({ value, label: tr(`account.mandates.purpose.${value}` as MessageKey) })),
      done: ctx.query.done,
      form: {},
      ...extra,
    });
  };

  router.get('/mandates', requireCitizen, async (ctx) => show(ctx));

  router.post('/mandates', requireCitizen, requireRecentAuth('/account/mandates'), async (ctx) => {
    const me = citizen(ctx);
    const b = body(ctx);
    const list = (v: unknown) => (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string');
    const representative = typeof b.representative === 'string' ? b.representative.slice(0, 200) : '';
    const until = typeof b.valid_until === 'string' ? b.valid_until : '';
    const service = typeof b.service === 'string' ? b.service : 'all';
    const form = { representative, valid_until: until, service, purposes: list(b.purposes) };
    try {
      if (until && !DATE.test(until)) throw new KapijaError('mandate.invalid', 400);
      const validUntil = until ? Date.parse(`${until}T23:59:59Z`) : undefined;
      if (validUntil !== undefined && Number.isNaN(validUntil)) throw new KapijaError('mandate.invalid', 400);
      const services = service === 'all' ? null : [service];
      if (services && !(await representable(ctx)).some((s) => s.clientId === service)) throw new KapijaError('mandate.invalid', 400);
      await mandates.grant(me.account.id, representative, { services, purposes: form.purposes, validUntil }, { actor: me.account.id, ip: ctx.ip });
    } catch (err) {
      if (!(err instanceof KapijaError) || err.status >= 500) throw err;
      ctx.status = 400;
      return show(ctx, { error: t(ctx)(`error.${err.code}` as MessageKey), form });
    }
    ctx.status = 303;
    ctx.redirect('/account/mandates?done=granted');
  });

  router.post('/mandates/withdraw', requireCitizen, requireRecentAuth('/account/mandates'), async (ctx) => {
    const me = citizen(ctx);
    const id = body(ctx).mandate_id;
    await mandates.withdraw(typeof id === 'string' ? id : '', { actor: me.account.id, ip: ctx.ip });
    ctx.status = 303;
    ctx.redirect('/account/mandates?done=withdrawn');
  });
}
