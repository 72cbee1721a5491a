/**
 * `kapija identity proof` and `kapija registrar grant|revoke`: identity proofing from the command
 * line, for an operator who checked the documents of the first administrators and registrars (an
 * administrator needs a verified identity to reach the console at ADMIN_MIN_ACR, since the acr is
 * never above the identity level). Recorded in the audit trail and the citizen's ledger (actor `cli`).
 */
import { dropStoredSessionsAbove } from '../identity/sessions.js';
import { parseArgs } from 'node:util';
import type { StoreHandles } from '../app.js';
import { KapijaError } from '../errors.js';
import { isIdentityLevel } from '../identity/levels.js';
import { createRegistrarRoles } from '../identity/registrar.js';
import { PROOFING_METHODS, type ProofingMethod } from '../store/identities.js';

export class IdentityUsageError extends Error {}

export const IDENTITY_USAGE = `  identity proof --username U --level low|substantial|high --verifier WHO
                 [--method in_person|remote_document|letter] [--office O]
                 [--given-name G] [--family-name F] [--given-name-latn G] [--family-name-latn F]
                 [--birthdate YYYY-MM-DD] [--jmbg 13-DIGITS]
                 [--document-type idcard|passport] [--issuing-country RS] [--document-number N] [--expiry YYYY-MM-DD]
                                  record a document check: the account's identity level (the acr it
                                  can reach) and its verified attributes
  identity revoke --username U --reason R
                                  revoke a verified identity (its level drops at once)
  registrar grant --username U    let a user record document checks (registration desk, admin API)
  registrar revoke --username U
`;

function parse(args: string[], options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new IdentityUsageError((err as Error).message);
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

async function accountOf(h: StoreHandles, username: string | undefined) {
  if (!username) throw new IdentityUsageError('--username is required');
  const account = await h.accounts.findByUsername(username);
  if (!account) throw new IdentityUsageError(`no user "${username}"`);
  return account;
}

export async function identityProof(h: StoreHandles, args: string[], out: (s: string) => void): Promise<number> {
  const v = parse(args, {
    username: { type: 'string' },
    level: { type: 'string' },
    method: { type: 'string' },
    verifier: { type: 'string' },
    office: { type: 'string' },
    'given-name': { type: 'string' },
    'family-name': { type: 'string' },
    'given-name-latn': { type: 'string' },
    'family-name-latn': { type: 'string' },
    birthdate: { type: 'string' },
    jmbg: { type: 'string' },
    'document-type': { type: 'string' },
    'issuing-country': { type: 'string' },
    'document-number': { type: 'string' },
    expiry: { type: 'string' },
  });
  const account = await accountOf(h, str(v.username));
  const level = str(v.level);
  if (!isIdentityLevel(level) || level === 'none') throw new IdentityUsageError('--level must be low, substantial or high');
  const method = (str(v.method) ?? 'in_person') as ProofingMethod;
  if (!PROOFING_METHODS.includes(method) || method === 'certificate') throw new IdentityUsageError('--method must be in_person, remote_document or letter');
  const verifier = str(v.verifier);
  if (!verifier) throw new IdentityUsageError('--verifier is required (who checked the documents)');
  try {
    const identity = await h.identity.recordProofing(
      account.id,
      {
        method,
        level,
        verifier,
        office: str(v.office),
        evidence: { type: 'document', documentType: str(v['document-type']), issuingCountry: str(v['issuing-country']), documentNumber: str(v['document-number']), expiry: str(v.expiry) },
        attributes: {
          givenNameCyrl: str(v['given-name']) ?? account.givenName ?? undefined,
          familyNameCyrl: str(v['family-name']) ?? account.familyName ?? undefined,
          givenNameLatn: str(v['given-name-latn']),
          familyNameLatn: str(v['family-name-latn']),
          birthdate: str(v.birthdate),
          jmbg: str(v.jmbg),
        },
      },
      { actor: 'cli' },
    );
    out(`identity of ${account.username} verified at ${identity.level} (${identity.method})\n`);
    return 0;
  } catch (err) {
    if (err instanceof KapijaError && err.status < 500) throw new IdentityUsageError(describe(err));
    throw err;
  }
}

export async function identityRevoke(h: StoreHandles, args: string[], out: (s: string) => void): Promise<number> {
  const v = parse(args, { username: { type: 'string' }, reason: { type: 'string' } });
  const account = await accountOf(h, str(v.username));
  const reason = str(v.reason);
  if (!reason) throw new IdentityUsageError('--reason is required');
  const revoked = await h.identity.revoke(account.id, { actor: 'cli' }, reason);
  // Sessions and offline grants above the new level end here too (services are told only through the API or desk).
  const dropped = revoked ? await dropStoredSessionsAbove(h.payloads, account.id, await h.identity.levelOf(account.id)) : 0;
  out(revoked ? `identity of ${account.username} revoked; ${dropped} session(s) above the new level ended\n` : `${account.username} has no verified identity in force\n`);
  return revoked ? 0 : 1;
}

export async function registrarRole(h: StoreHandles, grant: boolean, args: string[], out: (s: string) => void): Promise<number> {
  const v = parse(args, { username: { type: 'string' } });
  const account = await accountOf(h, str(v.username));
  const roles = createRegistrarRoles(h.repos);
  const changed = grant ? await roles.grant(account.id, 'cli') : await roles.revoke(account.id, 'cli');
  out(grant ? (changed ? `${account.username} is now a registrar\n` : `${account.username} already is a registrar\n`) : changed ? `${account.username} is no longer a registrar\n` : `${account.username} was not a registrar\n`);
  return 0;
}

function describe(err: KapijaError): string {
  switch (err.code) {
    case 'identity.invalid_jmbg':
      return '--jmbg is not a valid JMBG (13 digits, date of birth and check digit), or it does not match --birthdate';
    case 'identity.duplicate_jmbg':
      return 'another account already has a verified identity with this JMBG (the attempt is recorded in the audit trail)';
    case 'identity.own_account':
      return '--verifier cannot be the account itself';
    default:
      return `invalid proofing (${String(err.details?.field ?? err.code)})`;
  }
}
