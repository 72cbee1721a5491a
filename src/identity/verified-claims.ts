/**
 * OpenID Connect for Identity Assurance 1.0: the `verified_claims` Kapija answers in the ID token
 * and userinfo, and the metadata it publishes in discovery.
 *
 * A service asks for `verified_claims` in the `claims` parameter. It receives them only when the
 * citizen has a verified identity in force, the citizen consented to `verified_claims` (the engine
 * drops a claim the grant rejected before this is called), and then only the inner claims it asked
 * for that its registered scopes cover, that the granted scopes cover, and that the citizen did not
 * refuse. The `verification` element names the trust framework and, when asked for, the assurance
 * level, the time and the evidence (never a document number).
 */
import { claimsOfScopes } from '../oidc/claims-policy.js';
import type { VerifiedIdentity } from '../store/identities.js';

export const TRUST_FRAMEWORK = 'rs_eid';
export const CLAIMS_IN_VERIFIED_CLAIMS = ['given_name', 'family_name', 'birthdate', 'jmbg'] as const;

/** Discovery metadata (OpenID Connect for Identity Assurance 1.0 §10). */
export const IDENTITY_ASSURANCE_DISCOVERY = {
  verified_claims_supported: true,
  trust_frameworks_supported: [TRUST_FRAMEWORK],
  evidence_supported: ['document', 'electronic_signature'],
  documents_supported: ['idcard', 'passport'],
  documents_check_methods_supported: ['vpip', 'vcrypt'],
  electronic_signature_types_supported: ['qes_eidas'],
  claims_in_verified_claims_supported: [...CLAIMS_IN_VERIFIED_CLAIMS],
} as const;

type Request = { verification?: Record<string, unknown> | null; claims?: Record<string, unknown> | null } | null;

/** The request objects of a `verified_claims` entry of the claims parameter (one or an array). */
function requestsOf(spec: unknown): Request[] {
  if (Array.isArray(spec)) return spec.filter((s) => s && typeof s === 'object') as Request[];
  return spec && typeof spec === 'object' ? [spec as Request] : [];
}

/** The inner claim names a `verified_claims` request asks for (language tags kept). */
export function requestedInnerClaims(spec: unknown): string[] {
  const out = new Set<string>();
  for (const r of requestsOf(spec)) for (const k of Object.keys(r?.claims ?? {})) out.add(k);
  return [...out];
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function evidenceOf(identity: VerifiedIdentity): Record<string, unknown> {
  const e = identity.evidence;
  if (e.type === 'certificate') {
    return {
      type: 'electronic_signature',
      signature_type: 'qes_eidas',
      ...(e.certificateIssuer ? { issuer: e.certificateIssuer } : {}),
      ...(e.certificateSerial ? { serial_number: e.certificateSerial } : {}),
      created_at: iso(e.time),
    };
  }
  return {
    type: 'document',
    check_details: [{ check_method: identity.method === 'in_person' ? 'vpip' : 'vcrypt' }],
    time: iso(e.time),
    document_details: {
      type: e.documentType ?? 'idcard',
      ...(e.issuingCountry ? { issuer: { country_code: e.issuingCountry } } : {}),
      ...(e.expiry ? { date_of_expiry: e.expiry } : {}),
    },
  };
}

function valueOf(identity: VerifiedIdentity, claim: string): string | undefined {
  const a = identity.attributes;
  switch (claim) {
    case 'given_name':
    case 'given_name#sr-Cyrl':
      return claim.endsWith('#sr-Cyrl') ? a.givenNameCyrl : a.givenNameCyrl ?? a.givenNameLatn;
    case 'given_name#sr-Latn':
      return a.givenNameLatn;
    case 'family_name':
    case 'family_name#sr-Cyrl':
      return claim.endsWith('#sr-Cyrl') ? a.familyNameCyrl : a.familyNameCyrl ?? a.familyNameLatn;
    case 'family_name#sr-Latn':
      return a.familyNameLatn;
    case 'birthdate':
      return a.birthdate;
    case 'jmbg':
      return a.jmbg;
    default:
      return undefined;
  }
}

/**
 * The `verified_claims` to release, or undefined when there is nothing to release.
 * `allowed(claim)`: whether the plain claim may go to this service (registered scopes, refusals).
 * `grantedScope`: the scopes granted for the token being issued.
 */
export function buildVerifiedClaims(input: {
  identity: VerifiedIdentity | undefined;
  request: unknown;
  grantedScope: string | undefined;
  allowed: (claim: string) => boolean;
  rejected: readonly string[];
}): Record<string, unknown> | undefined {
  const { identity } = input;
  if (!identity || identity.level === 'none') return undefined;
  const requests = requestsOf(input.request);
  if (requests.length === 0) return undefined;
  const scopeClaims = claimsOfScopes((input.grantedScope ?? '').split(' ').filter(Boolean));
  const rejected = new Set(input.rejected);
  const mayRelease = (claim: string) => {
    const base = claim.split('#')[0]!;
    return (CLAIMS_IN_VERIFIED_CLAIMS as readonly string[]).includes(base) && scopeClaims.has(base) && input.allowed(base) && !rejected.has(base);
  };
  const claims: Record<string, string> = {};
  const verification: Record<string, unknown> = { trust_framework: TRUST_FRAMEWORK };
  for (const r of requests) {
    const v = r?.verification ?? {};
    if (v && typeof v === 'object') {
      if ('assurance_level' in v) verification.assurance_level = identity.level;
      if ('time' in v) verification.time = iso(identity.verifiedAt.getTime());
      if ('evidence' in v) verification.evidence = [evidenceOf(identity)];
    }
    for (const claim of Object.keys(r?.claims ?? {})) {
      if (!mayRelease(claim)) continue;
      const value = valueOf(identity, claim);
      if (value !== undefined) claims[claim] = value;
    }
  }
  if (Object.keys(claims).length === 0) return undefined;
  return { verification, claims };
}
