/**
 * The `identity` step: the factors reach what the service needs but the citizen's verified identity
 * does not (identity/step.ts). The page explains how to verify it; "continue" checks again and
 * otherwise ends the interaction with unmet_authentication_requirements.
 */
import { completeAmr, levelFor } from '../assurance/levels.js';
import { identityOutcome, renderIdentityStep } from '../identity/step.js';
import type { InteractionRoutes } from './kit.js';

export const identityRoutes: InteractionRoutes = (router, kit) => {
  kit.stepPage('identity', async (ctx, details) => renderIdentityStep(ctx, kit.deps.render, { uid: details.uid, service: await kit.clientName(ctx, details) }));

  router.post('/:uid/identity', async (ctx) => {
    const details = await kit.enter(ctx, 'identity');
    const flow = kit.flowOf(details);
    const outcome = await identityOutcome(kit.deps.identity, flow.accountId, levelFor(completeAmr(flow.amr)), await kit.required(details));
    if (outcome.short) {
      await kit.finishWith(ctx, details, { error: 'unmet_authentication_requirements', error_description: 'the identity has not been verified at the requested level of assurance' });
      return;
    }
    await kit.advance(ctx, details, flow);
  });
};
