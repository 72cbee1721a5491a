/**
 * The pace of the polling grants: CIBA in poll mode (CIBA Core §7.3, §11) and the device grant
 * (RFC 8628 §3.4, §3.5). Both tell the service how often it may ask (`interval`, five seconds when
 * not stated) and let the server answer `slow_down` to one that asks more often; the engine
 * announces no interval and never slows anyone down, so a service could poll a waiting request in
 * a tight loop, each poll a database read.
 *
 * Kapija states the interval in the start responses (`/backchannel`, `/device/auth`) and counts
 * the polls that find the request still waiting, per service and request (a keyed hash of the
 * auth_req_id or device code, never the code itself), in the shared rate-limit table, so the pace
 * holds across instances. A second waiting poll within the interval (less a second's tolerance for
 * the network) is answered `slow_down` instead of `authorization_pending`. Only a waiting answer
 * is ever changed: once the citizen has answered, the next poll gets the tokens or the refusal.
 */
import type { Context, Next } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { SecretBox } from '../security/crypto.js';
import { createThrottle, type ThrottleStorage, type Tier } from '../security/rate-limit.js';

/** Seconds a service waits between polls (the default of both specifications). */
export const POLL_INTERVAL = 5;

const CIBA = 'urn:openid:params:grant-type:ciba';
const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';

/** One waiting poll per interval (less a second of network jitter); no lock beyond the window. */
export const POLL_TIERS: readonly Tier[] = [{ by: ['account'], points: 1, duration: POLL_INTERVAL - 1, blockDuration: 0 }];

/** The request a poll names: its grant type and code, or undefined for any other token request. */
function polled(params: Record<string, unknown> | undefined): string | undefined {
  const grantType = params?.grant_type;
  const code = grantType === CIBA ? params?.auth_req_id : grantType === DEVICE ? params?.device_code : undefined;
  return typeof code === 'string' && code ? `${grantType} ${code}` : undefined;
}

/** Engine middleware (provider.use): states the interval and answers `slow_down` to a poll that came too soon. */
export function pollPace(deps: { storage: ThrottleStorage; box: Pick<SecretBox, 'mac'> }) {
  const throttle = createThrottle(deps.storage, { scope: 'grant-poll', box: deps.box, tiers: POLL_TIERS });
  return async (ctx: Context, next: Next): Promise<void> => {
    await next();
    const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
    const route = oidc?.route;
    const body = ctx.body as Record<string, unknown> | undefined;
    if (!oidc || !body || typeof body !== 'object' || Buffer.isBuffer(body)) return;
    if (ctx.status === 200 && (route === 'backchannel_authentication' || route === 'device_authorization') && body.interval === undefined) {
      body.interval = POLL_INTERVAL;
      return;
    }
    if (route !== 'token' || ctx.status !== 400 || body.error !== 'authorization_pending' || !oidc.client) return;
    const request = polled(oidc.params as Record<string, unknown> | undefined);
    if (!request) return;
    const wait = await throttle.fail({ account: `${oidc.client.clientId} ${request}`, ip: '' });
    if (wait > 0) {
      ctx.body = { error: 'slow_down', error_description: `polling too quickly: wait at least ${POLL_INTERVAL} seconds between polls` };
    }
  };
}
