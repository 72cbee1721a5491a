/**
 * The identify step: the password form (`POST /:uid/login`) and the registered first factors that
 * identify the account by themselves (a passkey at `POST /:uid/passkey`; any factor with
 * `first.identify`). The enrolment decision is taken at the end of this step, from what the account
 * has now (advance → nextStep).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { KapijaError } from '../errors.js';
import { allowFormActionTo } from '../http/headers.js';
import { normaliseUsername } from '../store/accounts.js';
import { typedUsername, type Factor } from '../factors/registry.js';
import { REENROL_COOKIE, getFirstChallenge, getFlow, saveFlow, type Details } from './flow.js';
import { DEVICE_COOKIE, type InteractionKit } from './kit.js';

export function identifyRoutes(router: Router, kit: InteractionKit): void {
  const { deps, t, body } = kit;
  const { accounts, throttles, events, factors } = deps;

  const renderLogin = (ctx: Context, details: Details, extra: { error?: string; username?: string }) => renderLoginPage(kit, ctx, details, extra);

  /**
   * After an administrator's reset, enrolment comes only through the mailed link, followed in this
   * browser. `hasSecondFactor`: whether the account has one, as read in this request.
   */
  const reenrolLinkUsed = async (ctx: Context, accountId: string, hasSecondFactor: boolean): Promise<boolean> => {
    if (hasSecondFactor || !(await accounts.factorsResetPending(accountId))) return false;
    const link = ctx.cookies.get(REENROL_COOKIE);
    const used = link ? await deps.factorReset.useLink(link, accountId) : false;
    if (used) ctx.cookies.set(REENROL_COOKIE, null, { path: '/interaction' });
    else await deps.factorReset.ensureLink(accountId);
    return used;
  };

  router.post('/:uid/login', async (ctx) => {
    const details = await kit.enter(ctx, 'identify');
    const password = factors.require('password');
    const username = typedUsername(body(ctx));
    const { keys, opts } = throttles.passwordAttempt({ account: username ? normaliseUsername(username) : '', ip: ctx.ip, deviceCookie: ctx.cookies.get(DEVICE_COOKIE) });
    const wait = await throttles.password.retryAfter(keys, opts);
    if (wait > 0) {
      ctx.status = 429;
      ctx.set('retry-after', String(wait));
      return renderLogin(ctx, details, { error: t(ctx)('error.login.rate_limited', { seconds: wait }), username });
    }
    let proof;
    try {
      // Unknown user, wrong password and malformed input get the same answer; a hash is verified either way.
      proof = await password.first!.identify({ body: body(ctx) });
    } catch (err) {
      if (!(err instanceof KapijaError) || err.status !== 401) throw err;
      const accountId = err.details?.accountId as string | undefined;
      await events.emit('signin.failure', { accountId, clientId: kit.clientIdOf(details), factor: 'password', reason: 'invalid_credentials', ip: ctx.ip });
      const after = await throttles.password.fail(keys, opts);
      ctx.status = after > 0 ? 429 : 401;
      if (after > 0) ctx.set('retry-after', String(after));
      const error = after > 0 ? t(ctx)('error.login.rate_limited', { seconds: after }) : t(ctx)('error.login.invalid_credentials');
      return renderLogin(ctx, details, { error, username });
    }
    await throttles.password.succeed(keys);
    // The row the password was checked against, read in this request: its status is as fresh as a second read's.
    const account = proof.account ?? (await accounts.findById(proof.accountId));
    if (account?.status === 'pending') {
      // Self-registered, e-mail not yet verified (said only to someone who knows the password).
      ctx.status = 403;
      return renderLogin(ctx, details, { error: t(ctx)('error.login.email_unverified'), username });
    }
    if (account?.status !== 'active') {
      ctx.status = 403;
      return renderLogin(ctx, details, { error: t(ctx)('error.login.account_locked'), username });
    }
    // Read once: the re-enrolment check and the next step decide on the same answer.
    const hasSecondFactor = await factors.hasSecondFactor(proof.accountId);
    const resetLinkUsed = await reenrolLinkUsed(ctx, proof.accountId, hasSecondFactor);
    await kit.advance(ctx, details, { step: 'second-factor', accountId: proof.accountId, amr: [...proof.amr], ...(resetLinkUsed ? { resetLinkUsed } : {}) }, { hasSecondFactor });
  });

  /**
   * A first factor other than the password: it identifies the account and proves it (a passkey with
   * user verification; one that proves two factors at once finishes the sign-in here).
   */
  const identifyWith = (factor: Factor, from: 'body' | 'query' = 'body') => async (ctx: Context) => {
    const details = await kit.enter(ctx, 'identify');
    const stored = getFirstChallenge(details);
    // Single use, whatever the outcome.
    await saveFlow(details, getFlow(details));
    const raw = (from === 'query' ? { ...ctx.query } : body(ctx)) as { response?: unknown } | undefined;
    const keys = throttles.passkeyAttempt(raw?.response, ctx.ip);
    const wait = await throttles.passkey.retryAfter(keys);
    if (wait > 0) throw kit.throttled(wait);
    const challenge = stored?.factor === factor.id ? stored.state : undefined;
    // A ceremony answered without its challenge proves nothing and is not counted as an attempt.
    if (factor.first!.challenge && !challenge) throw new KapijaError('factor.webauthn.failed', 401);
    let proof;
    try {
      const clientCertificate = typeof ctx.state.clientCertificate === 'string' ? ctx.state.clientCertificate : undefined;
      proof = await factor.first!.identify({ body: raw, challenge, clientCertificate, interaction: details.uid, ip: ctx.ip });
    } catch (err) {
      if (err instanceof KapijaError && err.status === 401) {
        const reason = typeof err.details?.reason === 'string' ? `${err.code}.${err.details.reason}` : err.code;
        await events.emit('signin.failure', { clientId: kit.clientIdOf(details), factor: factor.first!.path ?? factor.id, reason, ip: ctx.ip });
        await throttles.passkey.fail(keys);
        // A refusal the factor explains (the ID card's certificate): its page, with "try again" and
        // "sign in another way", at a URL of its own (the used return token leaves the address bar).
        if (err.details?.refusal === true && factor.first!.redirect && typeof err.details.reason === 'string') {
          return kit.redirect(ctx, `/interaction/${details.uid}/${factor.id}/refused?reason=${encodeURIComponent(err.details.reason)}&lang=${String(ctx.state.locale)}`);
        }
      }
      throw err;
    }
    await throttles.passkey.succeed(keys);
    const account = await accounts.findById(proof.accountId);
    if (!account || account.status !== 'active') throw new KapijaError('login.account_locked', 403);
    await kit.advance(ctx, details, { step: 'second-factor', accountId: proof.accountId, amr: [...proof.amr] });
  };
  /**
   * The refusal page of a factor whose proof is made on another host: why (its catalogue's
   * `<id>.refused.title` and `<id>.refused.<reason>`), "try again", "sign in another way".
   */
  const refusalPage = (factor: Factor) => async (ctx: Context) => {
    const details = await kit.enter(ctx, 'identify');
    const tr = t(ctx) as unknown as (key: string) => string;
    const reason = typeof ctx.query.reason === 'string' && /^[a-z_]{1,32}$/.test(ctx.query.reason) ? ctx.query.reason : undefined;
    const message = reason ? tr(`${factor.id}.refused.${reason}`) : undefined;
    if (!reason || message === `${factor.id}.refused.${reason}`) throw new KapijaError('request.not_found', 404);
    allowFormActionTo(ctx, factor.first!.redirect!.origin);
    const title = tr(`${factor.id}.refused.title`);
    deps.render(ctx, 'interaction/factor-refused', { title, heading: title, message, uid: details.uid, factor: factor.id });
    ctx.status = 403;
  };

  /** Sends the browser to the other host that makes the proof (the ID card's certificate host). */
  const startRedirect = (factor: Factor) => async (ctx: Context) => {
    const details = await kit.enter(ctx, 'identify');
    const to = await factor.first!.redirect!.start(details.uid);
    allowFormActionTo(ctx, factor.first!.redirect!.origin);
    ctx.set('cache-control', 'no-store');
    ctx.status = 303;
    ctx.redirect(to);
  };

  for (const factor of factors.firstFactors()) {
    if (factor.id === 'password') continue;
    const path = `/:uid/${factor.first!.path ?? `${factor.id}/identify`}`;
    router.post(path, identifyWith(factor));
    if (factor.first!.redirect) {
      router.post(`/:uid/${factor.id}/start`, startRedirect(factor));
      // The other host sends the browser back here: a GET, bound by its single-use token to this interaction and its cookies.
      router.get(path, identifyWith(factor, 'query'));
      router.get(`/:uid/${factor.id}/refused`, refusalPage(factor));
    }
  }
}

