/**
 * Mandates: a citizen (the representative) acting for another (the principal) with their own
 * factors, never with the principal's.
 *
 * - `grant`: the principal authorises a representative (found by username) voluntarily. The
 *   representative must be another active account with a verified identity: a mandate names a
 *   person, not a username anyone could have registered.
 * - `record`: a registrar records legal representation (guardian, parent) from an official
 *   decision, whose reference is kept; never for themselves, as principal or representative.
 * - `withdraw`: a voluntary mandate by its principal or its representative; legal representation by
 *   a registrar (the decision, not the principal, ends it).
 * - `active`: the mandate in force between two accounts for a service at a moment, if any. A
 *   mandate is used only while the principal's account is active and the representative's
 *   identity is verified: a revoked identity suspends every mandate the representative holds.
 * - `recordUse`: a sign-in or a token exchange made under a mandate.
 *
 * Each grant, withdrawal and use is appended to both citizens' ledgers and to the admin audit
 * trail in one transaction with the change (ids, service, purposes; no personal data).
 */
import { KapijaError } from '../errors.js';
import { ledgerChain } from '../account/ledger.js';
import { normaliseUsername } from '../store/accounts.js';
import type { Repositories, Transaction } from '../store/index.js';
import { MANDATE_BASES, type Mandate, type MandateBasis } from '../store/mandates.js';

export { MANDATE_BASES, type Mandate, type MandateBasis } from '../store/mandates.js';

/** What a mandate may cover; a service shows its purpose in its own words, Kapija keeps these codes. */
export const MANDATE_PURPOSES = ['general', 'health', 'tax', 'social', 'education', 'property'] as const;
export type MandatePurpose = (typeof MANDATE_PURPOSES)[number];

/** The longest a mandate may run (ten years), and how long a voluntary one runs when left open. */
const MAX_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,200}$/;

export interface MandateActor {
  /** The account acting. */
  actor: string;
  ip?: string | null | undefined;
}

export interface MandateTerms {
  /** Client ids, or null for every service that accepts representation. */
  services: readonly string[] | null;
  purposes: readonly string[];
  /** ms; now when left out. */
  validFrom?: number | undefined;
  /** ms; open-ended (up to the maximum) when left out. */
  validUntil?: number | null | undefined;
}

export interface MandateServiceDeps {
  repos: Pick<Repositories, 'mandates' | 'accounts' | 'identities' | 'registrarRoles' | 'audit' | 'atomically'>;
  /** Whether a client accepts representation (client metadata `kapija_accepts_representation`). */
  acceptsRepresentation?: (clientId: string) => Promise<boolean>;
  now?: () => number;
}

export type MandateService = ReturnType<typeof createMandateService>;

/** Whether a mandate is in force at `at` (ms). */
export function inForce(m: Mandate, at: number): boolean {
  return !m.withdrawnAt && m.validFrom.getTime() <= at && (!m.validUntil || m.validUntil.getTime() > at);
}

/** Whether a mandate covers a service. */
export const covers = (m: Mandate, clientId: string): boolean => m.services === null || m.services.includes(clientId);

/** What the ledgers and the audit trail say about a mandate (no personal data). */
const summary = (m: Mandate) => ({
  mandate_id: m.id,
  principal: m.principalId,
  representative: m.representativeId,
  basis: m.basis,
  services: m.services ?? 'all',
  purposes: [...m.purposes],
  valid_until: m.validUntil?.getTime() ?? null,
});

const mandateInvalid = (field: string) => new KapijaError('mandate.invalid', 400, { details: { field } });

/** The terms of a new mandate, checked at `at` (ms): dates, purposes, services; the field at fault otherwise. */
function checkedTerms(terms: MandateTerms, at: number) {
  const invalid = mandateInvalid;
  const validFrom = terms.validFrom ?? at;
  const validUntil = terms.validUntil ?? validFrom + MAX_VALIDITY_MS;
  if (!Number.isSafeInteger(validFrom)) throw invalid('valid_from');
  if (!Number.isSafeInteger(validUntil) || validUntil <= validFrom || validUntil <= at || validUntil - validFrom > MAX_VALIDITY_MS) throw invalid('valid_until');
  const purposes = [...new Set(terms.purposes)];
  if (!purposes.length || purposes.some((p) => !(MANDATE_PURPOSES as readonly string[]).includes(p))) throw invalid('purposes');
  let services: string[] | null = null;
  if (terms.services !== null) {
    services = [...new Set(terms.services)];
    if (!services.length || services.length > 50 || services.some((s) => !CLIENT_ID.test(s))) throw invalid('services');
  }
  return { validFrom, validUntil, purposes, services };
}

