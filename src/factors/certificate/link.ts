/**
 * Linking the ID card to an account the citizen already has (the portal's "Link your ID card"): the
 * same hand-off as a sign-in (handoff.ts), bound not to an interaction but to the signed-in account
 * (`portal:<account id>`), so only that account's portal session can take the outcome back. The
 * portal asks for a fresh two-factor sign-in first: the account's own factors and the card's PIN
 * together say it is the same person.
 *
 * A verified identity is never bound to another JMBG, and a JMBG in force on another account (say,
 * one the card opened earlier) is refused by identity proofing and reported; an identity already at
 * high with this JMBG is left as it is.
 */
import { KapijaError } from '../../errors.js';
import type { ProofingActor } from '../../identity/service.js';
import type { CertificateProofing } from './factor.js';
import { certificateProofing } from './factor.js';
import { CERTIFICATE_HOST_PATH, type CertificateHandoff, type CertificateOutcome } from './handoff.js';

/** The hand-off's binding for a portal link: never an interaction uid (those have no colon). */
export const portalBinding = (accountId: string) => `portal:${accountId}`;

export interface CardLink {
  /** The certificate host's origin (the portal page's form-action allows it). */
  readonly origin: string;
  /** The certificate host's URL for this account, with a fresh ticket. */
  start(accountId: string): Promise<string>;
  /**
   * Takes the outcome back for this account: `linked` (proofed at high, or already so), or the
   * refusal's reason. @throws KapijaError 400 certificate.return_invalid, 409 identity.duplicate_jmbg
   */
  finish(accountId: string, token: string, ip: string | null): Promise<{ linked: true } | { linked: false; reason: Extract<CertificateOutcome, { ok: false }>['reason'] }>;
}

export function createCardLink(deps: {
  handoff: CertificateHandoff;
  identity: Omit<CertificateProofing, 'find'> & { find(accountId: string): Promise<{ level: string; attributes: { jmbg?: string | undefined } } | undefined> };
  signInUrl: string;
}): CardLink {
  return {
    origin: deps.signInUrl,
    async start(accountId) {
      const ticket = await deps.handoff.issueTicket(portalBinding(accountId));
      return `${deps.signInUrl}${CERTIFICATE_HOST_PATH}?ticket=${encodeURIComponent(ticket)}`;
    },
    async finish(accountId, token, ip) {
      const outcome = await deps.handoff.useReturn(token, portalBinding(accountId));
      if (!outcome) throw new KapijaError('certificate.return_invalid', 400);
      if (!outcome.ok) return { linked: false, reason: outcome.reason };
      const current = await deps.identity.find(accountId);
      const inForce = current && current.level !== 'none';
      if (inForce && current.attributes.jmbg && current.attributes.jmbg !== outcome.identity.jmbg) throw new KapijaError('identity.duplicate_jmbg', 409);
      if (inForce && current.level === 'high' && current.attributes.jmbg === outcome.identity.jmbg) return { linked: true };
      const by: ProofingActor = { actor: 'certificate', ip };
      await deps.identity.recordProofing(accountId, certificateProofing(outcome.identity), by);
      return { linked: true };
    },
  };
}
