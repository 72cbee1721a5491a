/**
 * The sign-in pages behind oidc-provider's interactions (`/interaction/:uid/*`). Like
 * node-oidc-provider's `example/routes/koa.js`, the GET switches on the prompt; each POST first
 * calls `enter(ctx, ...steps)`, which refuses (400 interaction.invalid_step, nothing changed) unless
 * the interaction is in one of the steps the route belongs to, then records progress in the
 * interaction (flow.ts), the next step coming from nextStep(). The login is handed to the engine
 * only when the factors reach the level the service needs.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { KapijaError, assertThat } from '../errors.js';
import type { Renderer } from '../http/render.js';
import { applyUiLocales } from '../http/middleware.js';
import type { Translate, Locale, MessageKey } from '../i18n/index.js';
import type { AccountRepository } from '../store/accounts.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import type { TotpFactor } from '../factors/totp/index.js';
import type { RecoveryFactor } from '../factors/recovery/index.js';
import type { WebAuthnFactor } from '../factors/webauthn/index.js';
import type { SignInThrottles } from '../security/sign-in-throttles.js';
import { randomToken, type SecretBox } from '../security/crypto.js';
import type { EventBus } from '../events.js';
import { normaliseUsername } from '../store/accounts.js';
import { acrToAssert, completeAmr, levelFor, rank, type Amr } from '../oidc/acr.js';
import type { ConsentRefusalRepository } from '../store/consent-refusals.js';
import { serviceName } from '../i18n/service-name.js';
import { createConsent } from './consent.js';
import { REENROL_COOKIE, essentialAcrs, getFlow, getPasskeyChallenge, isStepUp, levelRequired, nextStep, saveFlow, stepOf, type Details, type Flow, type Step } from './flow.js';
import { allowFormActionTo } from '../http/headers.js';
import { identityOutcome, renderIdentityStep, type IdentityLevelSource } from '../identity/step.js';

export interface InteractionDeps {
  provider: Provider;
  accounts: AccountRepository;
  credentials: CredentialRepository;
  passwords: PasswordHasher;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  webauthn: WebAuthnFactor;
  throttles: SignInThrottles;
  box: SecretBox;
  render: Renderer;
  defaultLocale: Locale;
  requireSecondFactor: boolean;
  events: EventBus;
  /** Claims citizens refused to services (the consent step, consent.ts). */
  refusals: ConsentRefusalRepository;
  /** The citizen's verified identity level: the acr asserted is never above it (identity/levels.ts). */
  identity: IdentityLevelSource;
  /** Re-enrolment after an administrator removed the factors: only through the link mailed to the citizen. */
  factorReset: {
    /** Uses the link this browser followed, when it was sent to `accountId`. */
    useLink(token: string, accountId: string): Promise<boolean>;
    /** Mails a new link when no live one is out. */
    ensureLink(accountId: string): Promise<void>;
  };
}

const loginBody = z.object({
  username: z.string().trim().min(1).max(64),
  password: z.string().min(1).max(1024),
});
const codeBody = z.object({ code: z.string().trim().min(1).max(64) });
const webauthnBody = z.object({ response: z.record(z.string(), z.unknown()), name: z.string().max(100).optional() });

type Method = 'totp' | 'webauthn' | 'recovery';

/**
 * Random cookie naming this browser, for new-device notices (it authenticates nothing). It lives
 * DEVICE_COOKIE_DAYS and is renewed at each sign-in, so a browser unused that long is new again.
 */
export const DEVICE_COOKIE = 'kapija.device';
export const DEVICE_COOKIE_DAYS = 90;

