/**
 * Kapija as an OpenID4VP 1.0 verifier for wallet sign-in: the presentation requests of a sign-in,
 * the signed request object a wallet fetches by reference, the encrypted answer it posts
 * (direct_post.jwt) and the redemption of that answer by the browser that started the sign-in.
 *
 * Each sign-in gets two requests: `same_device` (the wallet on this device, opened by a link; the
 * answer returns a redirect with a one-time response code, redeemable only in the browser holding
 * the sign-in) and `cross_device` (the QR code; the browser polls and redeems it, bound to its
 * sign-in by the interaction cookie). Each request has its own nonce, state and ECDH-ES key pair:
 * the answer is encrypted to that key, so only Kapija reads it. Everything is kept in the database
 * (store/wallet-presentations.ts), so the steps may reach different instances. The OpenID4VP and
 * DCQL protocol itself is protocol.ts's, on the OpenWallet Foundation libraries.
 */
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { constantTimeEqual, randomToken, type SecretBox } from '../../security/crypto.js';
import type { Amr } from '../../assurance/levels.js';
import type { PresentationFlow, PresentationRequest, WalletPresentationRepository } from '../../store/wallet-presentations.js';
import type { RequestSigningKey } from './keys.js';
import { allowHttpIssuer, parseAnswer, PID_QUERY, PID_QUERY_ID, signedRequestObject, type RequestParams } from './protocol.js';
import type { TrustedIssuer, WalletFetch } from './trusted-issuers.js';
import { PresentationRefused, verifyPid, type RefusalReason } from './verify.js';

/** How long a request may be answered and redeemed. */
export const REQUEST_TTL_MS = 5 * 60 * 1000;

export type Outcome = { ok: true; accountId: string; amr: Amr[] } | { ok: false; reason: RefusalReason };

export interface WalletVerifierDeps {
  repo: WalletPresentationRepository;
  box: SecretBox;
  /** ISSUER: the request and response URLs are under it. */
  issuer: string;
  signingKey: () => Promise<RequestSigningKey>;
  issuers: ReadonlyMap<string, TrustedIssuer>;
  fetch: WalletFetch;
  /** Whether status lists may be fetched over plain http (development and test, never production). */
  allowHttp: boolean;
  /** The account whose verified identity has this JMBG. */
  findAccountByVerifiedJmbg(jmbg: string): Promise<string | undefined>;
  now?: () => number;
}

/** An answer Kapija could not read or that belongs to no live request: 400 to the wallet, the request unchanged. */
export class UnreadableResponse extends Error {
  constructor(readonly status: 400 | 404, message: string) {
    super(message);
    this.name = 'UnreadableResponse';
  }
}

const keyContext = (id: string) => `wallet-response-key:${id}`;
const outcomeContext = (id: string) => `wallet-outcome:${id}`;

/**
 * The amr of a wallet sign-in. The holder-binding signature proves possession of the credential's
 * key (`pop`), kept in hardware (`hwk`) when the trusted issuer declares high — it issues only to
 * wallet units whose keys are in a certified secure element — and otherwise counted as a software
 * key (`swk`). The wallet unit uses that key only after the citizen unlocked it with a PIN or
 * biometric (`pin`, as for a passkey's user verification): with the key that is two factors, so
 * `completeAmr` adds `mfa` and `levelFor` gives high or substantial.
 */
export function walletAmr(level: TrustedIssuer['level']): Amr[] {
  return [level === 'high' ? 'hwk' : 'swk', 'pin', 'pop'];
}

