/**
 * The consent step: what the service asks for, claim by claim, and what the citizen decided.
 *
 * - A claim the service is not registered for (claims-policy.ts) is neither shown nor granted,
 *   whatever its `claims` parameter asks; it is recorded in the grant as not granted, so the
 *   request does not ask again, and never released.
 * - `sub` is required; a claim the service marks essential is required too, except the national
 *   identifier (jmbg), which the citizen can always refuse and which starts unticked.
 * - What the citizen unticks is refused: remembered per account and service (consent_refusals),
 *   carried into the grant of every later session (provider.ts loadExistingGrant) and never
 *   released, until the citizen allows it again in the account portal (/account/services). A
 *   refused claim shown again (no remembered consent) starts unticked.
 * - When the service asks again (`prompt=consent`, as for `offline_access` on every sign-in), the
 *   page lists everything the service receives, the items already allowed marked as such, and the
 *   ledger's consent entry names them all: a consent is never recorded empty. A claim refused
 *   before stays refused and unshown, unless the engine asks for it anew (as above).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { assertThat } from '../errors.js';
import type { KapijaEvents } from '../events.js';
import type { ConsentRefusalRepository } from '../store/consent-refusals.js';
import { NATIONAL_ID_CLAIM, SCOPE_CLAIMS, claimsOfScopes, receivableClaims } from '../oidc/claims-policy.js';
import { serviceName } from '../i18n/service-name.js';
import { formatDateTime } from '../http/render.js';
import type { Locale, MessageKey } from '../i18n/index.js';
import { essentialClaims, requestedClaims, type Details } from './flow.js';
import type { InteractionKit } from './kit.js';
import { PID_SCOPE } from '../wallet/issuer/engine.js';
import { PID_ATTRIBUTES } from '../wallet/pid.js';

export interface ConsentDeps {
  provider: Provider;
  refusals: ConsentRefusalRepository;
  /**
   * Whose claims a grant releases, when not the signed-in account's (a grant made under a mandate
   * releases the principal's): their refusals are shown and recorded, and the consent is theirs.
   */
  dataSubject?: (grantId: string | undefined, accountId: string, clientId: string) => Promise<string>;
}

export interface ConsentOffer {
  clientName: string;
  policyUri: string | undefined;
  offline: boolean;
  /** Access while signed out was allowed before this request. */
  offlineAllowed: boolean;
  /** The scopes the service receives with this consent: those asked for now and those already granted. */
  scopes: string[];
  claims: Array<{ claim: string; required: boolean; checked: boolean; allowed: boolean; purpose: string | undefined }>;
  /** Claims asked for that the service may not receive (acting for someone: also those the principal refused it). */
  withheld: string[];
}

const PERSONAL_CLAIMS = claimsOfScopes(Object.keys(SCOPE_CLAIMS));

type Missing = { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };

