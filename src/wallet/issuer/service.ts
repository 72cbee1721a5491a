/**
 * The PID issuer: who may receive Kapija's PID, minting it into the registry and the citizen's
 * ledger in one step, revocation (by the citizen, with the proofing, with the account), the
 * published status lists and the SD-JWT VC issuer metadata.
 *
 * A PID is issued only from a verified identity in force at substantial or high, after a sign-in
 * at that level (the portal's authorization code) or at the registration desk (a pre-authorized
 * code a registrar hands over after checking the citizen in person). Its level is the lower of the
 * two. The attributes come from the verified identity alone, never from the self-asserted profile.
 */
import type { JWK } from 'jose';
import { KapijaError } from '../../errors.js';
import { rank, type AcrLevel } from '../../assurance/levels.js';
import { honestLevel, identitySupports, type IdentityLevel } from '../../identity/levels.js';
import type { VerifiedIdentity } from '../../store/identities.js';
import type { Repositories, Transaction } from '../../store/index.js';
import type { IssuanceChannel, IssuedCredential } from '../../store/wallet-credentials.js';
import type { SecretBox } from '../../security/crypto.js';
import { ledgerChain } from '../../store/audit.js';
import { PID_ATTRIBUTES } from '../pid.js';
import { mintPid, type PidClaims } from './credential.js';
import type { CredentialKeys } from './keys.js';
import { statusListToken, statusListUri } from './status-list.js';

/** Why a citizen cannot receive the PID now. */
export type IneligibleReason = 'unverified' | 'level' | 'attributes';

export type Eligibility = { ok: true; identity: VerifiedIdentity; claims: PidClaims } | { ok: false; reason: IneligibleReason };

/** Why a credential was revoked (kept in the registry and the ledger). */
export type RevocationReason = 'citizen' | 'identity_revoked' | 'identity_lowered' | 'identity_changed' | 'account_deleted';

export interface PidIssuerDeps {
  issuer: string;
  /** issuing_authority in every credential. */
  issuingAuthority: string;
  validitySeconds: number;
  repos: Pick<Repositories, 'walletCredentials' | 'audit' | 'atomically' | 'identities'>;
  identity: { find(accountId: string): Promise<VerifiedIdentity | undefined> };
  keys: CredentialKeys;
  box: SecretBox;
  now?: () => number;
}

/** The PID's attributes from a verified identity (names in Latin script), or undefined when one is missing. */
function pidClaimsOf(identity: VerifiedIdentity): PidClaims | undefined {
  const a = identity.attributes;
  const family = a.familyNameLatn ?? a.familyNameCyrl;
  const given = a.givenNameLatn ?? a.givenNameCyrl;
  if (!family || !given || !a.birthdate || !a.jmbg) return undefined;
  return { family_name: family, given_name: given, birthdate: a.birthdate, nationalities: ['RS'], personal_administrative_number: a.jmbg };
}

/**
 * How long an instance serves a status list token it built (a list of 131,072 entries takes tens of
 * milliseconds to build): a revocation on this instance shows at once, one on another instance
 * within this time (relying parties may keep the token five minutes anyway).
 */
export const STATUS_LIST_REBUILD_MS = 30_000;

