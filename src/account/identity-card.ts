/**
 * "Link your ID card" on the portal: a citizen whose account has no verified identity at high proves
 * both factors again (requireRecentAuth), then the card on the certificate host; the outcome comes
 * back bound to this account (factors/certificate/link.ts) and proofs the identity at high. A card
 * refused (revoked, expired, …) is explained in the citizen's language with a way back.
 */
import type Router from '@koa/router';
import { KapijaError } from '../errors.js';
import type { PortalKit } from './kit.js';

export function identityCardRoutes(router: Router, p: PortalKit): void {
  const { d, t, citizen, requireCitizen, requireRecentAuth, page } = p;
  const link = d.cardLink;
  if (!link) return;

  router.post('/identity/card', requireCitizen, requireRecentAuth('/account'), async (ctx) => {
    const to = await link.start(citizen(ctx).account.id);
    ctx.set('cache-control', 'no-store');
    ctx.status = 303;
    ctx.redirect(to);
  });

  router.get('/identity/card', requireCitizen, async (ctx) => {
    const token = typeof ctx.query.return === 'string' ? ctx.query.return : '';
    const result = await link.finish(citizen(ctx).account.id, token, ctx.ip);
    if (result.linked) {
      ctx.status = 303;
      ctx.redirect('/account');
      return;
    }
    const tr = t(ctx) as unknown as (key: string) => string;
    const message = tr(`certificate.refused.${result.reason}`);
    if (message === `certificate.refused.${result.reason}`) throw new KapijaError('certificate.refused', 403);
    page(ctx, 'account/card-refused', 'certificate.refused.title', { message });
    ctx.status = 403;
  });
}
