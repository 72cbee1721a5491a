/**
 * The registered factors, in the order the pages offer them: the one file that names each factor,
 * as Ory Kratos' `driver/registry_default.go` lists its strategies. The sign-in pages, the portal
 * and the console ask the registry (which factors an account has, which can still reach the level
 * a service needs, what a credential is called) and never a concrete factor.
 *
 * Adding a factor: a folder `src/factors/<id>/` whose `factor.ts` returns a {@link Factor}, one line
 * in {@link createFactorRegistry}'s list, its views and catalogue strings. A factor that identifies
 * the account and proves two factors at once (a smart card yielding `sc` + `pin`) declares
 * `step: 'first'` with `first.identify`: its route is `/interaction/:uid/<first.path ?? id + '/identify'>`,
 * and a proof whose amr complete two factors finishes the sign-in with no second step.
 */
import { KapijaError } from '../errors.js';
import { completeAmr, levelFor, rank, type AcrLevel, type Amr } from '../assurance/levels.js';
import type { AccountRepository } from '../store/accounts.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { BackupCodes, Factor } from './types.js';
import type { PasswordHasher } from './password/hasher.js';
import type { TotpFactor } from './totp/index.js';
import type { RecoveryFactor } from './recovery/index.js';
import type { WebAuthnFactor } from './webauthn/index.js';
import { createPasswordFactor } from './password/factor.js';
import { createTotpRegistration } from './totp/factor.js';
import { createRecoveryRegistration } from './recovery/factor.js';
import { createWebAuthnRegistration } from './webauthn/factor.js';

export type { Factor, FactorAttempt, FactorChallenge, FactorForm, FactorProof } from './types.js';
/** The username a sign-in form carries (the password factor's form), for the throttle and the form shown again. */
export { typedUsername } from './password/factor.js';

export interface FactorRegistry {
  /** Every factor, in registration order. */
  all(): readonly Factor[];
  get(id: string): Factor | undefined;
  /** The factor, or 404 request.not_found for an id nobody registered. */
  require(id: string): Factor;
  /** Factors that identify an account (the password form, passkeys, a smart card). */
  firstFactors(): readonly Factor[];
  /** Factors that can be enrolled. */
  enrollable(): readonly Factor[];
  /** Where backup codes come from after a first enrolment (recovery codes), if any factor issues them. */
  readonly backup: BackupCodes | undefined;
  /** The account's usable second factors, in registration order (recovery codes only while unused). */
  enrolled(accountId: string): Promise<Factor[]>;
  /** Whether the account has a second factor that may stand alone (what recovery codes need beside them). */
  hasSecondFactor(accountId: string): Promise<boolean>;
  /**
   * The second factors the account can prove now that would raise `amr` to `needed`: enrolled, and
   * those that may not stand alone only beside one that may.
   */
  offered(accountId: string, amr: readonly Amr[], needed: AcrLevel): Promise<Factor[]>;
  /**
   * Refuses (400 factor.recovery.not_alone) a factor that may not stand alone when the account has
   * no factor that may.
   */
  assertUsable(factor: Factor, accountId: string): Promise<void>;
  /** Whether a credential of this type counts among the account's second factors that stand alone. */
  standsAlone(type: string): boolean;
  /** Whether the portal and the console list a credential of this type as a second factor. */
  listed(type: string): boolean;
  /**
   * The factor a sign-in with these amr was finished with: a second factor that may stand alone
   * (the one that decided the level), else any other, in registration order; undefined when no
   * factor declares one of them.
   */
  factorOf(amr: readonly string[]): Factor | undefined;
  /** The catalogue key naming a credential's type ("Authenticator app"). */
  label(type: string): string;
  /** Every credential type the factors keep (an account deleted, an administrator's reset). */
  credentialTypes(): string[];
}

/** What the built-in factors need. */
export interface FactorDeps {
  accounts: AccountRepository;
  credentials: CredentialRepository;
  passwords: PasswordHasher;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  webauthn: WebAuthnFactor;
}

/** The built-in factors (password, authenticator app, security key or passkey, recovery codes), then `extra`. */
export function createFactorRegistry(deps: FactorDeps, extra: readonly Factor[] = []): FactorRegistry {
  return registryOf(
    [
      createPasswordFactor(deps),
      createTotpRegistration(deps.totp),
      createWebAuthnRegistration(deps.webauthn),
      createRecoveryRegistration(deps.recovery),
      ...extra,
    ],
    deps.credentials,
  );
}

/** A registry over `factors`, finding what an account has in `credentials` (a credential's type is its factor's id). */
export function registryOf(factors: readonly Factor[], credentials: Pick<CredentialRepository, 'enrolledTypes'>): FactorRegistry {
  const byId = new Map<string, Factor>();
  for (const f of factors) {
    if (byId.has(f.id)) throw new Error(`factor ${f.id} is registered twice`);
    if (!/^[a-z][a-z0-9-]{0,15}$/.test(f.id)) throw new Error(`factor id ${f.id} is not a path segment and credential type`);
    byId.set(f.id, f);
  }
  const isSecond = (f: Factor) => f.second !== undefined && f.step !== 'first';
  const standsAlone = (type: string) => {
    const f = byId.get(type);
    return f !== undefined && isSecond(f) && f.standsAlone;
  };
  const enrolledSecond = async (accountId: string) => {
    const types = await credentials.enrolledTypes(accountId);
    return factors.filter((f) => isSecond(f) && types.has(f.id));
  };
  const registry: FactorRegistry = {
    all: () => factors,
    get: (id) => byId.get(id),
    require(id) {
      const f = byId.get(id);
      if (!f) throw new KapijaError('request.not_found', 404);
      return f;
    },
    firstFactors: () => factors.filter((f) => f.first !== undefined && f.step !== 'second'),
    enrollable: () => factors.filter((f) => f.enrolment !== undefined),
    backup: factors.find((f) => f.backup)?.backup,
    async enrolled(accountId) {
      const enrolled = await enrolledSecond(accountId);
      const alone = enrolled.some((f) => f.standsAlone);
      return enrolled.filter((f) => f.standsAlone || alone);
    },
    async hasSecondFactor(accountId) {
      return (await enrolledSecond(accountId)).some((f) => f.standsAlone);
    },
    async offered(accountId, amr, needed) {
      const out: Factor[] = [];
      for (const f of await registry.enrolled(accountId)) {
        const adds = await f.second!.expectedAmr(accountId);
        if (rank(levelFor(completeAmr([...amr, ...adds]))) >= rank(needed)) out.push(f);
      }
      return out;
    },
    async assertUsable(factor, accountId) {
      if (!factor.standsAlone && !(await registry.hasSecondFactor(accountId))) throw new KapijaError('factor.recovery.not_alone', 400);
    },
    standsAlone,
    listed: (type) => byId.get(type)?.listed ?? false,
    factorOf(amr) {
      const yields = (f: Factor) => f.amr?.some((a) => amr.includes(a)) ?? false;
      return factors.find((f) => isSecond(f) && f.standsAlone && yields(f)) ?? factors.find(yields);
    },
    label: (type) => byId.get(type)?.labels.name ?? type,
    credentialTypes: () => factors.filter((f) => f.storesCredentials !== false).map((f) => f.id),
  };
  return registry;
}
