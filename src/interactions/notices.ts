/**
 * The notice step: once the factors are complete, a notice is read before the sign-in finishes:
 * the recovery codes issued with a first enrolment (shown once), or how many are left after one was
 * used (with the offer to replace them). "Continue" finishes the sign-in.
 */
import type Router from '@koa/router';
import { KapijaError } from '../errors.js';
import { saveFlow } from './flow.js';
import type { InteractionKit } from './kit.js';

export function noticeRoutes(router: Router, kit: InteractionKit): void {
  const { box, render, factors } = kit.deps;

  kit.stepPage('notice', async (ctx, details, flow) => {
    const t = kit.t(ctx);
    if (flow.codes) {
      const codes = JSON.parse(box.openString(flow.codes, `codes:${details.uid}`)) as string[];
      return render(ctx, 'interaction/recovery-codes', { title: t('codes.title'), uid: details.uid, codes });
    }
    render(ctx, 'interaction/recovery-used', { title: t('mfa.recovery.used.heading'), uid: details.uid, remaining: flow.recoveryRemaining ?? 0 });
  });

  router.post('/:uid/continue', async (ctx) => {
    const details = await kit.enter(ctx, 'notice');
    const flow = kit.flowOf(details);
    await kit.advance(ctx, details, { ...flow, codes: undefined, recoveryRemaining: undefined });
  });

  /** After a recovery code was used (and only then), the citizen may replace the remaining codes. */
  router.post('/:uid/recovery/new', async (ctx) => {
    const details = await kit.enter(ctx, 'notice');
    const flow = kit.flowOf(details);
    if (flow.recoveryRemaining === undefined || flow.codes || !factors.backup) throw new KapijaError('interaction.invalid_step', 400);
    const codes = await factors.backup.issue(flow.accountId);
    await saveFlow(details, { ...flow, recoveryRemaining: undefined, codes: box.seal(JSON.stringify(codes), `codes:${details.uid}`) });
    kit.redirect(ctx, kit.self(ctx, details));
  });
}
