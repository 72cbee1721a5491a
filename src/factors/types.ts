/**
 * What every factor is, as Ory Kratos' `login.Strategy` and Logto's verification records are: the
 * sign-in steps it answers, the authentication methods (RFC 8176 amr) a success adds, how it is
 * proven (with a browser ceremony's challenge when it has one), how it is enrolled and how the
 * citizen's portal and the administrators' console describe it. Assurance is derived from the amr in
 * assurance/levels.ts; the sign-in pages (interactions/) know factors only through the registry
 * (registry.ts), never a concrete one.
 */
import type { Amr } from '../assurance/levels.js';
import type { Account } from '../store/accounts.js';

/** A factor's id: also its credential type in the store and its path segment on the sign-in pages. */
export type FactorId = string;

export interface FactorSuccess {
  readonly accountId: string;
  readonly amr: readonly Amr[];
}

/**
 * One attempt, as the sign-in pages hand it to a factor: the request body (not yet validated: the
 * factor parses it), the challenge of its browser ceremony (already taken out of the sign-in, so it
 * is used once whatever the outcome) and its pending enrolment (kept until the enrolment succeeds).
 */
export interface FactorAttempt {
  /** The account being signed in; undefined when the factor identifies it (a first factor). */
  readonly accountId?: string;
  readonly body: unknown;
  /** The challenge the factor's `challenge()` returned as state for this sign-in. */
  readonly challenge?: string;
  /** The state the factor's enrolment `begin()` returned for this sign-in. */
  readonly pending?: string;
  /**
   * The client certificate the browser presented (PEM), when an HTTP middleware in front of the
   * sign-in pages put one in `ctx.state.clientCertificate` (a smart card through a TLS-terminating
   * proxy); undefined otherwise.
   */
  readonly clientCertificate?: string;
  /** The sign-in (interaction uid) the attempt belongs to, for a proof bound to it (a hand-off between hosts). */
  readonly interaction?: string;
  /** The client's address, for the audit trail of what the attempt records (a proofing). */
  readonly ip?: string | null;
}

export interface FactorProof extends FactorSuccess {
  /** Recovery codes left, after one was used: the citizen is told (and offered new ones) before finishing. */
  readonly remaining?: number;
  /**
   * The account's row as the factor read it to make this proof (status included), when it read
   * one: the step that checks the account's status takes it rather than reading the row again.
   */
  readonly account?: Account;
}

/** A browser ceremony's start (WebAuthn options): JSON for the page, and the state to keep server-side. */
export interface FactorChallenge {
  readonly options: unknown;
  readonly state: string;
}

/** Catalogue keys (src/i18n/messages) of what the pages say about a factor. */
export interface FactorLabels {
  /** The kind of factor, in lists (portal, console, notices): "Authenticator app". */
  readonly name: string;
  /** The heading of its section on the second-factor page. */
  readonly heading: string;
}

/**
 * How the second-factor page offers the factor:
 * - `code`: a form posting `code` to `/interaction/:uid/<id>` (its label, hint and button as keys);
 * - `ceremony`: a browser ceremony (static/webauthn.js) fetching `/interaction/:uid/<id>/options`;
 * - `page`: a link to a page of its own (`?method=<id>`), the view named here.
 */
export type FactorForm =
  | { readonly kind: 'code'; readonly label: string; readonly hint?: string; readonly submit: string; readonly inputmode?: 'numeric' | 'text'; readonly maxlength?: number }
  | { readonly kind: 'ceremony' }
  | { readonly kind: 'page'; readonly view: string; readonly link: string };

