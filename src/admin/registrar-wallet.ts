/**
 * Kapija's PID at the registration desk (/admin/desk/pid/:id): after checking the citizen in person,
 * a registrar makes a credential offer with a pre-authorized code for the citizen's wallet (one of
 * the registered wallets), shown as a QR code, and tells the citizen the transaction code, which the
 * wallet asks for. The code is single-use and lives ten minutes (wallet/issuer/offers.ts).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { KapijaError } from '../errors.js';
import type { MessageKey, Translate } from '../i18n/index.js';
import type { AccountRepository } from '../store/accounts.js';

type Form = Record<string, string | string[] | undefined>;

export interface DeskPidOffers {
  /** The registered wallets an offer can be made for, by name. */
  wallets(ctx: Context): Promise<{ clientId: string; name: string }[]>;
  create(input: { accountId: string; clientId: string; registrar: string; ip: string | null }): Promise<{ uri: string; qrDataUri: string; txCode: string; expiresAt: Date }>;
}

export interface DeskPidDeps {
  offers: DeskPidOffers;
  accounts: AccountRepository;
  render(ctx: Context, view: string, data: Record<string, unknown>): void;
  me(ctx: Context): { accountId: string; username: string };
}

export function deskPidRoutes(router: Router, d: DeskPidDeps): void {
  const t = (ctx: Context) => ctx.state.t as Translate;
  const show = async (ctx: Context, id: string, extra: Record<string, unknown> = {}) => {
    const account = await d.accounts.findById(id);
    if (!account) throw new KapijaError('identity.not_found', 404);
    d.render(ctx, 'wallet/issue-desk', { title: t(ctx)('wallet.issue.desk.heading', { user: account.username }), wide: true, actorName: d.me(ctx).username, account, wallets: await d.offers.wallets(ctx), ...extra });
  };
  router.get('/pid/:id', async (ctx) => show(ctx, ctx.params.id!));
  router.post('/pid/:id', async (ctx) => {
    const id = ctx.params.id!;
    const wallet = ((ctx.request.body ?? {}) as Form).wallet;
    if (id === d.me(ctx).accountId) throw new KapijaError('identity.own_account', 403);
    try {
      const made = await d.offers.create({ accountId: id, clientId: typeof wallet === 'string' ? wallet : '', registrar: d.me(ctx).accountId, ip: ctx.ip || null });
      await show(ctx, id, { made: { ...made, expires: new Intl.DateTimeFormat(String(ctx.state.locale), { timeStyle: 'short' }).format(made.expiresAt) } });
    } catch (err) {
      if (!(err instanceof KapijaError) || err.status >= 500 || err.status === 404) throw err;
      ctx.status = err.status;
      await show(ctx, id, { error: t(ctx)(`error.${err.code}` as MessageKey) });
    }
  });
}
