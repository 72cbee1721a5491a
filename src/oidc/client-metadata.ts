/**
 * Kapija's rules for client metadata, in one place: the client id, redirect and other URIs, the
 * sector, scopes, names and the kapija_* properties. The admin API and console (admin/schemas.ts,
 * admin/service.ts), the CLI (`client create`) and the engine's extraClientMetadata validator
 * (provider.ts) all check a client against these rules.
 */
import { z } from 'zod';
import { ACR, LEVELS, type AcrLevel } from './acr.js';

/** A client id: letters, digits, . _ ~ - (RFC 3986 unreserved), at most 128. */
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;
/** A sector that groups services under one pairwise subject: a host name, with an optional port. */
const SECTOR = /^[a-z0-9.-]{1,253}(:\d{1,5})?$/i;
/** One scope name (RFC 6749 §3.3 scope-token). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** A claim name in kapija_claim_purposes. */
const CLAIM_NAME = /^[a-z_]{1,64}$/;

/** The device authorization grant (RFC 8628): a service opts in by listing it in its grant_types. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** OpenID4VCI's pre-authorized code grant: a wallet (`kapija_wallet`) redeems the registration desk's credential offer with it. */
export const PRE_AUTHORIZED_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:pre-authorized_code';
/** Client-Initiated Backchannel Authentication (OpenID Connect CIBA Core 1.0): a service opts in with this grant type. */
export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

export const isClientId = (value: string): boolean => CLIENT_ID.test(value);
export const isSector = (value: string): boolean => SECTOR.test(value);
/** An assurance level by name (low, substantial, high), as administrators give it. */
export const isAcrLevel = (value: string): value is AcrLevel => (LEVELS as readonly string[]).includes(value);

/** What is wrong with a URI in client metadata, if anything. */
export type UriProblem = 'not_absolute' | 'fragment' | 'credentials' | 'not_https';

/**
 * Redirect URIs are compared exactly, so they carry no fragment; no URI carries credentials; in
 * production only https, or, where `nativeLoopback` allows it, http on a loopback address.
 */
export function uriProblem(value: string, { production, nativeLoopback }: { production: boolean; nativeLoopback: boolean }): UriProblem | undefined {
  const u = URL.parse(value);
  if (!u) return 'not_absolute';
  if (u.hash) return 'fragment';
  if (u.username || u.password) return 'credentials';
  const loopback = u.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname);
  if (production && u.protocol !== 'https:' && !(nativeLoopback && loopback)) return 'not_https';
  return undefined;
}

/**
 * The first URI in the metadata that breaks uriProblem's rules, as `<property>: <why>`. Native apps
 * may use http on a loopback address for their redirect URIs.
 */
export function clientUriProblem(metadata: Record<string, unknown>, production: boolean): string | undefined {
  const native = metadata.application_type === 'native';
  const check = (value: unknown, label: string, redirect: boolean): string | undefined => {
    if (value === undefined) return undefined;
    const problem = uriProblem(String(value), { production, nativeLoopback: redirect && native });
    if (problem === 'not_absolute') return `${label}: must be an absolute URL`;
    if (problem === 'fragment') return `${label}: must not contain a fragment`;
    if (problem === 'credentials') return `${label}: must not contain credentials`;
    if (problem === 'not_https') return `${label}: must use https${redirect ? ' (native apps may use http on a loopback address)' : ''}`;
    return undefined;
  };
  const checks: [unknown, string, boolean][] = [
    ...((metadata.redirect_uris as unknown[] | undefined) ?? []).map((u): [unknown, string, boolean] => [u, 'redirect_uris', true]),
    ...((metadata.post_logout_redirect_uris as unknown[] | undefined) ?? []).map((u): [unknown, string, boolean] => [u, 'post_logout_redirect_uris', true]),
    [metadata.backchannel_logout_uri, 'backchannel_logout_uri', false],
    [metadata.backchannel_client_notification_endpoint, 'backchannel_client_notification_endpoint', false],
    ...['logo_uri', 'policy_uri', 'jwks_uri', 'kapija_sector_identifier_uri'].map((key): [unknown, string, boolean] => [metadata[key], key, false]),
  ];
  for (const [value, label, redirect] of checks) {
    const problem = check(value, label, redirect);
    if (problem) return problem;
  }
  return undefined;
}

/* ---- zod schemas of every property an administrator may set ---- */

const LANGS = ['sr-Cyrl', 'sr-Latn', 'en'] as const;
const text = (max: number) => z.string().trim().min(1).max(max);
const url = z.string().trim().max(2000).refine((v) => URL.canParse(v), 'must be an absolute URL');

export const clientIdSchema = z.string().regex(CLIENT_ID, 'letters, digits, . _ ~ -; at most 128');

export const purposeTexts = z.strictObject(Object.fromEntries(LANGS.map((l) => [l, text(500).optional()])) as Record<(typeof LANGS)[number], z.ZodOptional<z.ZodString>>);

