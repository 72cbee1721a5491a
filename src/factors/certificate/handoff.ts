/**
 * The hand-off of an ID-card sign-in between the main host and the certificate host (CERT_SIGNIN_URL).
 * Cookies are per host, so the sign-in's cookies never reach the certificate host; the two legs are
 * joined by two random single-use tokens, stored only as keyed hashes and living a few minutes:
 *
 * 1. the main host, on the citizen's CSRF-protected "Sign in with your ID card", makes a **ticket**
 *    bound to the interaction and sends the browser to the certificate host with it;
 * 2. the certificate host (reached only through the proxy) uses the ticket once, validates the
 *    certificate and keeps the outcome (the identity or the refusal, sealed) under a **return**
 *    token, sending the browser back to the main host's `/interaction/<uid>/certificate/identify`;
 * 3. the main host uses the return token once, only for the interaction it was made for and only
 *    in a request that carries that interaction's cookies (the browser that started).
 *
 * A ticket link sent to a victim completes nothing for the sender: the victim's browser lacks the
 * sender's interaction cookies. A victim's interaction cannot be completed with someone else's card
 * without the victim's cookies. Neither token is worth anything after its single use or its expiry.
 */
import { KapijaError } from '../../errors.js';
import { randomToken, type SecretBox } from '../../security/crypto.js';
import type { CertificateHandoffRepository } from '../../store/certificate-handoffs.js';
import type { CertificateIdentity, CertificateRefusal } from './validate.js';

/** How long a ticket or a return token lives: the certificate choice and the PIN take a minute or two. */
export const HANDOFF_TTL_MS = 5 * 60 * 1000;

/** The path of the certificate host's leg (reached only through the proxy, which adds the secret). */
export const CERTIFICATE_HOST_PATH = '/eid/sign-in';

/** What the certificate host found, carried back to the main host. */
export type CertificateOutcome =
  | { readonly ok: true; readonly identity: Omit<CertificateIdentity, 'notBefore' | 'notAfter'> & { readonly notBefore: string; readonly notAfter: string } }
  | { readonly ok: false; readonly reason: CertificateRefusal | 'none' };

export interface CertificateHandoff {
  /** A ticket for this interaction (main host): the token for the certificate host's URL. */
  issueTicket(interactionUid: string): Promise<string>;
  /** Uses a ticket once (certificate host): the interaction it was made for, or undefined. */
  useTicket(ticket: string): Promise<string | undefined>;
  /** Keeps the outcome for the interaction (certificate host): the return token. */
  issueReturn(interactionUid: string, outcome: CertificateOutcome): Promise<string>;
  /** Uses a return token once, for this interaction only (main host). */
  useReturn(token: string, interactionUid: string): Promise<CertificateOutcome | undefined>;
}

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function createCertificateHandoff(deps: { repo: CertificateHandoffRepository; box: SecretBox; ttlMs?: number }): CertificateHandoff {
  const { repo, box } = deps;
  const ttlMs = deps.ttlMs ?? HANDOFF_TTL_MS;
  const hash = (kind: string, token: string) => box.mac(`certificate-${kind}`, token);
  const context = (uid: string) => `certificate-return:${uid}`;
  return {
    async issueTicket(interactionUid) {
      const ticket = randomToken(32);
      await repo.create({ tokenHash: hash('ticket', ticket), kind: 'ticket', interactionUid, ttlMs });
      return ticket;
    },
    async useTicket(ticket) {
      if (!TOKEN.test(ticket)) return undefined;
      return (await repo.consume(hash('ticket', ticket), 'ticket'))?.interactionUid;
    },
    async issueReturn(interactionUid, outcome) {
      const token = randomToken(32);
      await repo.create({ tokenHash: hash('return', token), kind: 'return', interactionUid, outcome: box.seal(JSON.stringify(outcome), context(interactionUid)), ttlMs });
      return token;
    },
    async useReturn(token, interactionUid) {
      if (!TOKEN.test(token)) return undefined;
      const row = await repo.consume(hash('return', token), 'return', interactionUid);
      if (!row?.outcome) return undefined;
      try {
        return JSON.parse(box.openString(row.outcome, context(interactionUid))) as CertificateOutcome;
      } catch (err) {
        throw new KapijaError('server.internal', 500, { cause: err });
      }
    },
  };
}

/** The outcome of a validation, as carried in a return token. */
export function outcomeOf(check: { ok: true; identity: CertificateIdentity } | { ok: false; reason: CertificateRefusal } | undefined): CertificateOutcome {
  if (!check) return { ok: false, reason: 'none' };
  if (!check.ok) return { ok: false, reason: check.reason };
  const { notBefore, notAfter, ...rest } = check.identity;
  return { ok: true, identity: { ...rest, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() } };
}
