/**
 * The ID card as a registered first factor (`certificate`): it identifies the citizen and proves
 * possession of the card and knowledge of its PIN in one step (amr `sc` + `pin`, high), so the
 * sign-in needs no second factor.
 *
 * The certificate is asked for on a host of its own (CERT_SIGNIN_URL), so the proof is made there
 * and comes back through the hand-off (handoff.ts): `first.redirect.start` makes the ticket and
 * names the certificate host's URL; `first.identify` takes the return token (the body's `return`)
 * for this interaction only and turns the outcome into a sign-in or a refusal.
 *
 * The account: the one whose verified identity has the certificate's JMBG; otherwise a new account
 * for the citizen (a random user name, no password, the names from the certificate) proofed at high
 * with the certificate as evidence. An identity already in force is never re-proofed (only one
 * below high is raised), and a verified identity is never bound to another JMBG: the lookup is by
 * JMBG alone. An account the citizen made online without a verified identity is not joined to the
 * card by a sign-in (that would let whoever last used the browser own the card's identity): the
 * citizen links the card on the portal after a fresh two-factor sign-in (link.ts).
 */
import { randomBytes } from 'node:crypto';
import { KapijaError } from '../../errors.js';
import { cyrillicToLatin, hasCyrillic, latinToCyrillic } from '../../i18n/transliterate.js';
import type { AccountRepository } from '../../store/accounts.js';
import type { ProofingInput, ProofingActor } from '../../identity/service.js';
import type { IdentityLevel } from '../../identity/levels.js';
import type { Factor } from '../types.js';
import { CERTIFICATE_HOST_PATH, type CertificateHandoff, type CertificateOutcome } from './handoff.js';

/** What the factor needs of identity proofing (identity/service.ts). */
export interface CertificateProofing {
  findAccountByVerifiedJmbg(jmbg: string): Promise<string | undefined>;
  find(accountId: string): Promise<{ level: IdentityLevel } | undefined>;
  recordProofing(accountId: string, input: ProofingInput, by: ProofingActor): Promise<unknown>;
}

export interface CertificateFactorDeps {
  accounts: AccountRepository;
  identity: CertificateProofing;
  handoff: CertificateHandoff;
  /** CERT_SIGNIN_URL: the origin of the certificate host. */
  signInUrl: string;
}

/** The date of birth a valid JMBG begins with (DDMMYYY, YYY ≥ 800 in the 1800s and 1900s). */
export function birthdateOfJmbg(jmbg: string): string {
  const yyy = Number(jmbg.slice(4, 7));
  const year = yyy >= 800 ? 1000 + yyy : 2000 + yyy;
  return `${year}-${jmbg.slice(2, 4)}-${jmbg.slice(0, 2)}`;
}

/** A user name for an account opened by the card: random, saying nothing about the citizen. */
function cardUsername(): string {
  return `eid-${randomBytes(8).toString('hex')}`;
}

const clip = (s: string | undefined, max = 200) => (s === undefined ? undefined : s.normalize('NFC').trim().slice(0, max) || undefined);

/** The verified names in both scripts, from the certificate's subject (the card writes Cyrillic). */
function namesOf(identity: { givenName: string | undefined; surname: string | undefined }) {
  const given = clip(identity.givenName);
  const family = clip(identity.surname);
  const cyrl = (s: string | undefined) => (s === undefined ? undefined : hasCyrillic(s) ? s : latinToCyrillic(s));
  const latn = (s: string | undefined) => (s === undefined ? undefined : cyrillicToLatin(s));
  return { givenNameCyrl: cyrl(given), familyNameCyrl: cyrl(family), givenNameLatn: latn(given), familyNameLatn: latn(family) };
}

/**
 * A refusal the sign-in pages explain (`refusal: true`): their page shows `certificate.refused.<reason>`
 * with "try again" and "sign in another way".
 */
function refused(reason: Extract<CertificateOutcome, { ok: false }>['reason']): KapijaError {
  return new KapijaError('certificate.refused', 401, { details: { reason, refusal: true } });
}

/** The proofing a validated certificate gives: high, the issuer and serial as evidence, the attributes from its subject. */
export function certificateProofing(outcome: Extract<CertificateOutcome, { ok: true }>['identity']): ProofingInput {
  return {
    method: 'certificate',
    level: 'high',
    verifier: outcome.issuer.slice(0, 200),
    evidence: { type: 'certificate', certificateIssuer: outcome.issuer, certificateSerial: outcome.serial, expiry: outcome.notAfter.slice(0, 10) },
    attributes: { ...namesOf(outcome), birthdate: birthdateOfJmbg(outcome.jmbg), jmbg: outcome.jmbg },
  };
}

export function createCertificateFactor(deps: CertificateFactorDeps): Factor {
  const { accounts, identity, handoff } = deps;
  const proofing = certificateProofing;

  /** The account of the certificate's citizen, opened and proofed on first use. */
  const accountFor = async (outcome: Extract<CertificateOutcome, { ok: true }>['identity'], ip: string | null): Promise<string> => {
    const by = { actor: 'certificate', ip };
    const existing = await identity.findAccountByVerifiedJmbg(outcome.jmbg);
    if (existing) {
      const current = await identity.find(existing);
      // Proofed at a counter below high: the card raises it. At high already: nothing is written.
      if (current?.level !== 'high') await identity.recordProofing(existing, proofing(outcome), by);
      return existing;
    }
    const names = namesOf(outcome);
    const account = await accounts.create(
      { username: cardUsername(), givenName: names.givenNameCyrl ?? null, familyName: names.familyNameCyrl ?? null, birthdate: birthdateOfJmbg(outcome.jmbg), status: 'active' },
      null,
    );
    try {
      await identity.recordProofing(account.id, proofing(outcome), by);
    } catch (err) {
      // Two first sign-ins with the same card at once: the other one bound the JMBG; use its account.
      if (err instanceof KapijaError && err.code === 'identity.duplicate_jmbg') {
        // The account opened for nothing is erased (a pseudonymous id, no personal data).
        await accounts.erase(account.id);
        const winner = await identity.findAccountByVerifiedJmbg(outcome.jmbg);
        if (winner) return winner;
      }
      throw err;
    }
    return account.id;
  };

  return {
    id: 'certificate',
    step: 'first',
    amr: ['sc'],
    standsAlone: false,
    listed: false,
    storesCredentials: false,
    labels: { name: 'factor.certificate.name', heading: 'login.certificate' },
    first: {
      redirect: {
        origin: deps.signInUrl,
        async start(interaction) {
          const ticket = await handoff.issueTicket(interaction);
          return `${deps.signInUrl}${CERTIFICATE_HOST_PATH}?ticket=${encodeURIComponent(ticket)}`;
        },
      },
      async identify(attempt) {
        const token = (attempt.body as { return?: unknown } | undefined)?.return;
        if (typeof token !== 'string' || !attempt.interaction) throw new KapijaError('certificate.return_invalid', 401);
        const outcome = await handoff.useReturn(token, attempt.interaction);
        if (!outcome) throw new KapijaError('certificate.return_invalid', 401);
        if (!outcome.ok) throw refused(outcome.reason);
        return { accountId: await accountFor(outcome.identity, attempt.ip ?? null), amr: ['sc', 'pin'] };
      },
    },
  };
}
