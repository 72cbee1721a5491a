/**
 * Sign-in progress, kept inside oidc-provider's Interaction (as Logto keeps its experience in the
 * interaction) so that it is persisted, expires with it, and is never trusted from the browser.
 * `login` is resolved only once the factors are complete (panva/node-oidc-provider#661).
 */
import type Provider from 'oidc-provider';
import type { Amr, AcrLevel } from '../assurance/levels.js';
import { requiredLevel } from '../assurance/levels.js';

/**
 * Cookie holding the re-enrolment link this browser followed (set by `/enrol-factor`, used up by
 * the next password step of the same account).
 */
export const REENROL_COOKIE = 'kapija.reenrol';

export type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * Where a sign-in stands. Every route of the interaction belongs to one or more steps and is
 * refused in any other, so the browser cannot reach a step (enrolment above all) out of order.
 * - `identify`: nobody is known yet (password or passkey);
 * - `second-factor`: the account is known and proves a factor it already has (also on step-up);
 * - `enrol`: the account had no second factor when the password step ended and enrols its first;
 * - `reset-link`: an administrator removed the factors; re-enrolment waits for the mailed link;
 * - `notice`: the factors are complete, a notice (recovery codes, codes left) is read first;
 * - `identity`: the factors are complete but the citizen's verified identity is below the level the
 *   service needs: a page explains how to verify it (identity/step.ts);
 * - `represent`: the factors are complete, the citizen holds mandates covering a service that
 *   accepts representation, and chooses for whom they act (represent.ts);
 * - `consent`: the engine asks for consent.
 */
export type Step = 'identify' | 'second-factor' | 'enrol' | 'reset-link' | 'notice' | 'identity' | 'represent' | 'consent';

/** What decides the next step once a step ends. */
export interface StepFacts {
  /** The methods proven reach the level the service needs (with two factors where required). */
  satisfied: boolean;
  /** A notice waits to be read before finishing (recovery codes shown once, codes left). */
  notice: boolean;
  /** The account has a second factor of its own that may stand alone (registry.hasSecondFactor). */
  hasSecondFactor: boolean;
  /** An existing session is being raised to a higher level. */
  stepUp: boolean;
  /** An administrator reset the account's factors and the mailed link has not been followed. */
  resetPending: boolean;
}

/**
 * The step after one ends, or `done` when the login can be handed to the engine. Enrolment is
 * reachable only for an account without any second factor, outside step-up, and after an
 * administrator's reset only through the mailed link.
 */
export function nextStep(f: StepFacts): Exclude<Step, 'identify' | 'consent'> | 'done' {
  if (f.satisfied) return f.notice ? 'notice' : 'done';
  if (f.hasSecondFactor || f.stepUp) return 'second-factor';
  return f.resetPending ? 'reset-link' : 'enrol';
}

export interface Flow {
  /** The step the sign-in is in; set only by the server, from nextStep(). */
  step: Exclude<Step, 'identify' | 'consent'>;
  /** The account the first factor (or the existing session, on step-up) identified. */
  accountId: string;
  /** Methods proven for this sign-in. */
  amr: Amr[];
  /** True when an existing session is being raised to a higher level. */
  stepUp?: boolean;
  /** Enrolments begun on the enrolment page, by factor id (a TOTP key, sealed); dropped once one succeeds. */
  pending?: Record<string, string>;
  /** Outstanding ceremony challenges, by factor id; each deleted on every attempt of its factor. */
  challenges?: Record<string, string>;
  /** Recovery codes to show once, sealed. */
  codes?: string;
  /** Set after a recovery code was used: how many remain. */
  recoveryRemaining?: number;
  /** The citizen asked, on the second-factor page, to have this browser remembered (trusted-browser.ts). */
  rememberBrowser?: boolean;
  /** For whom the citizen acts at this service: `self` or a mandate id, checked again on use (represent.ts). */
  represent?: string;
  /** This browser followed the mailed re-enrolment link (used up at the password step) after an administrator's reset. */
  resetLinkUsed?: boolean;
}