export function createConsent({ provider, refusals, dataSubject }: ConsentDeps) {
  const subjectOf = (details: Details, accountId: string, clientId: string) => (dataSubject ? dataSubject(details.grantId, accountId, clientId) : Promise.resolve(accountId));
  const offer = async (ctx: Context, details: Details): Promise<ConsentOffer> => {
    const d = details.prompt.details as Missing;
    const client = await provider.Client.find(String(details.params.client_id));
    const meta = (client?.metadata() ?? {}) as Record<string, unknown>;
    const locale = ctx.state.locale as Locale;
    const receivable = receivableClaims(client);
    // What the grant already holds (prompt=consent asks again for what was allowed before).
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    const grantedScopes = new Set((grant?.getOIDCScope() ?? '').split(' ').filter(Boolean));
    const grantedClaims = new Set([...claimsOfScopes(grantedScopes), ...(grant?.getOIDCClaims() ?? [])]);
    const missingScopes = new Set(d.missingOIDCScope ?? []);
    const requested = String(details.params.scope ?? '').split(' ').filter(Boolean);
    const scopes = requested.filter((s) => missingScopes.has(s) || grantedScopes.has(s));
    for (const s of missingScopes) if (!scopes.includes(s)) scopes.push(s);
    const asked = claimsOfScopes(scopes);
    for (const claim of d.missingOIDCClaims ?? []) asked.add(claim);
    // Personal claims the `claims` parameter asks for again (the engine leaves out what was granted).
    for (const claim of requestedClaims(details)) if (PERSONAL_CLAIMS.has(claim)) asked.add(claim);
    const accountId = details.session?.accountId;
    const owner = accountId && client ? await subjectOf(details, accountId, client.clientId) : undefined;
    const refused = owner && client ? await refusals.list(owner, client.clientId) : new Set<string>();
    // Acting for someone: what the principal refused to this service is the principal's decision,
    // never offered to the representative (nor released), even when the engine asks for it anew.
    const forSomeone = Boolean(owner && owner !== accountId);
    // A refusal holds silently: a claim refused before is shown again only when the engine asks for it anew.
    const askedAnew = new Set([...claimsOfScopes(missingScopes), ...(d.missingOIDCClaims ?? [])]);
    const claims = [...asked].filter((c) => (c === 'sub' || receivable.has(c)) && (!refused.has(c) || (askedAnew.has(c) && !forSomeone)));
    const withheld = [...asked].filter((c) => c !== 'sub' && (!receivable.has(c) || (forSomeone && refused.has(c))));
    const essential = essentialClaims(details);
    const purposes = (meta['kapija_claim_purposes'] ?? {}) as Record<string, Record<string, string | undefined> | undefined>;
    return {
      clientName: serviceName(meta, locale, client?.clientName ?? String(details.params.client_id)),
      policyUri: typeof meta['policy_uri'] === 'string' ? meta['policy_uri'] : undefined,
      offline: scopes.includes('offline_access'),
      offlineAllowed: grantedScopes.has('offline_access') && !missingScopes.has('offline_access'),
      scopes,
      claims: claims.map((claim) => {
        const required = claim === 'sub' || (essential.has(claim) && claim !== NATIONAL_ID_CLAIM);
        const allowed = !refused.has(claim) && (claim === 'sub' ? grantedScopes.has('openid') : grantedClaims.has(claim) && !(d.missingOIDCClaims ?? []).includes(claim));
        // What was allowed before stays ticked, the national identifier included.
        const checked = required || allowed || (claim !== NATIONAL_ID_CLAIM && !refused.has(claim));
        return { claim, required, checked, allowed, purpose: purposes[claim]?.[locale] ?? purposes[claim]?.en };
      }),
      withheld,
    };
  };

  /**
   * Records the citizen's answer (`ticked`: the claims the form sent) in a grant and in the
   * refusals; returns the grant id for the interaction result and the ledger's consent entry.
   */
  const confirm = async (ctx: Context, details: Details, ticked: ReadonlySet<string>): Promise<{ grantId: string; given: KapijaEvents['consent.given'] }> => {
    const { prompt, params, session } = details;
    assertThat(session?.accountId, 'interaction.invalid_step');
    const accountId = session.accountId;
    const clientId = String(params.client_id);
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId });
    assertThat(grant, 'interaction.expired');
    const d = prompt.details as Missing;
    const o = await offer(ctx, details);
    const refused = o.claims.filter((c) => !c.required && !ticked.has(c.claim)).map((c) => c.claim);
    const allowed = o.claims.filter((c) => !refused.includes(c.claim)).map((c) => c.claim);
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims.filter((c) => allowed.includes(c)));
    // Neither refused nor withheld claims are released, and the engine does not ask for them again.
    if (refused.length || o.withheld.length) grant.rejectOIDCClaims([...refused, ...o.withheld]);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const owner = await subjectOf(details, accountId, clientId);
    await refusals.refuse(owner, clientId, refused);
    await refusals.allow(owner, clientId, allowed.filter((c) => c !== 'sub'));
    const grantId = await grant.save();
    return { grantId, given: { accountId: owner, clientId, scopes: o.scopes, claims: allowed, refused } };
  };

  return { offer, confirm };
}