export function createMandateService(deps: MandateServiceDeps) {
  const now = deps.now ?? Date.now;
  const { mandates, accounts, identities, registrarRoles, audit, atomically } = deps.repos;

  const invalid = mandateInvalid;
  const checkTerms = (terms: MandateTerms) => checkedTerms(terms, now());

  /** The three entries of a grant, withdrawal or use: both ledgers and the admin audit trail. */
  const appendAll = async (trx: Transaction, m: Mandate, by: MandateActor, action: string, extra: Record<string, unknown> = {}, clientId: string | null = null) => {
    const details = { ...summary(m), ...extra };
    await audit.append({ chain: 'admin', actor: by.actor, action: `mandate.${action}`, subjectAccountId: m.principalId, clientId, ip: by.ip ?? null, details }, trx);
    await audit.append({ chain: ledgerChain(m.principalId), actor: by.actor, action: `ledger.mandate_${action}`, subjectAccountId: m.principalId, clientId, details: { ...details, role: 'principal' } }, trx);
    await audit.append({ chain: ledgerChain(m.representativeId), actor: by.actor, action: `ledger.mandate_${action}`, subjectAccountId: m.representativeId, clientId, details: { ...details, role: 'representative' } }, trx);
  };

  const activeAccount = async (id: string) => {
    const a = await accounts.findById(id);
    return a && a.status === 'active' ? a : undefined;
  };

  const verified = async (id: string) => {
    const identity = await identities.find(id);
    return Boolean(identity && identity.level !== 'none');
  };

  /** In force for the service, the principal active, the representative's identity still verified (a condition of the mandate). */
  const usable = async (m: Mandate, clientId: string, at: number) =>
    inForce(m, at) && covers(m, clientId) && Boolean(await activeAccount(m.principalId)) && (await verified(m.representativeId));

  const store = (m: Omit<Parameters<typeof mandates.create>[0], 'createdBy'>, by: MandateActor) =>
    atomically(async (trx) => {
      const created = await mandates.create({ ...m, createdBy: by.actor }, trx);
      await appendAll(trx, created, by, 'granted');
      return created;
    });

  return {
    /** The principal grants a voluntary mandate to the account with this username. */
    async grant(principalId: string, representativeUsername: string, terms: MandateTerms, by: MandateActor = { actor: principalId }): Promise<Mandate> {
      if (by.actor !== principalId) throw new KapijaError('mandate.forbidden', 403);
      const checked = checkTerms(terms);
      const username = normaliseUsername(String(representativeUsername ?? ''));
      const representative = username ? await accounts.findByUsername(username) : undefined;
      // One answer for an unknown, inactive or unverified account: the form does not tell which usernames exist.
      if (!representative || representative.status !== 'active' || !(await verified(representative.id))) throw new KapijaError('mandate.representative_invalid', 400);
      if (representative.id === principalId) throw new KapijaError('mandate.own_account', 400);
      if (!(await activeAccount(principalId))) throw new KapijaError('mandate.forbidden', 403);
      return store({ principalId, representativeId: representative.id, ...checked, basis: 'voluntary', decisionRef: null }, by);
    },

    /** A registrar records legal representation (guardian or parent) from an official decision. */
    async record(input: { principalId: string; representativeId: string; basis: Exclude<MandateBasis, 'voluntary'>; decisionRef: string } & MandateTerms, by: MandateActor): Promise<Mandate> {
      if (!(await registrarRoles.isRegistrar(by.actor))) throw new KapijaError('identity.registrar_required', 403);
      if (by.actor === input.principalId || by.actor === input.representativeId) throw new KapijaError('mandate.own_account', 403);
      if (input.basis !== 'guardian' && input.basis !== 'parent') throw invalid('basis');
      const decisionRef = String(input.decisionRef ?? '').trim();
      if (!decisionRef || decisionRef.length > 200) throw invalid('decision_ref');
      if (input.principalId === input.representativeId) throw new KapijaError('mandate.own_account', 400);
      const checked = checkTerms(input);
      if (!(await activeAccount(input.principalId))) throw new KapijaError('mandate.not_found', 404);
      const representative = await activeAccount(input.representativeId);
      if (!representative || !(await verified(representative.id))) throw new KapijaError('mandate.representative_invalid', 400);
      return store({ principalId: input.principalId, representativeId: input.representativeId, ...checked, basis: input.basis, decisionRef }, by);
    },

    /**
     * Withdraws a mandate: a voluntary one by its principal or representative, legal representation
     * by a registrar. Anyone else is told it does not exist.
     */
    async withdraw(mandateId: string, by: MandateActor): Promise<Mandate> {
      const m = typeof mandateId === 'string' && mandateId.length <= 36 ? await mandates.find(mandateId) : undefined;
      if (!m) throw new KapijaError('mandate.not_found', 404);
      const party = by.actor === m.principalId || by.actor === m.representativeId;
      if (m.basis === 'voluntary' ? !party : party || !(await registrarRoles.isRegistrar(by.actor))) throw new KapijaError('mandate.not_found', 404);
      if (m.withdrawnAt) throw new KapijaError('mandate.not_found', 404);
      return atomically(async (trx) => {
        if (!(await mandates.withdraw(m.id, by.actor, trx))) throw new KapijaError('mandate.not_found', 404);
        const withdrawn = (await mandates.find(m.id, trx))!;
        await appendAll(trx, withdrawn, by, 'withdrawn');
        return withdrawn;
      });
    },

    /** Every mandate the account granted or that was recorded for it, newest first. */
    listForPrincipal: (principalId: string) => mandates.listByPrincipal(principalId),
    /** Every mandate the account holds, newest first. */
    listForRepresentative: (representativeId: string) => mandates.listByRepresentative(representativeId),
    find: (id: string) => mandates.find(id),

    /** The mandate in force letting `representativeId` act for `principalId` towards `clientId` at `at`, if any. */
    async active(principalId: string, representativeId: string, clientId: string, at: number = now()): Promise<Mandate | undefined> {
      const held = await mandates.listByRepresentative(representativeId);
      const m = held.find((x) => x.principalId === principalId && inForce(x, at) && covers(x, clientId));
      return m && (await usable(m, clientId, at)) ? m : undefined;
    },

    /** The mandates in force a representative may use towards `clientId` (principals still active). */
    async usableFor(representativeId: string, clientId: string, at: number = now()): Promise<Mandate[]> {
      if (deps.acceptsRepresentation && !(await deps.acceptsRepresentation(clientId))) return [];
      if (!(await verified(representativeId))) return [];
      const held = (await mandates.listByRepresentative(representativeId)).filter((m) => inForce(m, at) && covers(m, clientId));
      const out: Mandate[] = [];
      const seen = new Set<string>();
      for (const m of held) {
        if (seen.has(m.principalId) || !(await activeAccount(m.principalId))) continue;
        seen.add(m.principalId);
        out.push(m);
      }
      return out;
    },

    /** Which of these grants (of a representative) were made under a mandate: they hold the principal's consent, not theirs. */
    grantsUnderMandates: (grantIds: readonly string[]) => mandates.boundGrants(grantIds),

    /** Records that a grant of the representative was made under a mandate; false when the sign-in (`interactionUid`) already bound one. */
    bindGrant: (grantId: string, m: Mandate, interactionUid?: string) => mandates.bindGrant(grantId, m.id, interactionUid),

    /**
     * The mandate a grant was made under, when the grant acts for someone: `{ mandate }` while it is
     * in force for `clientId` (and the principal active), `{ ended }` once withdrawn or expired;
     * undefined for a grant of the citizen's own.
     */
    async representationOf(grantId: string, clientId: string, at: number = now()): Promise<{ mandate: Mandate } | { ended: Mandate } | undefined> {
      const m = await mandates.mandateOfGrant(grantId);
      if (!m) return undefined;
      return (await usable(m, clientId, at)) ? { mandate: m } : { ended: m };
    },

    /** Records a use of a mandate (a sign-in or a token exchange) in both ledgers and the audit trail. */
    async recordUse(m: Mandate, clientId: string, how: 'signin' | 'token_exchange', by: MandateActor = { actor: m.representativeId }): Promise<void> {
      await atomically((trx) => appendAll(trx, m, by, 'used', { how }, clientId));
    },

    /** Withdraws every mandate of a deleted account (as principal or representative), recorded like any withdrawal. */
    async forget(accountId: string): Promise<void> {
      const ended = await mandates.withdrawAllOf(accountId, 'system');
      for (const m of ended) await atomically((trx) => appendAll(trx, { ...m, withdrawnAt: new Date(now()), withdrawnBy: 'system' }, { actor: 'system' }, 'withdrawn'));
    },
  };
}

export const isMandateBasis = (v: unknown): v is MandateBasis => typeof v === 'string' && (MANDATE_BASES as readonly string[]).includes(v);