/** A first factor's ceremony started on the sign-in page, before any account is known (a passkey). */
export interface FirstChallenge {
  factor: string;
  state: string;
}

interface ResultWithFlow {
  kapija?: Flow;
  kapijaFirstChallenge?: FirstChallenge;
}

export function getFlow(details: Details): Flow | undefined {
  return (details.result as ResultWithFlow | undefined)?.kapija;
}

export function getFirstChallenge(details: Details): FirstChallenge | undefined {
  return (details.result as ResultWithFlow | undefined)?.kapijaFirstChallenge;
}

/**
 * The step this interaction is in, from the engine's prompt and the flow kept server-side. A flow
 * without a step (started before steps were recorded) is in none, so every route refuses it.
 */
export function stepOf(details: Details): Step | undefined {
  if (details.prompt.name === 'consent') return 'consent';
  if (details.prompt.name !== 'login') return undefined;
  const flow = getFlow(details);
  if (!flow) return isStepUp(details) ? 'second-factor' : 'identify';
  return flow.step;
}

/**
 * Persists the flow (and an optional first factor's challenge) into the interaction, keeping its
 * expiry. Without `firstChallenge` any earlier one is deleted: it is used once.
 */
export async function saveFlow(details: Details, flow: Flow | undefined, firstChallenge?: FirstChallenge): Promise<void> {
  const result = { ...(details.result as ResultWithFlow | undefined) } as ResultWithFlow & Record<string, unknown>;
  if (flow) result.kapija = flow;
  else delete result.kapija;
  if (firstChallenge) result.kapijaFirstChallenge = firstChallenge;
  else delete result.kapijaFirstChallenge;
  (details as unknown as { result: unknown }).result = result;
  await details.persist();
}

/** Essential acr values asked through the `claims` parameter (OpenID Connect Core §5.5.1.1). */
export function essentialAcrs(details: Details): string[] | undefined {
  const raw = details.params.claims;
  if (typeof raw !== 'string') return undefined;
  try {
    const acr = (JSON.parse(raw) as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } }).id_token?.acr;
    if (!acr?.essential) return undefined;
    const values = Array.isArray(acr.values) ? acr.values : acr.value !== undefined ? [acr.value] : [];
    return values.filter((v): v is string => typeof v === 'string');
  } catch {
    return undefined;
  }
}

export function levelRequired(details: Details, clientMinimum: unknown): AcrLevel {
  return requiredLevel({ acrValues: details.params.acr_values, clientMinimum, essential: essentialAcrs(details) });
}

/** True when the engine asks to log in only because the session's level is too low. */
export function isStepUp(details: Details): boolean {
  const reasons = details.prompt.reasons;
  return Boolean(details.session?.accountId) && reasons.length > 0 && reasons.every((r) => r === 'kapija_acr');
}

/** The claims the request's `claims` parameter names (for the ID token or userinfo). */
export function requestedClaims(details: Details): Set<string> {
  const raw = details.params.claims;
  const out = new Set<string>();
  if (typeof raw !== 'string') return out;
  try {
    const parsed = JSON.parse(raw) as Record<string, Record<string, unknown> | undefined>;
    for (const target of ['id_token', 'userinfo']) for (const claim of Object.keys(parsed[target] ?? {})) if (claim !== 'acr') out.add(claim);
  } catch {
    // a malformed claims parameter is refused by the engine before any consent page
  }
  return out;
}

/** Claims the client marked essential in the `claims` parameter (id_token or userinfo). */
export function essentialClaims(details: Details): Set<string> {
  const raw = details.params.claims;
  const out = new Set<string>();
  if (typeof raw !== 'string') return out;
  try {
    const parsed = JSON.parse(raw) as Record<string, Record<string, { essential?: boolean } | null> | undefined>;
    for (const target of ['id_token', 'userinfo']) {
      for (const [claim, spec] of Object.entries(parsed[target] ?? {})) if (spec?.essential === true && claim !== 'acr') out.add(claim);
    }
  } catch {
    // a malformed claims parameter is refused by the engine before any consent page
  }
  return out;
}
