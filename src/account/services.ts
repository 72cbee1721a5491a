/**
 * The connected services page: what each service receives, refusing or allowing a claim,
 * withdrawing a consent.
 */
import type Router from '@koa/router';
import type { Client } from 'oidc-provider';
import { assertThat } from '../errors.js';
import type { MessageKey, Locale } from '../i18n/index.js';
import { serviceName } from '../i18n/service-name.js';
import { claimsOfScopes, receivableClaims } from '../oidc/claims-policy.js';
import type { PortalKit } from './kit.js';

export function servicesRoutes(router: Router, p: PortalKit): void {
  const { d, t, body, fmt, citizen, requireCitizen, page } = p;
  /**
   * The services an account is connected to: through a live grant, or through claims refused to
   * them. `choosable`: the claims the citizen decides (those the service may receive, but `sub`).
   */
  const servicesOf = async (accountId: string) => {
    const [all, refusedBy] = await Promise.all([d.payloads.listByAccount(accountId, 'Grant'), d.refusals.listByAccount(accountId)]);
    // A grant made while acting for someone holds the principal's consent, not this citizen's:
    // it is governed by the mandate (withdrawn on /account/mandates), not listed here.
    const underMandates = d.mandates ? await d.mandates.grantsUnderMandates(all.map((g) => g.id)) : new Set<string>();
    const grants = all.filter((g) => !underMandates.has(g.id));
    const byClient = new Map<string, { client: Client; scopes: Set<string>; asked: Set<string>; grantIds: string[]; since: number }>();
    const entry = async (clientId: string) => {
      const known = byClient.get(clientId);
      if (known) return known;
      const client = clientId ? await d.provider.Client.find(clientId) : undefined;
      if (!client || client.metadata()['kapija_first_party'] === true) return undefined;
      const created = { client, scopes: new Set<string>(), asked: new Set<string>(), grantIds: [] as string[], since: Infinity };
      byClient.set(clientId, created);
      return created;
    };
    for (const g of grants) {
      const e = await entry(String(g.payload.clientId ?? ''));
      if (!e) continue;
      const openid = (g.payload.openid ?? {}) as { scope?: string; claims?: string[] };
      const rejected = ((g.payload.rejected ?? {}) as { openid?: { claims?: string[] } }).openid?.claims ?? [];
      for (const s of (openid.scope ?? '').split(' ').filter(Boolean)) e.scopes.add(s);
      for (const c of [...(openid.claims ?? []), ...rejected]) e.asked.add(c);
      e.grantIds.push(g.id);
      e.since = Math.min(e.since, Number(g.payload.iat ?? Infinity));
    }
    for (const [clientId, claims] of refusedBy) {
      const e = await entry(clientId);
      if (e) for (const c of claims) e.asked.add(c);
    }
    return new Map(
      [...byClient.entries()].map(([clientId, e]) => {
        const receivable = receivableClaims(e.client);
        const choosable = new Set([...claimsOfScopes(e.scopes), ...e.asked].filter((c) => c !== 'sub' && receivable.has(c)));
        return [clientId, { ...e, choosable, refused: refusedBy.get(clientId) ?? new Set<string>() }];
      }),
    );
  };

  router.get('/services', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    const tr = t(ctx);
    const label = (c: string) => {
      const key = `consent.claim.${c}` as MessageKey;
      return tr(key) === key ? tr('consent.claim.other', { claim: c }) : tr(key);
    };
    const services = [...(await servicesOf(me.account.id)).entries()].map(([clientId, e]) => ({
      clientId,
      name: serviceName(e.client.metadata() as Record<string, unknown>, ctx.state.locale as Locale, e.client.clientName ?? clientId),
      fixed: [...(e.scopes.has('openid') ? [label('sub')] : []), ...(e.scopes.has('offline_access') ? [tr('consent.scope.offline_access')] : [])],
      claims: [...e.choosable].map((claim) => ({ claim, label: label(claim), allowed: !e.refused.has(claim) })),
      since: fmt(ctx, Number.isFinite(e.since) ? new Date(e.since * 1000) : undefined),
    }));
    page(ctx, 'account/services', 'account.services.title', { services, done: ctx.query.done === 'claims' });
  });

  /**
   * The citizen changes what a service receives: an unticked claim is refused (not released to it
   * from now on, in any session); a ticked one is allowed again, in the live grants as well.
   */
  router.post('/services/claims', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    const clientId = String(body(ctx).client_id ?? '');
    const service = (await servicesOf(me.account.id)).get(clientId);
    assertThat(service, 'request.not_found', 404);
    const raw = body(ctx).claims;
    const ticked = new Set((Array.isArray(raw) ? raw : [raw]).filter((x): x is string => typeof x === 'string'));
    const refused = [...service.choosable].filter((c) => !ticked.has(c));
    const allowed = [...service.choosable].filter((c) => ticked.has(c));
    await d.refusals.refuse(me.account.id, clientId, refused);
    await d.refusals.allow(me.account.id, clientId, allowed);
    const reopened = allowed.filter((c) => service.refused.has(c));
    if (reopened.length) {
      for (const id of service.grantIds) {
        const grant = await d.provider.Grant.find(id);
        const rejected = (grant as unknown as { rejected?: { openid?: { claims?: string[] } } } | undefined)?.rejected?.openid;
        if (!grant || !rejected?.claims?.some((c) => reopened.includes(c))) continue;
        rejected.claims = rejected.claims.filter((c) => !reopened.includes(c));
        grant.addOIDCClaims(reopened);
        await grant.save();
      }
    }
    await d.events.emit('consent.given', { accountId: me.account.id, clientId, scopes: [], claims: allowed, refused });
    ctx.status = 303;
    ctx.redirect('/account/services?done=claims');
  });

  router.post('/services/revoke', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    const clientId = String(body(ctx).client_id ?? '');
    const revoked = await d.payloads.revokeGrants(me.account.id, clientId);
    // Withdrawn consent starts over: the next sign-in to the service asks about every claim again.
    const forgotten = await d.refusals.forget(me.account.id, clientId);
    assertThat(revoked.length > 0 || forgotten > 0, 'request.not_found', 404);
    await d.events.emit('consent.revoked', { accountId: me.account.id, clientId });
    ctx.status = 303;
    ctx.redirect('/account/services');
  });
}