export function createInteractionRouter(deps: InteractionDeps): Router {
  const { provider, accounts, credentials, passwords, totp, recovery, webauthn, throttles, box, render, defaultLocale, events } = deps;
  const clientIdOf = (details: Details) => String(details.params.client_id);
  const router = new Router({ prefix: '/interaction' });
  const consent = createConsent({ provider, refusals: deps.refusals });

  const t = (ctx: Context) => ctx.state.t as Translate;
  const body = (ctx: Context) => (ctx.request as { body?: unknown }).body;
  const wantsJson = (ctx: Context) => ctx.is('application/json') === 'application/json' || ctx.accepts('html', 'json') === 'json';

  const load = async (ctx: Context): Promise<Details> => {
    let details: Details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      if ((err as { name?: string }).name === 'SessionNotFound') throw new KapijaError('interaction.expired', 400);
      throw err;
    }
    if (details.uid !== ctx.params.uid) throw new KapijaError('interaction.expired', 400);
    // The step's form may end in the redirect to the service (validated by the engine at /auth).
    allowFormActionTo(ctx, details.params.redirect_uri);
    applyUiLocales(ctx, details.params.ui_locales as string | undefined, defaultLocale);
    return details;
  };

  const client = async (details: Details) => provider.Client.find(String(details.params.client_id));
  const clientName = async (ctx: Context, details: Details) => {
    const c = await client(details);
    return serviceName((c?.metadata() ?? {}) as Record<string, unknown>, ctx.state.locale as Locale, c?.clientName ?? String(details.params.client_id));
  };
  const required = async (details: Details) => levelRequired(details, (await client(details))?.metadata()['kapija_min_acr']);

  const redirect = (ctx: Context, to: string) => {
    if (wantsJson(ctx)) {
      ctx.body = { location: to };
      return;
    }
    ctx.status = 303;
    ctx.redirect(to);
  };
  /** The interaction's page, in the language of the page the citizen is on. */
  const self = (ctx: Context, details: Details) => `/interaction/${details.uid}?lang=${String(ctx.state.locale)}`;

  /**
   * The browser's random device cookie (set on its first sign-in, renewed on each), as a keyed hash:
   * lets Kapija tell the citizen about sign-ins from a new device without storing the cookie itself.
   */
  const knownDevice = (ctx: Context): string => {
    let device = ctx.cookies.get(DEVICE_COOKIE);
    if (!device || !/^[A-Za-z0-9_-]{43}$/.test(device)) device = randomToken(32);
    ctx.cookies.set(DEVICE_COOKIE, device, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: DEVICE_COOKIE_DAYS * 24 * 3600 * 1000, signed: false, overwrite: true });
    return box.mac('device', device);
  };

  const finishWith = async (ctx: Context, result: Parameters<Provider['interactionResult']>[2]) => {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    redirect(ctx, to);
  };

  const flowOf = (details: Details): Flow => {
    const flow = getFlow(details);
    assertThat(flow, 'interaction.invalid_step');
    return flow;
  };

  /** Loads the interaction and refuses the request unless it is in one of `steps`. */
  const enter = async (ctx: Context, ...steps: Step[]): Promise<Details> => {
    const details = await load(ctx);
    const step = stepOf(details);
    if (!step || !steps.includes(step)) throw new KapijaError('interaction.invalid_step', 400);
    return details;
  };

  const hasSecondFactor = async (accountId: string) => {
    const enrolled = await credentials.enrolledTypes(accountId);
    return enrolled.has('totp') || enrolled.has('webauthn');
  };

  /** An administrator removed the factors and this sign-in did not come through the mailed link. */
  const resetPending = async (flow: Flow) => !flow.resetLinkUsed && (await accounts.factorsResetPending(flow.accountId));

  /**
   * Enrolment routes: the account must still have no second factor (another tab may have enrolled
   * one since the password step decided on enrolment).
   */
  const enterEnrolment = async (ctx: Context): Promise<Details> => {
    const details = await enter(ctx, 'enrol');
    const flow = flowOf(details);
    if ((await hasSecondFactor(flow.accountId)) || (await resetPending(flow))) throw new KapijaError('interaction.invalid_step', 400);
    return details;
  };

  /**
   * Completes the sign-in when the methods proven reach the required level with two factors;
   * otherwise keeps the citizen in the flow (or ends it with unmet_authentication_requirements).
   */
  const advance = async (ctx: Context, details: Details, flow: Flow) => {
    const amr = completeAmr(flow.amr);
    const reached = levelFor(amr);
    const needed = await required(details);
    const twoFactors = amr.includes('mfa') || !deps.requireSecondFactor;
    const satisfied = twoFactors && rank(reached) >= rank(needed);
    // nextStep asks about the account's factors only when the flow is not yet satisfied, and about
    // an administrator's reset only for an account without any: read each only when it decides.
    const hasFactor = !satisfied && (await hasSecondFactor(flow.accountId));
    const step = nextStep({
      satisfied,
      // A notice (new recovery codes, codes left) comes first; "continue" finishes.
      notice: Boolean(flow.codes) || flow.recoveryRemaining !== undefined,
      hasSecondFactor: hasFactor,
      stepUp: Boolean(flow.stepUp),
      resetPending: !satisfied && !hasFactor && !flow.stepUp && (await resetPending(flow)),
    });
    if (step === 'done') {
      const outcome = await identityOutcome(deps.identity, flow.accountId, reached, needed);
      if (outcome.short) {
        await saveFlow(details, { ...flow, amr, step: 'identity' });
        return redirect(ctx, self(ctx, details));
      }
      const acr = acrToAssert(outcome.reached, essentialAcrs(details));
      const deviceId = knownDevice(ctx);
      await finishWith(ctx, { login: { accountId: flow.accountId, amr, acr, remember: true } });
      await events.emit('signin.success', {
        deviceId,
        accountId: flow.accountId,
        clientId: clientIdOf(details),
        acr,
        amr,
        ip: ctx.ip,
        userAgent: ctx.get('user-agent').slice(0, 300),
      });
      return;
    }
    await saveFlow(details, { ...flow, amr, step });
    return redirect(ctx, self(ctx, details));
  };

  /** Methods that can still raise this flow to the required level. */
  const methodsFor = async (details: Details, flow: Flow): Promise<Method[]> => {
    const enrolled = await credentials.enrolledTypes(flow.accountId);
    const needed = await required(details);
    const candidates: Array<[Method, Amr[]]> = [
      ['totp', ['otp']],
      ['webauthn', [(await webauthn.strongest(flow.accountId)) ?? 'swk']],
      ['recovery', ['otp']],
    ];
    const hasRealFactor = enrolled.has('totp') || enrolled.has('webauthn');
    return candidates
      .filter(([m]) => enrolled.has(m) && (m !== 'recovery' || hasRealFactor))
      .filter(([, adds]) => rank(levelFor(completeAmr([...flow.amr, ...adds]))) >= rank(needed))
      .map(([m]) => m);
  };

  const renderLogin = async (ctx: Context, details: Details, extra: { error?: string; username?: string } = {}) => {
    render(ctx, 'interaction/login', { title: t(ctx)('login.title'), uid: details.uid, clientName: await clientName(ctx, details), ...extra });
  };

  /** The page of the step the flow is in (after a failed attempt, with its error). */
  const renderStep = async (ctx: Context, details: Details, flow: Flow, error?: string) => {
    switch (flow.step) {
      case 'enrol':
        return renderEnrol(ctx, details, flow, error);
      case 'second-factor':
        return renderSecondFactor(ctx, details, flow, error);
      case 'reset-link':
        return render(ctx, 'interaction/reset-link', { title: t(ctx)('reset_link.title'), uid: details.uid });
      case 'identity':
        return renderIdentityStep(ctx, render, { uid: details.uid, service: await clientName(ctx, details) });
      case 'notice':
        if (flow.codes) {
          const codes = JSON.parse(box.openString(flow.codes, `codes:${details.uid}`)) as string[];
          return render(ctx, 'interaction/recovery-codes', { title: t(ctx)('codes.title'), uid: details.uid, codes });
        }
        return render(ctx, 'interaction/recovery-used', {
          title: t(ctx)('mfa.recovery.used.heading'),
          uid: details.uid,
          remaining: flow.recoveryRemaining ?? 0,
        });
      default:
        throw new KapijaError('interaction.invalid_step', 400);
    }
  };

  /** No second factor yet: enrol one now, then continue to the service. */
  const renderEnrol = async (ctx: Context, details: Details, flow: Flow, error?: string) => {
    if (await hasSecondFactor(flow.accountId)) {
      // Enrolled meanwhile (another tab): prove that factor instead.
      const proving: Flow = { ...flow, step: 'second-factor', pendingTotp: undefined, challenge: undefined };
      await saveFlow(details, proving);
      return renderSecondFactor(ctx, details, proving);
    }
    const account = await accounts.findById(flow.accountId);
    assertThat(account, 'interaction.expired');
    let shown;
    if (flow.pendingTotp) {
      shown = await totp.view(totp.openSecret(flow.pendingTotp, flow.accountId), account.username);
    } else {
      shown = await totp.begin(account.username);
      await saveFlow(details, { ...flow, pendingTotp: totp.sealSecret(shown.secret, flow.accountId) });
    }
    render(ctx, 'interaction/enrol', {
      title: t(ctx)('enrol.title'),
      uid: details.uid,
      secret: shown.secret.replace(/(.{4})/g, '$1 ').trim(),
      qrDataUri: `data:image/svg+xml;base64,${Buffer.from(shown.qrSvg).toString('base64')}`,
      error,
    });
  };

  const renderSecondFactor = async (ctx: Context, details: Details, flow: Flow, error?: string) => {
    const methods = await methodsFor(details, flow);
    if (methods.length === 0) {
      // Nothing enrolled can reach the level this service requires.
      await finishWith(ctx, {
        error: 'unmet_authentication_requirements',
        error_description: 'the account has no factor that reaches the requested level of assurance',
      });
      return;
    }
    const method = typeof ctx.query.method === 'string' && methods.includes(ctx.query.method as Method) ? (ctx.query.method as Method) : undefined;
    render(ctx, method === 'recovery' ? 'interaction/recovery' : 'interaction/second-factor', {
      title: t(ctx)('mfa.title'),
      uid: details.uid,
      methods,
      stepUp: flow.stepUp ? await clientName(ctx, details) : undefined,
      error,
    });
  };

  /**
   * Recovery codes for a first enrolment, only when the account has none: a sign-in never replaces
   * codes the citizen already holds.
   */
  const firstCodes = async (details: Details, accountId: string): Promise<Pick<Flow, 'codes'>> => {
    if ((await recovery.remaining(accountId)) > 0) return {};
    const codes = await recovery.issue(accountId);
    return { codes: box.seal(JSON.stringify(codes), `codes:${details.uid}`) };
  };

  const throttled = (seconds: number) => new KapijaError('login.rate_limited', 429, { details: { retryAfter: seconds } });

  // ---------------------------------------------------------------- pages

  router.get('/:uid', async (ctx) => {
    const details = await load(ctx);
    switch (details.prompt.name) {
      case 'login': {
        let flow = getFlow(details);
        if (!flow && isStepUp(details)) {
          // Step-up proves a factor the account has; it never enrols one.
          flow = { step: 'second-factor', accountId: details.session!.accountId, amr: (details.session!.amr ?? ['pwd']) as Amr[], stepUp: true };
          await saveFlow(details, flow);
        }
        if (!flow) {
          return renderLogin(ctx, details, {
            username: typeof details.params.login_hint === 'string' ? details.params.login_hint.slice(0, 64) : undefined,
          });
        }
        return renderStep(ctx, details, flow);
      }
      case 'consent': {
        const tr = t(ctx);
        const offer = await consent.offer(ctx, details);
        return render(ctx, 'interaction/consent', {
          title: tr('consent.title'),
          uid: details.uid,
          clientName: offer.clientName,
          policyUri: offer.policyUri,
          items: offer.claims.map((c) => ({
            ...c,
            label: (() => {
              const key = `consent.claim.${c.claim}` as MessageKey;
              return tr(key) === key ? tr('consent.claim.other', { claim: c.claim }) : tr(key);
            })(),
          })),
          offline: offer.offline ? tr('consent.scope.offline_access') : undefined,
          offlineAllowed: offer.offlineAllowed,
        });
      }
      default:
        throw new KapijaError('interaction.invalid_step', 400);
    }
  });

  // ---------------------------------------------------------------- first factor: password

  router.post('/:uid/login', async (ctx) => {
    const details = await enter(ctx, 'identify');
    const parsed = loginBody.safeParse(body(ctx));
    const username = parsed.success ? parsed.data.username : undefined;
    const { keys, opts } = throttles.passwordAttempt({ account: username ? normaliseUsername(username) : '', ip: ctx.ip, deviceCookie: ctx.cookies.get(DEVICE_COOKIE) });
    const wait = await throttles.password.retryAfter(keys, opts);
    if (wait > 0) {
      ctx.status = 429;
      ctx.set('retry-after', String(wait));
      return renderLogin(ctx, details, { error: t(ctx)('error.login.rate_limited', { seconds: wait }), username });
    }
    // Unknown user, wrong password and malformed input get the same answer; a hash is verified either way.
    const found = username ? await accounts.findCredentialsByUsername(username) : undefined;
    const ok = await passwords.verify(found?.passwordHash, parsed.success ? parsed.data.password : '');
    if (!ok || !found) {
      await events.emit('signin.failure', { accountId: found?.account.id, clientId: clientIdOf(details), factor: 'password', reason: 'invalid_credentials', ip: ctx.ip });
      const after = await throttles.password.fail(keys, opts);
      ctx.status = after > 0 ? 429 : 401;
      if (after > 0) ctx.set('retry-after', String(after));
      const error = after > 0 ? t(ctx)('error.login.rate_limited', { seconds: after }) : t(ctx)('error.login.invalid_credentials');
      return renderLogin(ctx, details, { error, username });
    }
    await throttles.password.succeed(keys);
    if (found.account.status === 'pending') {
      // Self-registered, e-mail not yet verified (said only to someone who knows the password).
      ctx.status = 403;
      return renderLogin(ctx, details, { error: t(ctx)('error.login.email_unverified'), username });
    }
    if (found.account.status !== 'active') {
      ctx.status = 403;
      return renderLogin(ctx, details, { error: t(ctx)('error.login.account_locked'), username });
    }
    if (found.passwordHash && passwords.needsRehash(found.passwordHash)) {
      await accounts.setPasswordHash(found.account.id, await passwords.hash(parsed.data!.password));
    }
    const accountId = found.account.id;
    // After an administrator's reset, enrolment comes only through the mailed link, followed in this browser.
    let resetLinkUsed = false;
    if (!(await hasSecondFactor(accountId)) && (await accounts.factorsResetPending(accountId))) {
      const link = ctx.cookies.get(REENROL_COOKIE);
      resetLinkUsed = link ? await deps.factorReset.useLink(link, accountId) : false;
      if (resetLinkUsed) ctx.cookies.set(REENROL_COOKIE, null, { path: '/interaction' });
      else await deps.factorReset.ensureLink(accountId);
    }
    // The enrolment decision is taken here, from what the account has now (advance → nextStep).
    await advance(ctx, details, { step: 'second-factor', accountId, amr: ['pwd'], ...(resetLinkUsed ? { resetLinkUsed } : {}) });
  });

  // ---------------------------------------------------------------- second factors

  const secondFactorAttempt = async (
    ctx: Context,
    step: 'second-factor' | 'enrol',
    factor: 'totp' | 'recovery' | 'webauthn',
    attempt: (details: Details, flow: Flow) => Promise<Partial<Flow> & { amr: Amr[] }>,
  ) => {
    const details = step === 'enrol' ? await enterEnrolment(ctx) : await enter(ctx, step);
    const flow = flowOf(details);
    const keys = { account: flow.accountId, ip: ctx.ip };
    const wait = await throttles.secondFactor.retryAfter(keys);
    if (wait > 0) throw throttled(wait);
    let outcome;
    try {
      outcome = await attempt(details, flow);
    } catch (err) {
      if (!(err instanceof KapijaError) || err.status !== 401) throw err;
      await events.emit('signin.failure', { accountId: flow.accountId, clientId: clientIdOf(details), factor, reason: err.code, ip: ctx.ip });
      const after = await throttles.secondFactor.fail(keys);
      if (after > 0) throw throttled(after);
      if (wantsJson(ctx)) throw err;
      ctx.status = 401;
      const fresh = getFlow(details) ?? flow;
      return renderStep(ctx, details, fresh, t(ctx)(`error.${err.code}` as MessageKey));
    }
    await throttles.secondFactor.succeed(keys);
    const { amr, ...rest } = outcome;
    if (step === 'enrol') {
      await accounts.setFactorsReset(flow.accountId, false);
      await events.emit('factor.enrolled', { accountId: flow.accountId, type: factor, ip: ctx.ip });
    }
    if (outcome.recoveryRemaining !== undefined) {
      await events.emit('factor.recovery_used', { accountId: flow.accountId, remaining: outcome.recoveryRemaining, ip: ctx.ip });
    }
    await advance(ctx, details, { ...flow, ...rest, amr: [...flow.amr, ...amr], challenge: undefined });
  };

  router.post('/:uid/totp', async (ctx) =>
    secondFactorAttempt(ctx, 'second-factor', 'totp', async (_details, flow) => {
      const parsed = codeBody.safeParse(body(ctx));
      if (!parsed.success) throw new KapijaError('factor.totp.invalid_code', 401);
      const ok = await totp.verify(flow.accountId, parsed.data.code);
      return { amr: [...ok.amr] };
    }),
  );

  router.post('/:uid/recovery', async (ctx) =>
    secondFactorAttempt(ctx, 'second-factor', 'recovery', async (_details, flow) => {
      const parsed = codeBody.safeParse(body(ctx));
      if (!parsed.success) throw new KapijaError('factor.recovery.invalid_code', 401);
      const enrolled = await credentials.enrolledTypes(flow.accountId);
      if (!enrolled.has('totp') && !enrolled.has('webauthn')) throw new KapijaError('factor.recovery.not_alone', 400);
      const ok = await recovery.verify(flow.accountId, parsed.data.code);
      return { amr: [...ok.amr], recoveryRemaining: ok.remaining };
    }),
  );

  router.post('/:uid/totp/enrol', async (ctx) =>
    secondFactorAttempt(ctx, 'enrol', 'totp', async (details, flow) => {
      assertThat(flow.pendingTotp, 'interaction.invalid_step');
      const parsed = codeBody.safeParse(body(ctx));
      if (!parsed.success) throw new KapijaError('factor.totp.invalid_code', 401);
      await totp.finish(flow.accountId, totp.openSecret(flow.pendingTotp, flow.accountId), parsed.data.code);
      return { amr: ['otp'], pendingTotp: undefined, ...(await firstCodes(details, flow.accountId)) };
    }),
  );

  router.post('/:uid/continue', async (ctx) => {
    const details = await enter(ctx, 'notice');
    const flow = flowOf(details);
    await advance(ctx, details, { ...flow, codes: undefined, recoveryRemaining: undefined });
  });

  /** After a recovery code was used (and only then), the citizen may replace the remaining codes. */
  router.post('/:uid/recovery/new', async (ctx) => {
    const details = await enter(ctx, 'notice');
    const flow = flowOf(details);
    if (flow.recoveryRemaining === undefined || flow.codes) throw new KapijaError('interaction.invalid_step', 400);
    const codes = await recovery.issue(flow.accountId);
    await saveFlow(details, { ...flow, recoveryRemaining: undefined, codes: box.seal(JSON.stringify(codes), `codes:${details.uid}`) });
    redirect(ctx, self(ctx, details));
  });

  // ---------------------------------------------------------------- WebAuthn (JSON, from static/webauthn.js)

  router.post('/:uid/webauthn/options', async (ctx) => {
    const purpose = (body(ctx) as { purpose?: unknown } | undefined)?.purpose;
    const details = purpose === 'passkey' ? await enter(ctx, 'identify') : purpose === 'register' ? await enterEnrolment(ctx) : await enter(ctx, 'second-factor');
    if (purpose === 'passkey') {
      const options = await webauthn.authenticationOptions();
      await saveFlow(details, getFlow(details), options.challenge);
      ctx.body = options;
      return;
    }
    const flow = flowOf(details);
    if (purpose === 'register') {
      const account = await accounts.findById(flow.accountId);
      assertThat(account, 'interaction.expired');
      const options = await webauthn.registrationOptions(account.id, account.username);
      await saveFlow(details, { ...flow, challenge: options.challenge });
      ctx.body = options;
      return;
    }
    const options = await webauthn.authenticationOptions(flow.accountId);
    await saveFlow(details, { ...flow, challenge: options.challenge });
    ctx.body = options;
  });

  router.post('/:uid/webauthn', async (ctx) =>
    secondFactorAttempt(ctx, 'second-factor', 'webauthn', async (details, flow) => {
      const challenge = flow.challenge;
      // Single use, whatever the outcome.
      await saveFlow(details, { ...flow, challenge: undefined });
      const parsed = webauthnBody.safeParse(body(ctx));
      if (!challenge || !parsed.success) throw new KapijaError('factor.webauthn.failed', 401);
      const ok = await webauthn.verify(challenge, parsed.data.response, flow.accountId);
      return { amr: [...ok.amr] };
    }),
  );

  router.post('/:uid/webauthn/register', async (ctx) =>
    secondFactorAttempt(ctx, 'enrol', 'webauthn', async (details, flow) => {
      const challenge = flow.challenge;
      await saveFlow(details, { ...flow, challenge: undefined });
      const parsed = webauthnBody.safeParse(body(ctx));
      if (!challenge || !parsed.success) throw new KapijaError('factor.webauthn.failed', 401);
      const credential = await webauthn.register(flow.accountId, challenge, parsed.data.response, parsed.data.name ?? 'Security key');
      const amr: Amr[] = [credential.assurance === 'hwk' ? 'hwk' : 'swk'];
      return { amr, pendingTotp: undefined, ...(await firstCodes(details, flow.accountId)) };
    }),
  );

  /** Passwordless: a discoverable passkey with user verification is both factors at once. */
  router.post('/:uid/passkey', async (ctx) => {
    const details = await enter(ctx, 'identify');
    const challenge = getPasskeyChallenge(details);
    await saveFlow(details, getFlow(details));
    const parsed = webauthnBody.safeParse(body(ctx));
    const keys = throttles.passkeyAttempt(parsed.success ? parsed.data.response : undefined, ctx.ip);
    const wait = await throttles.passkey.retryAfter(keys);
    if (wait > 0) throw throttled(wait);
    if (!challenge || !parsed.success) throw new KapijaError('factor.webauthn.failed', 401);
    let ok;
    try {
      ok = await webauthn.verify(challenge, parsed.data.response);
    } catch (err) {
      await events.emit('signin.failure', { clientId: clientIdOf(details), factor: 'passkey', reason: 'factor.webauthn.failed', ip: ctx.ip });
      await throttles.passkey.fail(keys);
      throw err;
    }
    await throttles.passkey.succeed(keys);
    const account = await accounts.findById(ok.accountId);
    if (!account || account.status !== 'active') throw new KapijaError('login.account_locked', 403);
    await advance(ctx, details, { step: 'second-factor', accountId: ok.accountId, amr: [...ok.amr] });
  });

  /** "I have verified my identity": checks again, and ends with unmet_authentication_requirements if it still falls short. */
  router.post('/:uid/identity', async (ctx) => {
    const details = await enter(ctx, 'identity');
    const flow = flowOf(details);
    const outcome = await identityOutcome(deps.identity, flow.accountId, levelFor(completeAmr(flow.amr)), await required(details));
    if (outcome.short) {
      await finishWith(ctx, { error: 'unmet_authentication_requirements', error_description: 'the identity has not been verified at the requested level of assurance' });
      return;
    }
    await advance(ctx, details, flow);
  });

  // ---------------------------------------------------------------- consent and abort

  router.post('/:uid/confirm', async (ctx) => {
    const details = await enter(ctx, 'consent');
    const raw = body(ctx) as { claims?: unknown } | undefined;
    const ticked = new Set((Array.isArray(raw?.claims) ? raw.claims : [raw?.claims]).filter((x): x is string => typeof x === 'string'));
    const { grantId, given } = await consent.confirm(ctx, details, ticked);
    await finishWith(ctx, { consent: { grantId } });
    // Never an empty entry in the ledger (the offer lists what the service receives, consent.ts).
    if (given.scopes.length || given.claims.length) await events.emit('consent.given', given);
  });

  router.post('/:uid/abort', async (ctx) => {
    await enter(ctx, 'identify', 'second-factor', 'enrol', 'reset-link', 'notice', 'identity', 'consent');
    await finishWith(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' });
  });

  return router;
}