/** First factors proven on another host, offered on the sign-in page as a button each. */
function redirectFactors(kit: InteractionKit, ctx: Context): Array<{ id: string; label: string; intro: string }> {
  const tr = kit.t(ctx) as unknown as (key: string) => string;
  return kit.deps.factors.firstFactors().flatMap((f) => {
    if (!f.first?.redirect) return [];
    allowFormActionTo(ctx, f.first.redirect.origin);
    return [{ id: f.id, label: tr(f.labels.heading), intro: tr(`${f.labels.heading}.intro`) }];
  });
}

/** Starts a first factor's ceremony on the sign-in page (`purpose: passkey` of the options route). */
export async function firstFactorChallenge(ctx: Context, kit: InteractionKit, factor: Factor): Promise<void> {
  const details = await kit.enter(ctx, 'identify');
  if (!factor.first?.challenge) throw new KapijaError('request.not_found', 404);
  const { options, state } = await factor.first.challenge();
  await saveFlow(details, getFlow(details), { factor: factor.id, state });
  ctx.body = options;
}

/** The sign-in form (at first with the request's login hint, after a failed attempt with its error). */
export async function renderLoginPage(kit: InteractionKit, ctx: Context, details: Details, extra: { error?: string; username?: string }): Promise<void> {
  kit.deps.render(ctx, 'interaction/login', { title: kit.t(ctx)('login.title'), uid: details.uid, clientName: await kit.clientName(ctx, details), redirectFactors: redirectFactors(kit, ctx), ...extra });
}
