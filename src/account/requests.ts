/**
 * Requests from services (OpenID Connect CIBA, ciba/service.ts): a service such as a call centre
 * asked Kapija to confirm that it is talking to this citizen. The page lists the requests still
 * waiting, with the service's name, its binding message (to compare with what the service says),
 * what it would receive and the time left. Approving needs a second factor proven for this request
 * (an authenticator app code or a security key), throttled like the sign-in's second factor;
 * denying needs nothing. Both are recorded in the citizen's ledger.
 *
 * The approval's methods include the portal sign-in's, and its auth_time is the approval's: so the
 * sign-in must be recent (both factors within the reauthentication window, as for any change in the
 * portal), or the ID token would claim a password proven hours ago as proven now. A sign-in past the
 * window is sent to sign in again and comes back to the list.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { KapijaError } from '../errors.js';
import { REMEMBERED_BROWSER, rank, type AcrLevel, type Amr } from '../assurance/levels.js';
import { honestLevel } from '../identity/levels.js';
import type { Factor } from '../factors/registry.js';
import type { MessageKey } from '../i18n/index.js';
import type { PendingRequest } from '../ciba/service.js';
import type { Citizen, PortalKit } from './kit.js';

const PATH = '/account/requests';
/** The second factors that may approve a request: a code form or a browser ceremony, standing alone. */
const approving = (f: Factor) => f.standsAlone && (f.second?.form.kind === 'code' || f.second?.form.kind === 'ceremony');

