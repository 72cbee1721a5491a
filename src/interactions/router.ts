/**
 * The sign-in pages behind oidc-provider's interactions (`/interaction/:uid/*`). Like
 * node-oidc-provider's `example/routes/koa.js`, the GET switches on the prompt; each POST first
 * calls `enter(ctx, ...steps)`, which refuses (400 interaction.invalid_step, nothing changed) unless
 * the interaction is in one of the steps the route belongs to, then records progress in the
 * interaction (flow.ts), the next step coming from nextStep() in kit.ts advance(). The login is
 * handed to the engine only when the factors reach the level the service needs.
 *
 * The routes live with their step: identify.ts (password, first factors such as passkeys),
 * second-factor.ts (generic over the factor registry), enrolment.ts, notices.ts, identity.ts (the
 * verified identity falls short of the service's level) and consent.ts.
 */
import Router from '@koa/router';
import { KapijaError } from '../errors.js';
import type { Amr } from '../assurance/levels.js';
import { consentRoutes } from './consent.js';
import { enrolmentChallenge, enrolmentRoutes } from './enrolment.js';
import { getFlow, isStepUp, saveFlow } from './flow.js';
import { firstFactorChallenge, identifyRoutes, renderLoginPage } from './identify.js';
import { createInteractionKit, type InteractionDeps } from './kit.js';
import { identityRoutes } from './identity.js';
import { noticeRoutes } from './notices.js';
import { representRoutes } from './represent.js';
import { secondFactorChallenge, secondFactorRoutes } from './second-factor.js';

export { DEVICE_COOKIE, DEVICE_COOKIE_DAYS, type InteractionDeps } from './kit.js';

export function createInteractionRouter(deps: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction' });
  const kit = createInteractionKit(deps);

  router.get('/:uid', async (ctx) => {
    const details = await kit.load(ctx);
    switch (details.prompt.name) {
      case 'login': {
        let flow = getFlow(details);
        if (!flow && isStepUp(details)) {
          // Step-up proves a factor the account has; it never enrols one.
          flow = { step: 'second-factor', accountId: details.session!.accountId, amr: (details.session!.amr ?? ['pwd']) as Amr[], stepUp: true };
          await saveFlow(details, flow);
        }
        if (!flow) {
          const hint = details.params.login_hint;
          return renderLoginPage(kit, ctx, details, { username: typeof hint === 'string' ? hint.slice(0, 64) : undefined });
        }
        return kit.renderStep(ctx, details, flow);
      }
      case 'consent':
        return consentPage(ctx, details);
      default:
        throw new KapijaError('interaction.invalid_step', 400);
    }
  });

  // A ceremony's options (JSON, from static/webauthn.js): for a first factor on the sign-in page
  // (`purpose: passkey`), for enrolment (`register`), else for the second-factor step.
  for (const factor of deps.factors.all()) {
    if (!factor.first?.challenge && !factor.second?.challenge && !factor.enrolment?.challenge) continue;
    router.post(`/:uid/${factor.id}/options`, async (ctx) => {
      const purpose = (kit.body(ctx) as { purpose?: unknown } | undefined)?.purpose;
      if (purpose === 'passkey') return firstFactorChallenge(ctx, kit, factor);
      if (purpose === 'register') return enrolmentChallenge(ctx, kit, factor);
      return secondFactorChallenge(ctx, kit, factor);
    });
  }

  identifyRoutes(router, kit);
  noticeRoutes(router, kit);
  enrolmentRoutes(router, kit);
  secondFactorRoutes(router, kit);
  identityRoutes(router, kit);
  representRoutes(deps.mandates)(router, kit);
  const consentPage = consentRoutes(router, kit);
  kit.stepPage('reset-link', async (ctx, details) => deps.render(ctx, 'interaction/reset-link', { title: kit.t(ctx)('reset_link.title'), uid: details.uid }));

  router.post('/:uid/abort', async (ctx) => {
    const details = await kit.enter(ctx, 'identify', 'second-factor', 'enrol', 'reset-link', 'notice', 'identity', 'represent', 'consent');
    await kit.finishWith(ctx, details, { error: 'access_denied', error_description: 'End-User aborted interaction' });
  });

  return router;
}