/** The first-factor side of a factor that identifies the account by itself (passkey, smart card). */
export interface FirstFactor {
  /** Starts the ceremony on the sign-in page, before any account is known (optional). */
  challenge?(): Promise<FactorChallenge>;
  /**
   * Identifies the account and proves it. A proof whose amr complete two factors (something held and
   * something known, e.g. a device-bound key that verified its PIN) completes the sign-in alone.
   * @throws KapijaError with status 401 when the proof fails
   */
  identify(attempt: FactorAttempt): Promise<FactorProof>;
  /** The path of its route under `/interaction/:uid/` (`passkey`); `<id>/identify` when absent. */
  readonly path?: string;
  /**
   * A proof made on another host (the ID card's certificate host): the sign-in page offers a button
   * (its `labels.heading`) posting to `/interaction/:uid/<id>/start`, which sends the browser to the
   * URL `start` returns; the other host sends it back to the identify route with a GET, whose query
   * is the attempt's body. `origin` is that host's origin (the page's form-action allows it).
   */
  readonly redirect?: { readonly origin: string; start(interaction: string): Promise<string> };
}

/** The second-factor side: proving a factor the account already has. */
export interface SecondFactor {
  /**
   * The amr a success would add for this account, without proving anything: only factors that can
   * raise the sign-in to the level the service needs are offered.
   */
  expectedAmr(accountId: string): Promise<readonly Amr[]>;
  /** Starts a browser ceremony for the account (WebAuthn options). */
  challenge?(accountId: string): Promise<FactorChallenge>;
  /** @throws KapijaError with status 401 for a wrong, stale or replayed proof */
  verify(attempt: FactorAttempt & { readonly accountId: string }): Promise<FactorProof>;
  readonly form: FactorForm;
}

/** What a citizen enrols, during the sign-in (enrolment step) or on the portal. */
export interface FactorEnrolment {
  /** The path segment of its enrolment route under `/interaction/:uid/<id>/` (`enrol`, `register`). */
  readonly path: string;
  /**
   * The enrolment page's part for this factor: the state to keep in the sign-in (a pending secret)
   * and what the view shows. `state` is what an earlier call returned, to show the same again.
   */
  begin?(account: { id: string; username: string }, state: string | undefined): Promise<{ state: string; view: Record<string, unknown> }>;
  /** Starts a browser ceremony (WebAuthn registration options). */
  challenge?(account: { id: string; username: string }): Promise<FactorChallenge>;
  /** Activates the factor. @throws KapijaError with status 401 when the proof fails */
  finish(attempt: FactorAttempt & { readonly accountId: string }): Promise<FactorProof>;
  /** Its part of the enrolment page (views/interaction/enrol.eta), included when present. */
  readonly partial?: string;
}

/** Single-use codes that stand in for a lost factor, issued after a first enrolment. */
export interface BackupCodes {
  /** Issues a fresh set, replacing any earlier one; the codes to show once. */
  issue(accountId: string): Promise<string[]>;
  remaining(accountId: string): Promise<number>;
}

export interface Factor {
  readonly id: FactorId;
  /** The sign-in steps it answers. */
  readonly step: 'first' | 'second' | 'both';
  /**
   * Whether it may be an account's only second factor. Recovery codes may not: they stand in for a
   * lost factor, and are offered, accepted and kept only while the account has one that may.
   */
  readonly standsAlone: boolean;
  /** Whether it counts among an account's second factors in the portal and the console (recovery codes are counted apart). */
  readonly listed: boolean;
  /**
   * Whether it keeps credentials of its own in the store (type = its id), removed when the account is
   * deleted or an administrator resets its factors. Default true; the password lives on the account.
   */
  readonly storesCredentials?: boolean;
  readonly labels: FactorLabels;
  /**
   * The amr values (RFC 8176) that tell a success of this factor apart (`otp`, not the `user` and
   * `pin` other factors add too), so that a finished sign-in can be named by its factor (the
   * metrics' `factor` label); a factor that leaves it out is named `other` there.
   */
  readonly amr?: readonly Amr[];
  readonly first?: FirstFactor;
  readonly second?: SecondFactor;
  readonly enrolment?: FactorEnrolment;
  readonly backup?: BackupCodes;
}