export function requestsRoutes(router: Router, p: PortalKit): void {
  const { d, t, body, citizen, requireCitizen, requireRecentAuth, isRecent, page } = p;
  const ciba = d.ciba;
  const throttle = d.secondFactorThrottle;
  if (!ciba || !throttle) return;

  // An approval claims the portal sign-in's methods as proven now: the sign-in must be recent (see above).
  const recentSignIn = requireRecentAuth(PATH);
  /** The methods the portal sign-in proved (a remembered browser never counts here). */
  const sessionAmr = (me: Citizen) => me.session.amr.filter((m) => m !== REMEMBERED_BROWSER);

  /** The factors that can approve `r`: enrolled, and reaching its level beside the portal sign-in's methods. */
  const factorsFor = async (me: Citizen, required: AcrLevel) => {
    const identity = await d.identity?.find(me.account.id);
    if (rank(honestLevel('high', identity?.level ?? 'none')) < rank(required)) return [];
    return (await d.factors.offered(me.account.id, sessionAmr(me) as Amr[], required)).filter(approving);
  };

  const describe = (ctx: Context, me: Citizen, r: PendingRequest, index: number) => describeRequest(p, ctx, r, index, factorsFor(me, r.required));

  const show = async (ctx: Context, extra: { error?: string; errorFor?: string } = {}) => {
    const me = citizen(ctx);
    const pending = await ciba.pending(me.account.id);
    const done = typeof ctx.query.done === 'string' && ['approved', 'denied'].includes(ctx.query.done) ? ctx.query.done : undefined;
    page(ctx, 'account/requests', 'account.requests.title', {
      requests: await Promise.all(pending.map((r, i) => describe(ctx, me, r, i))),
      done,
      // Past the window, the page says so before a code is typed, and offers denial only.
      reauth: pending.length > 0 && !isRecent(me.session),
      ...extra,
    });
  };

  router.get('/requests', requireCitizen, async (ctx) => {
    ctx.set('cache-control', 'no-store');
    await show(ctx);
  });

  // "Sign in again to approve": the sign-in with both factors, back to the list.
  router.get('/requests/sign-in', requireCitizen, recentSignIn, (ctx) => {
    ctx.redirect(PATH);
  });

  /** A wrong proof: counted like the sign-in's second factor; past the limit, a wait. */
  const failed = async (ctx: Context, me: Citizen, err: KapijaError, handle: string) => {
    const wait = await throttle.fail({ account: me.account.id, ip: ctx.ip });
    if (wait > 0) throw new KapijaError('login.rate_limited', 429, { details: { retryAfter: wait } });
    ctx.status = 401;
    await show(ctx, { error: t(ctx)(`error.${err.code}` as MessageKey), errorFor: handle });
  };

  const waitFor = async (ctx: Context, me: Citizen) => {
    const wait = await throttle.retryAfter({ account: me.account.id, ip: ctx.ip });
    if (wait > 0) throw new KapijaError('login.rate_limited', 429, { details: { retryAfter: wait } });
  };

  /** Proves `factor` for the request and approves it; the methods proven are the portal's and this factor's. */
  const approveWith = async (ctx: Context, me: Citizen, r: PendingRequest, proof: () => Promise<{ amr: readonly string[] }>) => {
    const outcome = await proof();
    await throttle.succeed({ account: me.account.id, ip: ctx.ip });
    await ciba.approve(me.account.id, r, { amr: [...sessionAmr(me), ...outcome.amr] });
  };

  router.post('/requests/approve', requireCitizen, recentSignIn, async (ctx) => {
    const me = citizen(ctx);
    const b = body(ctx);
    const handle = typeof b.request === 'string' ? b.request : '';
    const r = await ciba.find(me.account.id, handle);
    await waitFor(ctx, me);
    const factor = (await factorsFor(me, r.required)).find((f) => f.id === b.factor && f.second!.form.kind === 'code');
    if (!factor) throw new KapijaError('ciba.level_unmet', 403);
    try {
      await approveWith(ctx, me, r, () => factor.second!.verify({ accountId: me.account.id, body: { code: typeof b.code === 'string' ? b.code : '' } }));
    } catch (err) {
      if (err instanceof KapijaError && err.status === 401) return failed(ctx, me, err, handle);
      throw err;
    }
    ctx.status = 303;
    ctx.redirect(`${PATH}?done=approved`);
  });

  // A security key or passkey (static/webauthn.js): the ceremony's challenge waits in a sealed,
  // short-lived cookie bound to the account and the request, and is cleared on every attempt.
  const CHALLENGE = 'kapija.account.ciba';
  const challengeCookie = { httpOnly: true, sameSite: 'strict' as const, secure: d.secureCookies, path: PATH, overwrite: true };
  const ceremonyOf = async (me: Citizen, r: PendingRequest) => {
    const factor = (await factorsFor(me, r.required)).find((f) => f.second!.form.kind === 'ceremony' && f.second!.challenge);
    if (!factor) throw new KapijaError('ciba.level_unmet', 403);
    return factor;
  };

  router.post('/requests/:handle/webauthn/options', requireCitizen, recentSignIn, async (ctx) => {
    const me = citizen(ctx);
    const r = await ciba.find(me.account.id, ctx.params.handle!);
    await waitFor(ctx, me);
    const factor = await ceremonyOf(me, r);
    const { options, state } = await factor.second!.challenge!(me.account.id);
    ctx.cookies.set(CHALLENGE, d.box.seal(state, `${CHALLENGE}:${me.account.id}:${r.handle}`), { ...challengeCookie, maxAge: 5 * 60 * 1000 });
    ctx.body = options;
  });

  router.post('/requests/:handle/webauthn', requireCitizen, recentSignIn, async (ctx) => {
    const me = citizen(ctx);
    const r = await ciba.find(me.account.id, ctx.params.handle!);
    await waitFor(ctx, me);
    const factor = await ceremonyOf(me, r);
    const sealed = ctx.cookies.get(CHALLENGE);
    ctx.cookies.set(CHALLENGE, null, challengeCookie);
    let challenge: string | undefined;
    try {
      challenge = sealed ? d.box.openString(sealed, `${CHALLENGE}:${me.account.id}:${r.handle}`) : undefined;
    } catch {
      challenge = undefined;
    }
    try {
      await approveWith(ctx, me, r, () => factor.second!.verify({ accountId: me.account.id, body: body(ctx), challenge }));
    } catch (err) {
      if (err instanceof KapijaError && err.status === 401) {
        const wait = await throttle.fail({ account: me.account.id, ip: ctx.ip });
        if (wait > 0) throw new KapijaError('login.rate_limited', 429, { details: { retryAfter: wait } });
      }
      throw err;
    }
    ctx.body = { location: `${PATH}?done=approved` };
  });

  router.post('/requests/deny', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    const handle = body(ctx).request;
    const r = await ciba.find(me.account.id, typeof handle === 'string' ? handle : '');
    await ciba.deny(me.account.id, r);
    ctx.status = 303;
    ctx.redirect(`${PATH}?done=denied`);
  });
}

/** A waiting request as the page shows it: the service, its message, what it would receive, the time left and how it may be approved. */
async function describeRequest(p: PortalKit, ctx: Context, r: PendingRequest, index: number, approvers: Promise<Factor[]>) {
  const { t, fmt, localName } = p;
  const tr = t(ctx);
  const claimLabel = (c: string) => {
    const key = `consent.claim.${c}` as MessageKey;
    return tr(key) === key ? tr('consent.claim.other', { claim: c }) : tr(key);
  };
  const minutes = Math.max(1, Math.ceil((r.expiresAt.getTime() - Date.now()) / 60_000));
  const factors = await approvers;
  return {
    index,
    handle: r.handle,
    service: await localName(ctx, r.clientId),
    bindingMessage: r.bindingMessage,
    claims: r.claims.map(claimLabel),
    offline: r.scopes.includes('offline_access'),
    until: fmt(ctx, r.expiresAt),
    left: tr('account.requests.left', { minutes }),
    iso: r.expiresAt.toISOString(),
    code: factors.find((f) => f.second!.form.kind === 'code'),
    ceremony: factors.find((f) => f.second!.form.kind === 'ceremony'),
    unreachable: factors.length === 0,
  };
}
