/**
 * The enrolment step: an account without any second factor (outside step-up, and after an
 * administrator's reset only through the mailed link) enrols its first one during the sign-in. The
 * page has a part per registered factor that can be enrolled; each answers at
 * `POST /:uid/<id>/<enrolment.path>`. Recovery codes are issued with a first enrolment when the
 * account has none.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { KapijaError, assertThat } from '../errors.js';
import type { Factor } from '../factors/registry.js';
import { saveFlow, type Details, type Flow } from './flow.js';
import type { InteractionKit } from './kit.js';
import { factorAttempt } from './second-factor.js';

/**
 * Loads an interaction in the enrolment step whose account still has no second factor (another tab
 * may have enrolled one since the password step decided on enrolment).
 */
export async function enterEnrolment(ctx: Context, kit: InteractionKit): Promise<Details> {
  const details = await kit.enter(ctx, 'enrol');
  const flow = kit.flowOf(details);
  if ((await kit.deps.factors.hasSecondFactor(flow.accountId)) || (await kit.resetPending(flow))) throw new KapijaError('interaction.invalid_step', 400);
  return details;
}

const accountOf = async (kit: InteractionKit, flow: Flow) => {
  const account = await kit.deps.accounts.findById(flow.accountId);
  assertThat(account, 'interaction.expired');
  return account;
};

/** Starts an enrolment ceremony (`purpose: register` of the options route). */
export async function enrolmentChallenge(ctx: Context, kit: InteractionKit, factor: Factor): Promise<void> {
  const details = await enterEnrolment(ctx, kit);
  if (!factor.enrolment?.challenge) throw new KapijaError('request.not_found', 404);
  const flow = kit.flowOf(details);
  const { options, state } = await factor.enrolment.challenge(await accountOf(kit, flow));
  await saveFlow(details, { ...flow, challenges: { ...flow.challenges, [factor.id]: state } });
  ctx.body = options;
}

export function enrolmentRoutes(router: Router, kit: InteractionKit): void {
  const { factors, box } = kit.deps;

  /**
   * Recovery codes for a first enrolment, only when the account has none: a sign-in never replaces
   * codes the citizen already holds.
   */
  const firstCodes = async (details: Details, accountId: string): Promise<Pick<Flow, 'codes'>> => {
    const backup = factors.backup;
    if (!backup || (await backup.remaining(accountId)) > 0) return {};
    const codes = await backup.issue(accountId);
    return { codes: box.seal(JSON.stringify(codes), `codes:${details.uid}`) };
  };

  /** No second factor yet: enrol one now, then continue to the service. */
  kit.stepPage('enrol', async (ctx, details, flow, error) => {
    if (await factors.hasSecondFactor(flow.accountId)) {
      // Enrolled meanwhile (another tab): prove that factor instead.
      const proving: Flow = { ...flow, step: 'second-factor', pending: undefined, challenges: undefined };
      await saveFlow(details, proving);
      return kit.renderStep(ctx, details, proving);
    }
    const account = await accountOf(kit, flow);
    const parts: Array<{ id: string; partial: string; view: Record<string, unknown> }> = [];
    const pending = { ...flow.pending };
    for (const factor of factors.enrollable()) {
      const enrolment = factor.enrolment!;
      if (!enrolment.partial) continue;
      const begun = enrolment.begin ? await enrolment.begin(account, flow.pending?.[factor.id]) : undefined;
      if (begun) pending[factor.id] = begun.state;
      parts.push({ id: factor.id, partial: enrolment.partial, view: begun?.view ?? {} });
    }
    if (parts.some((p) => flow.pending?.[p.id] !== pending[p.id])) await saveFlow(details, { ...flow, pending });
    kit.deps.render(ctx, 'interaction/enrol', { title: kit.t(ctx)('enrol.title'), uid: details.uid, parts, error });
  });

  for (const factor of factors.enrollable()) {
    const enrolment = factor.enrolment!;
    router.post(`/:uid/${factor.id}/${enrolment.path}`, async (ctx) => {
      const details = await enterEnrolment(ctx, kit);
      await factorAttempt(ctx, kit, details, factor, async (flow, challenge) => {
        const proof = await enrolment.finish({ accountId: flow.accountId, body: kit.body(ctx), challenge, pending: flow.pending?.[factor.id] });
        return { ...proof, ...(await firstCodes(details, flow.accountId)) };
      });
    });
  }
}