export function createWalletVerifier(deps: WalletVerifierDeps) {
  const { repo, box, issuer } = deps;
  const now = deps.now ?? Date.now;
  allowHttpIssuer(issuer);
  const requestUri = (id: string) => `${issuer}/wallet/request/${id}`;
  const responseUri = (id: string) => `${issuer}/wallet/response/${id}`;
  const walletUrl = async (id: string) => {
    const { clientId } = await deps.signingKey();
    return `openid4vp://?client_id=${encodeURIComponent(clientId)}&request_uri=${encodeURIComponent(requestUri(id))}`;
  };

  const create = async (interactionUid: string, flow: PresentationFlow): Promise<string> => {
    const id = randomToken(24);
    const { privateKey } = await generateKeyPair('ECDH-ES', { crv: 'P-256', extractable: true });
    const { clientId } = await deps.signingKey();
    await repo.create({
      id,
      interactionUid,
      flow,
      clientId,
      nonce: randomToken(24),
      state: randomToken(24),
      responseKey: box.seal(JSON.stringify(await exportJWK(privateKey)), keyContext(id)),
      ttlMs: REQUEST_TTL_MS,
    });
    return id;
  };

  const paramsOf = (row: PresentationRequest): RequestParams => ({
    id: row.id,
    clientId: row.clientId,
    nonce: row.nonce,
    state: row.state,
    responseUri: responseUri(row.id),
    responseKey: JSON.parse(box.openString(row.responseKey, keyContext(row.id))) as JWK,
  });

  const settle = async (row: PresentationRequest, outcome: Outcome): Promise<{ redirectUri?: string }> => {
    const code = row.flow === 'same_device' ? randomToken(32) : undefined;
    const sealed = box.seal(JSON.stringify(outcome), outcomeContext(row.id));
    const won = await repo.settle(row.id, outcome.ok ? 'answered' : 'refused', sealed, code ? box.mac('wallet-response-code', code) : undefined);
    if (!won) throw new UnreadableResponse(400, 'the request was answered already');
    return code ? { redirectUri: `${issuer}/interaction/${row.interactionUid}/wallet/identify?response_code=${code}` } : {};
  };

  return {
    /**
     * The two requests of a sign-in (reused while neither was fetched, so reloading the page makes
     * no new rows): the same-device link and the cross-device link the QR code shows.
     */
    async begin(interactionUid: string): Promise<{ sameDevice: string; crossDevice: string; crossId: string }> {
      const live = await repo.listForInteraction(interactionUid);
      const unused = (flow: PresentationFlow) => live.find((r) => r.flow === flow && r.status === 'pending' && r.expiresAt - now() > REQUEST_TTL_MS / 2);
      const same = unused('same_device')?.id ?? (await create(interactionUid, 'same_device'));
      const cross = unused('cross_device')?.id ?? (await create(interactionUid, 'cross_device'));
      return { sameDevice: await walletUrl(same), crossDevice: await walletUrl(cross), crossId: cross };
    },

    /** The signed request object (JAR) of a pending request; fetched once. Undefined when there is none to fetch. */
    async requestObject(id: string): Promise<string | undefined> {
      const row = await repo.find(id);
      if (!row || !(await repo.markFetched(id))) return undefined;
      const expiresIn = Math.floor((row.expiresAt - now()) / 1000);
      return signedRequestObject(paramsOf(row), await deps.signingKey(), requestUri(id), new Date(now()), expiresIn);
    },

    /**
     * The wallet's answer (the `response` JWE of direct_post.jwt): decrypted with the request's key,
     * its state checked, the PID verified and mapped to an account. Answered once; for a same-device
     * request the redirect with the response code the browser redeems.
     * @throws UnreadableResponse for an answer that is not one (nothing is recorded)
     */
    async answer(id: string, response: unknown): Promise<{ redirectUri?: string }> {
      const row = await repo.find(id);
      if (!row || row.status !== 'fetched') throw new UnreadableResponse(404, 'no request awaits an answer here');
      if (typeof response !== 'string' || response.length > 64 * 1024) throw new UnreadableResponse(400, 'no response');
      const answer = await parseAnswer(paramsOf(row), response, (state) => typeof state === 'string' && constantTimeEqual(state, row.state));
      if (answer.kind === 'unreadable') {
        throw new UnreadableResponse(400, answer.why === 'state' ? 'the state is not this request\'s' : answer.why === 'not_encrypted' ? 'the response is not encrypted to this request' : 'the response is not an authorization response');
      }
      if (answer.kind === 'error') return settle(row, { ok: false, reason: 'invalid' });
      // One presentation for the one credential query, before anything is verified or fetched (what dcql
      // would refuse too: an id the query does not have, two presentations where `multiple` is false);
      // its claims are checked against the query by dcql once verified (verifyPid).
      const ids = Object.keys(answer.presentations);
      const presentations = answer.presentations[PID_QUERY_ID] ?? [];
      if (ids.length !== 1 || presentations.length !== 1 || typeof presentations[0] !== 'string') return settle(row, { ok: false, reason: 'invalid' });
      let outcome: Outcome;
      try {
        const pid = await verifyPid({ presentation: presentations[0], nonce: row.nonce, clientId: row.clientId, query: PID_QUERY, credentialQueryId: PID_QUERY_ID, issuers: deps.issuers, fetch: deps.fetch, allowHttp: deps.allowHttp, now });
        const pan = pid.claims.personal_administrative_number;
        const accountId = typeof pan === 'string' && /^\d{13}$/.test(pan) ? await deps.findAccountByVerifiedJmbg(pan) : undefined;
        outcome = accountId ? { ok: true, accountId, amr: walletAmr(pid.issuer.level) } : { ok: false, reason: 'no_account' };
      } catch (err) {
        if (!(err instanceof PresentationRefused)) throw err;
        outcome = { ok: false, reason: err.reason };
      }
      return settle(row, outcome);
    },

    /** Whether the cross-device request of this sign-in has been answered (the polling page). */
    async crossDeviceReady(interactionUid: string, id: string): Promise<'pending' | 'ready' | 'gone'> {
      const row = await repo.find(id);
      if (!row || row.interactionUid !== interactionUid || row.flow !== 'cross_device' || row.status === 'redeemed') return 'gone';
      return row.status === 'answered' || row.status === 'refused' ? 'ready' : 'pending';
    },

    /** Redeems an answer for the sign-in `interactionUid`, once: by the response code, or the cross-device request's id. */
    async redeem(interactionUid: string, by: { responseCode?: unknown; request?: unknown }): Promise<Outcome | undefined> {
      const code = typeof by.responseCode === 'string' && /^[A-Za-z0-9_-]{43}$/.test(by.responseCode) ? by.responseCode : undefined;
      const request = typeof by.request === 'string' && REQUEST_ID_PATTERN.test(by.request) ? by.request : undefined;
      const row = code
        ? await repo.redeem({ responseCodeHash: box.mac('wallet-response-code', code) }, interactionUid)
        : request
          ? await repo.redeem({ id: request, flow: 'cross_device' }, interactionUid)
          : undefined;
      if (!row?.outcome) return undefined;
      return JSON.parse(box.openString(row.outcome, outcomeContext(row.id))) as Outcome;
    },
  };
}

export type WalletVerifier = ReturnType<typeof createWalletVerifier>;

/** A request's id: 24 random bytes, base64url. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;
