/**
 * The wallet page: "add Kapija's PID to your wallet" (the portal's credential offer as a QR code
 * and a link), the credentials issued to the citizen's wallets, and their revocation. Revoking
 * needs both factors proven recently; a credential of another citizen is not found.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { MessageKey } from '../i18n/index.js';
import type { PortalKit } from './kit.js';

const ID = /^[0-9a-f-]{36}$/;

export function walletRoutes(router: Router, p: PortalKit): void {
  const { d, t, body, fmt, citizen, requireCitizen, requireRecentAuth, page, localName } = p;
  const wallet = d.wallet;
  if (!wallet) return;

  const show = async (ctx: Context) => {
    const me = citizen(ctx);
    const tr = t(ctx);
    const [eligibility, issued] = await Promise.all([wallet.eligibility(me.account.id), wallet.list(me.account.id)]);
    const now = Date.now();
    const credentials = await Promise.all(
      issued.map(async (c) => ({
        id: c.id,
        wallet: await localName(ctx, c.clientId),
        issued: fmt(ctx, c.issuedAt),
        expires: fmt(ctx, c.expiresAt),
        level: tr(`identity.level.${c.level}` as MessageKey),
        channel: tr(`wallet.issue.channel.${c.channel}` as MessageKey),
        state: c.revokedAt ? tr('wallet.issue.state.revoked', { when: fmt(ctx, c.revokedAt) }) : c.expiresAt.getTime() <= now ? tr('wallet.issue.state.expired') : tr('wallet.issue.state.valid'),
        revocable: !c.revokedAt && c.expiresAt.getTime() > now,
      })),
    );
    page(ctx, 'wallet/issue-account', 'wallet.issue.title', {
      eligible: eligibility.ok,
      reason: eligibility.ok ? undefined : tr(`wallet.issue.ineligible.${eligibility.reason}` as MessageKey),
      offer: eligibility.ok ? await wallet.offer() : undefined,
      credentials,
      done: ctx.query.done,
    });
  };

  router.get('/wallet', requireCitizen, async (ctx) => show(ctx));

  router.post('/wallet/revoke', requireCitizen, requireRecentAuth('/account/wallet'), async (ctx) => {
    const id = body(ctx).credential_id;
    await wallet.revokeOwn(citizen(ctx).account.id, typeof id === 'string' && ID.test(id) ? id : '');
    ctx.status = 303;
    ctx.redirect('/account/wallet?done=revoked');
  });
}
