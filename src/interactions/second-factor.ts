/**
 * The second-factor step, generic over the registry: the page offers the factors the account has
 * that can still reach the level the service needs (one section per factor, from its `form`), and
 * each registered second factor answers at `POST /:uid/<id>` (its ceremony's options at
 * `/:uid/<id>/options`). A recovery code is accepted only beside a factor that stands alone
 * (registry.assertUsable).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { KapijaError } from '../errors.js';
import type { MessageKey } from '../i18n/index.js';
import type { Factor, FactorProof } from '../factors/registry.js';
import { getFlow, saveFlow, type Details, type Flow } from './flow.js';
import type { InteractionKit } from './kit.js';

/** What a success changes in the flow besides the methods proven. */
type Outcome = FactorProof & Partial<Pick<Flow, 'codes'>>;

/**
 * One attempt at a factor in the second-factor or enrolment step: throttled per account and
 * address; a failure (401) is recorded, counted and shown on the step's page (JSON callers get the
 * error); a success adds the factor's methods and moves the flow on.
 */
export async function factorAttempt(
  ctx: Context,
  kit: InteractionKit,
  details: Details,
  factor: Factor,
  attempt: (flow: Flow, challenge: string | undefined) => Promise<Outcome>,
): Promise<void> {
  const { throttles, events, accounts } = kit.deps;
  const step = kit.flowOf(details).step;
  let flow = kit.flowOf(details);
  const keys = { account: flow.accountId, ip: ctx.ip };
  const wait = await throttles.secondFactor.retryAfter(keys);
  if (wait > 0) throw kit.throttled(wait);
  // A ceremony's challenge is used once, whatever the outcome.
  const challenge = flow.challenges?.[factor.id];
  if (challenge !== undefined) {
    const { [factor.id]: _used, ...others } = flow.challenges ?? {};
    flow = { ...flow, challenges: others };
    await saveFlow(details, flow);
  }
  let outcome;
  try {
    outcome = await attempt(flow, challenge);
  } catch (err) {
    if (!(err instanceof KapijaError) || err.status !== 401) throw err;
    await events.emit('signin.failure', { accountId: flow.accountId, clientId: kit.clientIdOf(details), factor: factor.id, reason: err.code, ip: ctx.ip });
    const after = await throttles.secondFactor.fail(keys);
    if (after > 0) throw kit.throttled(after);
    if (kit.wantsJson(ctx)) throw err;
    ctx.status = 401;
    return kit.renderStep(ctx, details, getFlow(details) ?? flow, kit.t(ctx)(`error.${err.code}` as MessageKey));
  }
  await throttles.secondFactor.succeed(keys);
  if (step === 'enrol') {
    await accounts.setFactorsReset(flow.accountId, false);
    await events.emit('factor.enrolled', { accountId: flow.accountId, type: factor.id, ip: ctx.ip });
  }
  if (outcome.remaining !== undefined) {
    await events.emit('factor.recovery_used', { accountId: flow.accountId, remaining: outcome.remaining, ip: ctx.ip });
  }
  // "Remember this browser" is offered on the second-factor page only (not on step-up).
  const remember = step === 'second-factor' && !flow.stepUp && (kit.body(ctx) as { remember?: unknown } | undefined)?.remember === 'yes';
  await kit.advance(ctx, details, {
    ...flow,
    amr: [...flow.amr, ...outcome.amr],
    ...(remember ? { rememberBrowser: true } : {}),
    ...(outcome.remaining !== undefined ? { recoveryRemaining: outcome.remaining } : {}),
    ...(outcome.codes ? { codes: outcome.codes } : {}),
    challenges: undefined,
    ...(step === 'enrol' ? { pending: undefined } : {}),
  });
}

/** One entry of the second-factor page: what the view needs to offer a factor. */
interface Offer {
  id: string;
  heading: string;
  form: NonNullable<Factor['second']>['form'];
  /** The id of its code input (the first one is `code`, as the page's autofocus and tests expect). */
  inputId: string;
}

export function secondFactorRoutes(router: Router, kit: InteractionKit): void {
  const { factors } = kit.deps;

  kit.stepPage('second-factor', async (ctx, details, flow, error) => {
    const offered = await factors.offered(flow.accountId, flow.amr, await kit.required(details));
    if (offered.length === 0) {
      // Nothing enrolled can reach the level this service requires.
      await kit.finishWith(ctx, details, {
        error: 'unmet_authentication_requirements',
        error_description: 'the account has no factor that reaches the requested level of assurance',
      });
      return;
    }
    const chosen = typeof ctx.query.method === 'string' ? offered.find((f) => f.id === ctx.query.method) : undefined;
    if (chosen?.second?.form.kind === 'page') {
      return kit.deps.render(ctx, chosen.second.form.view, { title: kit.t(ctx)('mfa.title'), uid: details.uid, error });
    }
    let codes = 0;
    const methods: Offer[] = offered.map((f) => ({
      id: f.id,
      heading: f.labels.heading,
      form: f.second!.form,
      inputId: f.second!.form.kind === 'code' ? (codes++ === 0 ? 'code' : `code-${f.id}`) : '',
    }));
    kit.deps.render(ctx, 'interaction/second-factor', {
      title: kit.t(ctx)('mfa.title'),
      uid: details.uid,
      methods,
      stepUp: flow.stepUp ? await kit.clientName(ctx, details) : undefined,
      remember: !flow.stepUp && kit.deps.trustedBrowsers !== undefined,
      error,
    });
  });

  for (const factor of factors.all()) {
    const second = factor.second;
    if (!second || factor.step === 'first') continue;
    router.post(`/:uid/${factor.id}`, async (ctx) => {
      const details = await kit.enter(ctx, 'second-factor');
      await factorAttempt(ctx, kit, details, factor, async (flow, challenge) => {
        await factors.assertUsable(factor, flow.accountId);
        return second.verify({ accountId: flow.accountId, body: kit.body(ctx), challenge });
      });
    });
  }
}

/** Starts a second factor's ceremony for the account being signed in (WebAuthn options). */
export async function secondFactorChallenge(ctx: Context, kit: InteractionKit, factor: Factor): Promise<void> {
  const details = await kit.enter(ctx, 'second-factor');
  if (!factor.second?.challenge) throw new KapijaError('request.not_found', 404);
  const flow = kit.flowOf(details);
  const { options, state } = await factor.second.challenge(flow.accountId);
  await saveFlow(details, { ...flow, challenges: { ...flow.challenges, [factor.id]: state } });
  ctx.body = options;
}