/** Every editable client property. Optional here; create and update (admin/schemas.ts) add their own rules. */
export const clientFields = {
  client_name: text(200),
  'client_name#sr-Cyrl': text(200),
  'client_name#sr-Latn': text(200),
  'client_name#en': text(200),
  logo_uri: url,
  policy_uri: url,
  /** For each claim the service may ask, why: shown on the consent page. */
  kapija_claim_purposes: z.record(z.string().regex(CLAIM_NAME, 'claim names are lower-case'), purposeTexts),
  application_type: z.enum(['web', 'native']),
  redirect_uris: z.array(url).max(20),
  post_logout_redirect_uris: z.array(url).max(20),
  backchannel_logout_uri: url,
  scope: z
    .string()
    .trim()
    .max(1000)
    .refine((s) => s.split(' ').every((t) => SCOPE_TOKEN.test(t)), 'space-separated scope names'),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT, CIBA_GRANT, 'urn:ietf:params:oauth:grant-type:token-exchange', PRE_AUTHORIZED_CODE_GRANT])).min(1),
  /** CIBA: the service polls the token endpoint (poll) or is told when to (ping); push is not offered. */
  backchannel_token_delivery_mode: z.enum(['poll', 'ping']),
  /** CIBA ping: where Kapija notifies the service (https; the engine refuses anything else). */
  backchannel_client_notification_endpoint: url,
  /** CIBA: the alg the service signs its backchannel authentication requests with; when set, unsigned requests are refused. */
  backchannel_authentication_request_signing_alg: z.enum(['RS256', 'PS256', 'ES256', 'EdDSA']),
  /** CIBA: the service may name the citizen by a JMBG verified by identity proofing (login_hint). */
  kapija_ciba_jmbg_hint: z.boolean(),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20) }),
  jwks_uri: url,
  /** The lowest level of assurance the service accepts: low, substantial or high. */
  kapija_min_acr: z.enum(['low', 'substantial', 'high']),
  /** Stored for pairwise subject identifiers; not yet used by the engine. */
  kapija_sector_identifier_uri: url,
  /** pairwise (default): a sub per sector; public: the account id. */
  subject_type: z.enum(['pairwise', 'public']),
  /** Services grouped under one sector share the pairwise sub (a host name). */
  kapija_sector: z.string().regex(SECTOR, 'a host name'),
  kapija_access_token_ttl: z.number().int().min(30).max(24 * 3600),
  kapija_refresh_token_ttl: z.number().int().min(60).max(365 * 24 * 3600),
  kapija_resource_server: z.boolean(),
  /** The service lets a representative sign in for a citizen who gave them a mandate (`act` claim). */
  kapija_accepts_representation: z.boolean(),
  /** A wallet (a public client): it may receive Kapija's PID (wallet/issuer/), and nothing else. */
  kapija_wallet: z.boolean(),
} as const;

/* ---- the engine's extraClientMetadata ---- */

/** The kapija_* and localised properties the engine keeps in a client's metadata(). */
export const EXTRA_CLIENT_PROPERTIES = [
  'kapija_min_acr',
  'kapija_resource_server',
  'kapija_first_party',
  'kapija_sector',
  'client_name#sr-Cyrl',
  'client_name#sr-Latn',
  'client_name#en',
  'kapija_claim_purposes',
  'kapija_sector_identifier_uri',
  'kapija_access_token_ttl',
  'kapija_refresh_token_ttl',
  'kapija_accepts_representation',
  'kapija_wallet',
  'kapija_ciba_jmbg_hint',
];

/**
 * The engine's check of a stored client's extra property (its acr as an eIDAS URI, as stored). It
 * throws a TypeError, and oidc-provider then refuses to load the client.
 */
export function validateExtraClientProperty(key: string, value: unknown): void {
  if (value === undefined) return;
  if ((key === 'kapija_access_token_ttl' || key === 'kapija_refresh_token_ttl') && !(Number.isInteger(value) && (value as number) > 0)) {
    throw new TypeError(`${key} must be a positive integer`);
  }
  if (key === 'kapija_claim_purposes' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new TypeError('kapija_claim_purposes must be an object');
  }
  if (key === 'kapija_min_acr' && !Object.values(ACR).includes(value as never)) {
    throw new TypeError('kapija_min_acr must be one of the configured acr values');
  }
  if (key === 'kapija_sector' && (typeof value !== 'string' || !isSector(value))) {
    throw new TypeError('kapija_sector must be a host name');
  }
  if ((key === 'kapija_resource_server' || key === 'kapija_first_party' || key === 'kapija_accepts_representation' || key === 'kapija_wallet' || key === 'kapija_ciba_jmbg_hint') && typeof value !== 'boolean') {
    throw new TypeError(`${key} must be a boolean`);
  }
}