export function createPidIssuer(deps: PidIssuerDeps) {
  const now = deps.now ?? Date.now;
  const { walletCredentials, audit, atomically } = deps.repos;
  // Built status list tokens (the promise, so concurrent requests build once), dropped on a revocation here.
  const built = new Map<string, { at: number; token: Promise<string | undefined> }>();

  const eligibilityOf = (identity: VerifiedIdentity | undefined): Eligibility => {
    if (!identity || identity.level === 'none') return { ok: false, reason: 'unverified' };
    if (!identitySupports(identity.level, 'substantial')) return { ok: false, reason: 'level' };
    const claims = pidClaimsOf(identity);
    if (!claims) return { ok: false, reason: 'attributes' };
    return { ok: true, identity, claims };
  };
  const eligibility = async (accountId: string): Promise<Eligibility> => eligibilityOf(await deps.identity.find(accountId));

  const recordRevocation = async (credentials: readonly IssuedCredential[] | readonly string[], accountId: string, actor: string, reason: RevocationReason, trx?: Transaction) => {
    for (const c of credentials) {
      const id = typeof c === 'string' ? c : c.id;
      await audit.append({ chain: ledgerChain(accountId), actor, action: 'ledger.pid_revoked', subjectAccountId: accountId, details: { credential: id, reason } }, trx);
    }
  };

  return {
    eligibility,

    /**
     * Issues the PID to the wallet key `holderJwk`. `signIn` is the level the citizen signed in at
     * (portal), or the level the desk vouches for (the registrar checked the citizen in person).
     * Refuses (403 wallet.not_eligible) below substantial.
     */
    async issue(input: { accountId: string; clientId: string; channel: IssuanceChannel; signIn: AcrLevel; holderJwk: JWK }): Promise<{ credential: string; record: IssuedCredential }> {
      const levelOf = (e: Eligibility) => {
        if (!e.ok) throw new KapijaError('wallet.not_eligible', 403, { details: { reason: e.reason } });
        const level = honestLevel(input.signIn, e.identity.level as IdentityLevel);
        if (rank(level) < rank('substantial')) throw new KapijaError('wallet.not_eligible', 403, { details: { reason: 'level' } });
        return { e, level };
      };
      levelOf(await eligibility(input.accountId));
      const signingKey = await deps.keys.signingKey();
      const issuedAt = now();
      const expiresAt = issuedAt + deps.validitySeconds * 1000;
      return atomically(async (trx) => {
        // Read again with the identity held until this transaction ends: a revocation, lowering or
        // correction that landed since the check above is seen here, and one still to come waits for
        // this credential to be recorded and then revokes it with the others.
        const { e, level } = levelOf(eligibilityOf(await deps.repos.identities.findHeld(input.accountId, trx)));
        const record = await walletCredentials.insert(
          { accountId: input.accountId, identityRef: `${input.accountId}@${e.identity.verifiedAt.getTime()}`, level, clientId: input.clientId, channel: input.channel, issuedAt, expiresAt },
          trx,
        );
        await audit.append(
          {
            chain: ledgerChain(input.accountId),
            actor: input.accountId,
            action: 'ledger.pid_issued',
            subjectAccountId: input.accountId,
            clientId: input.clientId,
            details: { credential: record.id, attributes: [...PID_ATTRIBUTES], level, channel: input.channel, expires_at: new Date(expiresAt).toISOString() },
          },
          trx,
        );
        const credential = await mintPid({
          issuer: deps.issuer,
          issuingAuthority: deps.issuingAuthority,
          claims: e.claims,
          holderJwk: input.holderJwk,
          status: { idx: record.listIdx, uri: statusListUri(deps.issuer, record.listId) },
          issuedAt,
          expiresAt,
          signingKey,
        });
        return { credential, record };
      });
    },

    /** The account's credentials, newest first. */
    list: (accountId: string) => walletCredentials.listByAccount(accountId),

    /** The citizen revokes one of their own credentials; another citizen's is not found (404). */
    async revokeOwn(accountId: string, credentialId: string): Promise<void> {
      const found = await walletCredentials.find(credentialId);
      if (!found || found.accountId !== accountId) throw new KapijaError('wallet.credential_not_found', 404);
      await atomically(async (trx) => {
        if (await walletCredentials.revoke(credentialId, 'citizen', now(), trx)) await recordRevocation([credentialId], accountId, accountId, 'citizen', trx);
      });
      built.delete(found.listId);
    },

    /** Revokes every live credential of an account (its proofing was revoked, lowered, proofed again or corrected; the account deleted). */
    async revokeAll(accountId: string, actor: string, reason: RevocationReason): Promise<number> {
      const n = await atomically(async (trx) => {
        const ids = await walletCredentials.revokeAllOf(accountId, reason, now(), trx);
        await recordRevocation(ids, accountId, actor, reason, trx);
        return ids.length;
      });
      if (n) built.clear();
      return n;
    },

    /**
     * The status list token of a list, or undefined for an unknown list. A built list is reused for
     * a while; `fresh` builds it from the registry as it is now.
     */
    async statusList(listId: string, opts: { fresh?: boolean } = {}): Promise<string | undefined> {
      const at = now();
      const kept = built.get(listId);
      if (!opts.fresh && kept && at - kept.at < STATUS_LIST_REBUILD_MS) return kept.token;
      const token = (async () => {
        const state = await walletCredentials.revokedIndices(listId);
        if (!state) return undefined;
        return statusListToken({ issuer: deps.issuer, listId, size: state.size, revoked: state.revoked, signingKey: await deps.keys.signingKey(), now: at });
      })();
      built.set(listId, { at, token });
      // An unknown list or a failure is not kept.
      token.then((t) => t === undefined && built.delete(listId), () => built.delete(listId));
      return token;
    },

    /**
     * The status of one credential's entry as the registry has it now (0 valid, 1 revoked), for
     * Kapija's own wallet sign-in: one row read, where a status list token would build the whole list.
     * An entry no credential has is revoked (undefined: unknown list).
     */
    async statusOf(listId: string, idx: number): Promise<0 | 1> {
      return (await walletCredentials.isRevoked(listId, idx)) === false ? 0 : 1;
    },

    /** The public keys that verify Kapija's credentials and status lists (a verifier trusting Kapija's own issuer reads them in-process). */
    publicJwks: () => deps.keys.publicJwks(),

    /** SD-JWT VC issuer metadata (`/.well-known/jwt-vc-issuer`). */
    async issuerMetadata(): Promise<{ issuer: string; jwks: { keys: JWK[] } }> {
      return { issuer: deps.issuer, jwks: await deps.keys.publicJwks() };
    },

    /**
     * Marks a c_nonce used with one wallet key (its RFC 7638 thumbprint), kept until `until`; false
     * when that key used it before. The engine's c_nonce is derived from the time, not stored, so
     * this is what makes a proof single-use: a replayed proof, or a second credential on the same
     * nonce and key, is refused and the wallet asks the nonce endpoint again.
     */
    async useNonce(nonce: string, keyThumbprint: string, until: number): Promise<boolean> {
      return walletCredentials.useProof(deps.box.mac('wallet-nonce', `${nonce}|${keyThumbprint}`).slice(0, 64), until, now());
    },
  };
}

export type PidIssuer = ReturnType<typeof createPidIssuer>;
