/**
 * The `represent` step: a citizen who holds mandates covering a service that accepts
 * representation (client metadata `kapija_accepts_representation`) chooses, after their own
 * two-factor sign-in, whether they act for themselves or for a principal.
 *
 * The choice is made on the server's list: a mandate id the form sends that is not among the
 * mandates in force for this representative and this service is refused. Acting for a principal
 * gives the sign-in a grant of its own (the representative's, bound to the mandate in
 * mandate_grants), so its tokens answer for the principal (mandates/represented-account.ts) and a
 * later "for myself" never reuses it. Each use is in both ledgers. Services that did not opt in
 * never reach this step.
 */
import type { Context } from 'koa';
import { KapijaError } from '../errors.js';
import type { Mandate, MandateService } from '../mandates/service.js';
import { representable } from '../mandates/represented-account.js';
import type { MessageKey } from '../i18n/index.js';
import type { Details, Flow } from './flow.js';
import type { InteractionKit, InteractionRoutes } from './kit.js';

/** What advance() does once the factors are complete: nothing more, ask, or finish with this grant. */
export type Representation = undefined | 'ask' | { grantId: string };

const SELF = 'self';

const acceptsRepresentation = async (kit: Pick<InteractionKit, 'deps' | 'clientIdOf'>, details: Details) =>
  representable(await kit.deps.provider.Client.find(kit.clientIdOf(details)));

/**
 * Decides, when the factors are complete, whether the representation page comes first and which
 * grant the login carries. Called by advance() only when mandates are configured.
 */
export async function representation(kit: Pick<InteractionKit, 'deps' | 'clientIdOf'>, mandates: MandateService, details: Details, flow: Flow): Promise<Representation> {
  if (!(await acceptsRepresentation(kit, details))) return undefined;
  const clientId = kit.clientIdOf(details);
  const { Grant } = kit.deps.provider;
  if (flow.represent === undefined) {
    const usable = await mandates.usableFor(flow.accountId, clientId);
    if (usable.length) return 'ask';
  }
  if (flow.represent && flow.represent !== SELF) {
    const m = (await mandates.usableFor(flow.accountId, clientId)).find((x) => x.id === flow.represent);
    if (!m) throw new KapijaError('mandate.not_found', 404);
    const grant = new Grant({ accountId: flow.accountId, clientId });
    const grantId = await grant.save();
    // One grant per sign-in: the same form submitted again (replayed, or twice at once) binds nothing more.
    if (!(await mandates.bindGrant(grantId, m, details.uid))) {
      await grant.destroy();
      throw new KapijaError('interaction.invalid_step', 400);
    }
    await mandates.recordUse(m, clientId, 'signin');
    return { grantId };
  }
  // For themselves: a grant this browser session used while acting for someone is not theirs to continue with.
  const current = details.grantId;
  if (current && (await mandates.representationOf(current, clientId))) {
    const grant = new Grant({ accountId: flow.accountId, clientId });
    return { grantId: await grant.save() };
  }
  return undefined;
}

export const representRoutes = (mandates: MandateService | undefined): InteractionRoutes => (router, kit) => {
  if (!mandates) return;
  const usable = (details: Details, flow: Flow) => mandates.usableFor(flow.accountId, kit.clientIdOf(details));

  const describe = async (ctx: Context, m: Mandate) => {
    const principal = await kit.deps.accounts.findById(m.principalId);
    const name = principal ? [principal.givenName, principal.familyName].filter(Boolean).join(' ') || principal.username : m.principalId;
    const tr = kit.t(ctx);
    return { id: m.id, name, purposes: m.purposes.map((p) => tr(`account.mandates.purpose.${p}` as MessageKey)).join(', ') };
  };

  kit.stepPage('represent', async (ctx, details, flow, error) => {
    const tr = kit.t(ctx);
    const choices = await Promise.all((await usable(details, flow)).map((m) => describe(ctx, m)));
    kit.deps.render(ctx, 'interaction/represent', { title: tr('represent.title'), uid: details.uid, service: await kit.clientName(ctx, details), choices, error });
  });

  router.post('/:uid/represent', async (ctx) => {
    const details = await kit.enter(ctx, 'represent');
    const flow = kit.flowOf(details);
    const choice = (kit.body(ctx) as { choice?: unknown } | undefined)?.choice;
    if (typeof choice !== 'string' || (choice !== SELF && !(await usable(details, flow)).some((m) => m.id === choice))) {
      // Not one of the choices offered (a form edited, a mandate withdrawn meanwhile): nothing is chosen.
      throw new KapijaError('mandate.not_found', 400);
    }
    await kit.advance(ctx, details, { ...flow, represent: choice });
  });
};
