/**
 * What every interaction route shares: loading the interaction (and refusing a request that does
 * not belong to its step), answering with a redirect or JSON, and `advance()`, the one place that
 * decides the next step (flow.ts nextStep) and hands the login to the engine once the factors
 * reach the level the service needs. The step pages (identify, second factor, enrolment, notices,
 * consent) each add their routes with this kit.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { KapijaError, assertThat } from '../errors.js';
import type { Renderer } from '../http/render.js';
import { applyUiLocales } from '../http/middleware.js';
import { allowFormActionTo } from '../http/headers.js';
import type { Translate, Locale } from '../i18n/index.js';
import { serviceName } from '../i18n/service-name.js';
import type { AccountRepository } from '../store/accounts.js';
import type { ConsentRefusalRepository } from '../store/consent-refusals.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { SignInThrottles } from '../security/sign-in-throttles.js';
import { randomToken, type SecretBox } from '../security/crypto.js';
import type { EventBus } from '../events.js';
import { identityOutcome, type IdentityLevelSource } from '../identity/step.js';
import { REMEMBERED_BROWSER, acrToAssert, completeAmr, levelFor, rank, type AcrLevel } from '../assurance/levels.js';
import { standsInForSecondFactor, type TrustedBrowsers } from './trusted-browser.js';
import type { MandateService } from '../mandates/service.js';
import { representation } from './represent.js';
import { essentialAcrs, getFlow, levelRequired, nextStep, saveFlow, stepOf, type Details, type Flow, type Step } from './flow.js';

export interface InteractionDeps {
  provider: Provider;
  accounts: AccountRepository;
  /** The registered factors: the pages know them only through it. */
  factors: FactorRegistry;
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
  /** Mandates: the representation step (represent.ts); absent, nobody is offered to act for someone. */
  mandates?: MandateService;
  factorReset: {
    /** Uses the link this browser followed, when it was sent to `accountId`. */
    useLink(token: string, accountId: string): Promise<boolean>;
    /** Mails a new link when no live one is out. */
    ensureLink(accountId: string): Promise<void>;
  };
  /** Browsers remembered after a two-factor sign-in (trusted-browser.ts); without it none is. */
  trustedBrowsers?: TrustedBrowsers;
}

/**
 * Random cookie naming this browser, for new-device notices (it authenticates nothing). It lives
 * DEVICE_COOKIE_DAYS and is renewed at each sign-in, so a browser unused that long is new again.
 */
export const DEVICE_COOKIE = 'kapija.device';
export const DEVICE_COOKIE_DAYS = 90;

/** Renders the page of the step a flow is in (after a failed attempt, with its error). */
export type StepRenderer = (ctx: Context, details: Details, flow: Flow, error?: string) => Promise<void>;

export type InteractionKit = ReturnType<typeof createInteractionKit>;

/** The interaction of this request, refused as expired when it is gone or is not the one in the path. */
async function loadInteraction(provider: Provider, defaultLocale: Locale, ctx: Context): Promise<Details> {
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
}

/**
 * The browser's random device cookie (set on its first sign-in, renewed on each), as a keyed hash:
 * lets Kapija tell the citizen about sign-ins from a new device without storing the cookie itself.
 */
function deviceOf(ctx: Context, box: SecretBox): string {
  let device = ctx.cookies.get(DEVICE_COOKIE);
  if (!device || !/^[A-Za-z0-9_-]{43}$/.test(device)) device = randomToken(32);
  ctx.cookies.set(DEVICE_COOKIE, device, { httpOnly: true, sameSite: 'lax', secure: ctx.secure, maxAge: DEVICE_COOKIE_DAYS * 24 * 3600 * 1000, signed: false, overwrite: true });
  return box.mac('device', device);
}

/**
 * Hands a step's result to the engine; the URL to go on to. It is merged with what earlier
 * interactions of the same authorization submitted (the engine keeps it server-side): a consent
 * that follows a sign-in made in this authorization carries that sign-in's `login`, so a login the
 * service asked for (`prompt=login`, `max_age`) stays answered and the engine does not ask for it
 * again after the consent. An error result is never merged (the engine's rule).
 *
 * What the engine's `interactionResult` does, on the interaction this request loaded instead of a
 * second read of it: a save that loses the race with the resume of a concurrent request leaves the
 * finished interaction finished (store/oidc-payloads.ts keeps it as a tombstone), and the browser
 * then gets the engine's "interaction expired" at the resume.
 */
async function submitResult(details: Details, result: Parameters<Provider['interactionResult']>[2]): Promise<string> {
  const interaction = details as unknown as { result: unknown; lastSubmission?: Record<string, unknown> };
  interaction.result = 'error' in result ? result : { ...interaction.lastSubmission, ...result };
  await details.persist();
  return details.returnTo;
}

/**
 * Whether the interaction was finished already (a form submitted again before the browser went
 * on): the engine's keys are in its result (the flow lives there too, under `kapija`).
 */
function finished(details: Details): boolean {
  const result = details.result as Record<string, unknown> | undefined;
  return Boolean(result && ('login' in result || 'consent' in result || 'error' in result));
}