/** The consent step's page (`GET /:uid` when the engine asks for consent) and its answer (`POST /:uid/confirm`). */
export function consentRoutes(router: Router, kit: InteractionKit): (ctx: Context, details: Details) => Promise<void> {
  const mandates = kit.deps.mandates;
  const consent = createConsent({
    provider: kit.deps.provider,
    refusals: kit.deps.refusals,
    ...(mandates
      ? {
          dataSubject: async (grantId: string | undefined, accountId: string, clientId: string) => {
            const r = grantId ? await mandates.representationOf(grantId, clientId) : undefined;
            return r && 'mandate' in r && r.mandate.representativeId === accountId ? r.mandate.principalId : accountId;
          },
        }
      : {}),
  });

  router.post('/:uid/confirm', async (ctx) => {
    const details = await kit.enter(ctx, 'consent');
    const raw = kit.body(ctx) as { claims?: unknown } | undefined;
    const ticked = new Set((Array.isArray(raw?.claims) ? raw.claims : [raw?.claims]).filter((x): x is string => typeof x === 'string'));
    const { grantId, given } = await consent.confirm(ctx, details, ticked);
    await kit.finishWith(ctx, details, { consent: { grantId } });
    // Never an empty entry in the ledger (the offer lists what the service receives).
    if (given.scopes.length || given.claims.length) await kit.deps.events.emit('consent.given', given);
  });

  /**
   * The mandate this consent is given under, and the principal's name, when the signed-in citizen
   * acts for someone: the page then names the principal and lists the principal's data.
   */
  const actingFor = async (ctx: Context, details: Details) => {
    const accountId = details.session?.accountId;
    if (!mandates || !details.grantId || !accountId) return undefined;
    const r = await mandates.representationOf(details.grantId, String(details.params.client_id));
    if (!r || !('mandate' in r) || r.mandate.representativeId !== accountId) return undefined;
    const m = r.mandate;
    const principal = await kit.deps.accounts.findById(m.principalId);
    const tr = kit.t(ctx);
    const locale = ctx.state.locale as Locale;
    return {
      name: (principal && ([principal.givenName, principal.familyName].filter(Boolean).join(' ') || principal.username)) || m.principalId,
      basis: tr(`account.mandates.basis.${m.basis}` as MessageKey),
      purposes: m.purposes.map((p) => tr(`account.mandates.purpose.${p}` as MessageKey)).join(', '),
      until: m.validUntil ? formatDateTime(m.validUntil, locale) : '—',
    };
  };

  return async (ctx, details) => {
    const tr = kit.t(ctx);
    const offer = await consent.offer(ctx, details);
    // A wallet asking for Kapija's PID (wallet/issuer/): what the credential holds, to put in that wallet.
    const resourceScopes = (details.prompt.details as Missing).missingResourceScopes?.[kit.deps.provider.issuer] ?? [];
    if (resourceScopes.includes(PID_SCOPE)) {
      kit.deps.render(ctx, 'wallet/issue-consent', {
        title: tr('wallet.issue.consent.title'),
        uid: details.uid,
        clientName: offer.clientName,
        attributes: PID_ATTRIBUTES.map((a) => tr(`wallet.issue.attr.${a}` as MessageKey)),
      });
      return;
    }
    const principal = await actingFor(ctx, details);
    // Acting for someone, the data is the principal's: labels that do not say "your".
    const prefix = principal ? 'consent.mandate.claim' : 'consent.claim';
    const label = (claim: string) => {
      const key = `${prefix}.${claim}` as MessageKey;
      const text = tr(key, { principal: principal?.name ?? '' });
      return text === key ? tr(`${prefix}.other` as MessageKey, { claim }) : text;
    };
    kit.deps.render(ctx, 'interaction/consent', {
      title: tr('consent.title'),
      uid: details.uid,
      principal,
      clientName: offer.clientName,
      policyUri: offer.policyUri,
      items: offer.claims.map((c) => ({ ...c, label: label(c.claim) })),
      offline: offer.offline ? tr('consent.scope.offline_access') : undefined,
      offlineAllowed: offer.offlineAllowed,
    });
  };
}
