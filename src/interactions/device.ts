/**
 * The pages of the device authorization grant (RFC 8628) that the citizen sees in a browser: the
 * user code entry (`/device`), the confirmation that the device shows the same code, and the end.
 * oidc-provider runs the grant itself (its `features.deviceFlow`); between the confirmation and the
 * end the citizen goes through Kapija's normal sign-in interaction (both factors, consent).
 *
 * User codes are nine digits (provider.ts); guessing is held back by a per-address throttle on every
 * wrong entry (RFC 8628 §5.1), counted in the database so it holds across every instance.
 */
import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Locale, Translate } from '../i18n/index.js';
import { serviceName } from '../i18n/service-name.js';
import type { Renderer } from '../http/render.js';
import type { DevicePages } from '../oidc/provider.js';
import type { SecretBox } from '../security/crypto.js';
import { createThrottle, type ThrottleStorage, type Tier } from '../security/rate-limit.js';

/** Where the citizen enters the code (oidc-provider's `code_verification` route). */
export const DEVICE_PATH = '/device';

/**
 * Wrong user codes, per client address: a few tries, then growing waits. A citizen mistyping a
 * code now and then never meets them; a script trying codes meets an hour's lock within 30 tries.
 */
export const USER_CODE_TIERS: readonly Tier[] = [
  { by: ['ip'], points: 5, duration: 15 * 60, blockDuration: 60 },
  { by: ['ip'], points: 10, duration: 3600, blockDuration: 15 * 60 },
  { by: ['ip'], points: 30, duration: 24 * 3600, blockDuration: 3600 },
];

/** Which message an engine error on the device pages gets. */
function errorKey(err: unknown): string | undefined {
  if (!err) return undefined;
  switch ((err as { name?: string }).name) {
    case 'NoCodeError':
      return 'device.error.no_code';
    case 'NotFoundError':
      return 'device.error.not_found';
    case 'ExpiredError':
      return 'device.error.expired';
    case 'AlreadyUsedError':
      return 'device.error.used';
    case 'AbortedError':
      return 'device.error.aborted';
    default:
      return 'device.error.other';
  }
}

export function createDevicePages(deps: { render: Renderer; throttleStorage: ThrottleStorage; box: Pick<SecretBox, 'mac'> }) {
  const throttle = createThrottle(deps.throttleStorage, { scope: 'device-user-code', box: deps.box, tiers: USER_CODE_TIERS });
  const t = (ctx: Context) => ctx.state.t as Translate;
  const xsrf = (ctx: KoaContextWithOIDC) => String((ctx.oidc.session?.state as { secret?: unknown } | undefined)?.secret ?? '');
  const action = (ctx: Context) => `${DEVICE_PATH}?lang=${String(ctx.state.locale)}`;

  const pages: DevicePages = {
    async input(ctx, err) {
      const key = errorKey(err);
      const error = key ? t(ctx as unknown as Context)(key as Parameters<Translate>[0]) : undefined;
      // Only a code that does not exist counts as a guess; an expired or used one was seen on a device.
      if ((err as { name?: string } | undefined)?.name === 'NotFoundError') {
        const wait = await throttle.fail({ ip: ctx.ip });
        if (wait > 0) return blocked(ctx as unknown as Context, wait);
      }
      const code = (err as { userCode?: unknown } | undefined)?.userCode;
      deps.render(ctx as unknown as Context, 'device/input', {
        title: t(ctx as unknown as Context)('device.title'),
        action: action(ctx as unknown as Context),
        xsrf: xsrf(ctx),
        code: typeof code === 'string' ? code.slice(0, 32) : '',
        error,
      });
    },
    async confirm(ctx, userCode) {
      const locale = (ctx as unknown as Context).state.locale as Locale;
      const client = ctx.oidc.client;
      const name = client ? serviceName(client.metadata() as Record<string, unknown>, locale, client.clientName ?? client.clientId) : '';
      deps.render(ctx as unknown as Context, 'device/confirm', {
        title: t(ctx as unknown as Context)('device.confirm.title'),
        action: action(ctx as unknown as Context),
        xsrf: xsrf(ctx),
        userCode,
        clientName: name,
      });
    },
    async success(ctx) {
      const locale = (ctx as unknown as Context).state.locale as Locale;
      const client = ctx.oidc.client;
      const name = client ? serviceName(client.metadata() as Record<string, unknown>, locale, client.clientName ?? client.clientId) : '';
      deps.render(ctx as unknown as Context, 'device/done', { title: t(ctx as unknown as Context)('device.done.title'), clientName: name });
    },
  };

  const blocked = (ctx: Context, wait: number) => {
    ctx.status = 429;
    ctx.set('retry-after', String(wait));
    deps.render(ctx, 'device/input', {
      title: t(ctx)('device.title'),
      error: t(ctx)('error.login.rate_limited', { seconds: wait }),
      blocked: true,
    });
  };

  /**
   * Before the engine looks a code up: an address that has guessed too many codes gets the wait,
   * not an answer (the engine is not reached, so no code is tried).
   */
  const guard = async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'POST' || ctx.path !== DEVICE_PATH) return next();
    const wait = await throttle.retryAfter({ ip: ctx.ip });
    if (wait > 0) return blocked(ctx, wait);
    return next();
  };

  return { pages, guard };
}