export function createInteractionKit(deps: InteractionDeps) {
  const { provider, accounts, factors, box, events } = deps;
  const stepPages = new Map<Step, StepRenderer>();

  const t = (ctx: Context) => ctx.state.t as Translate;
  const body = (ctx: Context) => (ctx.request as { body?: unknown }).body;
  const wantsJson = (ctx: Context) => ctx.is('application/json') === 'application/json' || ctx.accepts('html', 'json') === 'json';
  const clientIdOf = (details: Details) => String(details.params.client_id);

  const load = (ctx: Context) => loadInteraction(provider, deps.defaultLocale, ctx);

  const client = async (details: Details) => provider.Client.find(clientIdOf(details));
  const clientName = async (ctx: Context, details: Details) => {
    const c = await client(details);
    return serviceName((c?.metadata() ?? {}) as Record<string, unknown>, ctx.state.locale as Locale, c?.clientName ?? clientIdOf(details));
  };
  const required = async (details: Details): Promise<AcrLevel> => levelRequired(details, (await client(details))?.metadata()['kapija_min_acr']);

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

  const knownDevice = (ctx: Context) => deviceOf(ctx, box);

  const finishWith = async (ctx: Context, details: Details, result: Parameters<Provider['interactionResult']>[2]) => redirect(ctx, await submitResult(details, result));

  const flowOf = (details: Details): Flow => {
    const flow = getFlow(details);
    assertThat(flow, 'interaction.invalid_step');
    return flow;
  };

  /** Loads the interaction and refuses the request unless it is in one of `steps` and not yet finished. */
  const enter = async (ctx: Context, ...steps: Step[]): Promise<Details> => {
    const details = await load(ctx);
    const step = stepOf(details);
    if (!step || !steps.includes(step) || finished(details)) throw new KapijaError('interaction.invalid_step', 400);
    return details;
  };

  /** An administrator removed the factors and this sign-in did not come through the mailed link. */
  const resetPending = async (flow: Flow) => !flow.resetLinkUsed && (await accounts.factorsResetPending(flow.accountId));

  /**
   * Completes the sign-in when the methods proven reach the required level with two factors;
   * otherwise keeps the citizen in the flow, at the step nextStep() names. `known.hasSecondFactor`:
   * whether the account has a second factor that stands alone, when the caller read it in this
   * request (it is then not read again); otherwise it is read at most once, when it decides.
   */
  const advance = async (ctx: Context, details: Details, proven: Flow, known: { hasSecondFactor?: boolean } = {}) => {
    let enrolled: Promise<boolean> | undefined = known.hasSecondFactor === undefined ? undefined : Promise.resolve(known.hasSecondFactor);
    const hasSecondFactor = () => (enrolled ??= factors.hasSecondFactor(proven.accountId));
    const needed = await required(details);
    const remembered = deps.trustedBrowsers && (await standsInForSecondFactor(ctx, proven, needed, {
      browsers: deps.trustedBrowsers,
      params: details.params,
      firstParty: async () => (await client(details))?.metadata()['kapija_first_party'] === true,
      hasSecondFactor: () => hasSecondFactor(),
      factorsResetPending: (accountId) => accounts.factorsResetPending(accountId),
    }));
    const flow: Flow = remembered ? { ...proven, amr: [...proven.amr, REMEMBERED_BROWSER] } : proven;
    const amr = completeAmr(flow.amr);
    const reached = levelFor(amr);
    const twoFactors = amr.includes('mfa') || !deps.requireSecondFactor;
    const satisfied = twoFactors && rank(reached) >= rank(needed);
    // nextStep asks about the account's factors only when the flow is not yet satisfied, and about
    // an administrator's reset only for an account without any: read each only when it decides.
    const hasFactor = !satisfied && (await hasSecondFactor());
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
      const represent = deps.mandates ? await representation(kit, deps.mandates, details, flow) : undefined;
      if (represent === 'ask') {
        await saveFlow(details, { ...flow, amr, step: 'represent' });
        return redirect(ctx, self(ctx, details));
      }
      const acr = acrToAssert(outcome.reached, essentialAcrs(details));
      const deviceId = knownDevice(ctx);
      // Remembered only after a second factor was proven in this sign-in, never on a remembered one.
      if (flow.rememberBrowser && deps.trustedBrowsers && !amr.includes(REMEMBERED_BROWSER) && amr.includes('mfa')) {
        await deps.trustedBrowsers.remember(ctx, flow.accountId);
      }
      // `ts`: when the factors were proven. The engine applies a login again when a later step's
      // result carries it (finishWith merges), and auth_time must stay the time of this sign-in.
      await finishWith(ctx, details, { login: { accountId: flow.accountId, amr, acr, remember: true, ts: Math.floor(Date.now() / 1000) }, ...(represent ? { consent: { grantId: represent.grantId } } : {}) });
      await events.emit('signin.success', { deviceId, accountId: flow.accountId, clientId: clientIdOf(details), acr, amr, ip: ctx.ip, userAgent: ctx.get('user-agent').slice(0, 300) });
      return;
    }
    await saveFlow(details, { ...flow, amr, step });
    return redirect(ctx, self(ctx, details));
  };

  /** The page of the step the flow is in; each step's module registers its own. */
  const renderStep: StepRenderer = async (ctx, details, flow, error) => {
    const page = stepPages.get(flow.step);
    if (!page) throw new KapijaError('interaction.invalid_step', 400);
    return page(ctx, details, flow, error);
  };

  const throttled = (seconds: number) => new KapijaError('login.rate_limited', 429, { details: { retryAfter: seconds } });

  const kit = { deps, clientIdOf };
  return {
    deps,
    t,
    body,
    wantsJson,
    clientIdOf,
    load,
    clientName,
    required,
    redirect,
    self,
    finishWith,
    flowOf,
    enter,
    resetPending,
    advance,
    renderStep,
    throttled,
    /** Registers the page of a step (what GET /interaction/:uid shows in it). */
    stepPage(step: Step, page: StepRenderer) {
      stepPages.set(step, page);
    },
  };
}

/** A module of interaction routes: adds its routes (and step pages) to the router. */
export type InteractionRoutes = (router: Router, kit: InteractionKit) => void;
