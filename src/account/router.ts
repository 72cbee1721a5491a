/**
 * The citizen's account portal at /account, itself signed in through Kapija: profile, active
 * sessions (sign out one or all), connected services (what each receives, refuse or allow a claim,
 * withdraw a consent), second factors (add, remove, new recovery codes — each change needs both
 * factors proven in the last few minutes), activity, data export and account deletion. One file per
 * page; every page but the sign-in callback runs behind `requireCitizen` (kit.ts), and every change
 * behind `requireRecentAuth`.
 */
import Router from '@koa/router';
import { activityRoutes } from './activity.js';
import { dataRoutes } from './data.js';
import { identityCardRoutes } from './identity-card.js';
import { mandatesRoutes } from './mandates.js';
import { allowFormActionTo } from '../http/headers.js';
import { createPortalKit, type AccountPortalDeps, type PortalPage } from './kit.js';
import { profileRoutes } from './profile.js';
import { requestsRoutes } from './requests.js';
import { securityRoutes } from './security.js';
import { servicesRoutes } from './services.js';
import { sessionsRoutes } from './sessions.js';
import { walletRoutes } from './wallet.js';

export type { AccountPortalDeps } from './kit.js';

const PAGES: readonly PortalPage[] = [profileRoutes, sessionsRoutes, servicesRoutes, securityRoutes, activityRoutes, dataRoutes, identityCardRoutes, mandatesRoutes, walletRoutes, requestsRoutes];

export function createAccountRouter(deps: AccountPortalDeps): Router {
  const router = new Router({ prefix: '/account' });
  const p = createPortalKit(deps);
  const { d, citizen, requireCitizen, page, fmt } = p;

  router.get('/callback', async (ctx) => {
    const to = await d.signIn.callback(ctx);
    ctx.status = 303;
    ctx.redirect(to);
  });

  router.get('/', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    const identity = await d.identity?.find(me.account.id);
    // The card can be linked while the identity is below high (the form's redirect goes to the certificate host).
    const cardLink = d.cardLink && (!identity || identity.level !== 'high');
    if (cardLink) allowFormActionTo(ctx, d.cardLink!.origin);
    page(ctx, 'account/overview', 'account.title', { account: me.account, since: fmt(ctx, me.account.createdAt), identity: identity && identity.level !== 'none' ? { ...identity, when: fmt(ctx, identity.verifiedAt) } : undefined, cardLink });
  });

  for (const add of PAGES) add(router, p);
  return router;
}
