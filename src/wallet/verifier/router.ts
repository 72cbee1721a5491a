/**
 * The verifier's HTTP side of wallet sign-in:
 *
 * - `GET /wallet/request/:id` — the signed request object a wallet fetches by reference (once);
 * - `POST /wallet/response/:id` — the wallet's encrypted answer (direct_post.jwt); a same-device
 *   answer is told where to send the browser (the redirect with the one-time response code);
 * - `GET /interaction/:uid/wallet` — this sign-in's wallet page: the link for a wallet on this
 *   device, the QR code for one on another, and "continue" once the other device has answered;
 * - `GET /interaction/:uid/wallet/status?request=…` — what the page polls (static/wallet.js).
 *
 * The two wallet endpoints answer JSON (OpenID4VP's error response on failure) and take no cookie;
 * the pages are entered only by the browser holding the sign-in's interaction cookie. Redeeming the
 * answer is the identify step's (`/interaction/:uid/wallet/identify`, factor.ts).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import QRCode from 'qrcode';
import { KapijaError } from '../../errors.js';
import type { Renderer } from '../../http/render.js';
import type { Translate } from '../../i18n/index.js';
import type { Throttle } from '../../security/rate-limit.js';
import { REQUEST_ID_PATTERN, UnreadableResponse, type WalletVerifier } from './service.js';

export interface WalletRouterDeps {
  verifier: WalletVerifier;
  render: Renderer;
  /** The uid of the interaction this browser holds (its cookie); throws when there is none. */
  interactionOf(ctx: Context): Promise<string>;
  /** Counts answers Kapija could not read or that belong to no live request, per client address. */
  throttle: Throttle;
}

const walletError = (ctx: Context, status: number, error: string, description: string) => {
  ctx.status = status;
  ctx.set('cache-control', 'no-store');
  ctx.body = { error, error_description: description };
};

export function createWalletRouter(deps: WalletRouterDeps): Router {
  const { verifier } = deps;
  const router = new Router();

  /** The interaction in the path, if it is the one this browser holds. */
  const enter = async (ctx: Context): Promise<string> => {
    const uid = await deps.interactionOf(ctx);
    if (uid !== ctx.params.uid) throw new KapijaError('interaction.expired', 400);
    ctx.set('cache-control', 'no-store');
    return uid;
  };

  router.get('/wallet/request/:id', async (ctx) => {
    const id = ctx.params.id ?? '';
    const jar = REQUEST_ID_PATTERN.test(id) ? await verifier.requestObject(id) : undefined;
    if (!jar) return walletError(ctx, 404, 'invalid_request_uri', 'no pending request at this address: it was fetched already or has expired');
    ctx.set('cache-control', 'no-store');
    ctx.type = 'application/oauth-authz-req+jwt';
    ctx.body = jar;
  });

  router.post('/wallet/response/:id', async (ctx) => {
    const id = ctx.params.id ?? '';
    if (!REQUEST_ID_PATTERN.test(id)) return walletError(ctx, 404, 'invalid_request', 'no request awaits an answer here');
    const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
    const wait = await deps.throttle.retryAfter({ ip: ctx.ip });
    if (wait > 0) {
      ctx.set('retry-after', String(wait));
      return walletError(ctx, 429, 'temporarily_unavailable', `too many unreadable answers from this address: try again in ${wait} seconds`);
    }
    try {
      const { redirectUri } = await verifier.answer(id, body.response);
      ctx.set('cache-control', 'no-store');
      ctx.body = redirectUri ? { redirect_uri: redirectUri } : {};
    } catch (err) {
      if (!(err instanceof UnreadableResponse)) throw err;
      await deps.throttle.fail({ ip: ctx.ip });
      walletError(ctx, err.status, 'invalid_request', err.message);
    }
  });

  router.get('/interaction/:uid/wallet', async (ctx) => {
    const uid = await enter(ctx);
    const t = ctx.state.t as Translate;
    const { sameDevice, crossDevice, crossId } = await verifier.begin(uid);
    const qrDataUri = await QRCode.toDataURL(crossDevice, { errorCorrectionLevel: 'M', margin: 2, width: 240 });
    deps.render(ctx, 'wallet/present-page', {
      title: t('wallet.title'),
      uid,
      sameDevice,
      qrDataUri,
      statusUrl: `/interaction/${uid}/wallet/status?request=${crossId}`,
      continueUrl: `/interaction/${uid}/wallet/identify?request=${crossId}&lang=${String(ctx.state.locale)}`,
    });
  });

  router.get('/interaction/:uid/wallet/status', async (ctx) => {
    const uid = await enter(ctx);
    const id = typeof ctx.query.request === 'string' && REQUEST_ID_PATTERN.test(ctx.query.request) ? ctx.query.request : undefined;
    if (!id) throw new KapijaError('request.invalid', 400);
    ctx.body = { status: await verifier.crossDeviceReady(uid, id) };
  });

  return router;
}
