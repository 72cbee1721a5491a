/**
 * Request bodies of the admin API and console, as zod schemas. Client metadata is checked here for
 * shape and Kapija's rules (exact redirect URIs, https in production); the engine then parses it too.
 */
import { z } from 'zod';

const LANGS = ['sr-Cyrl', 'sr-Latn', 'en'] as const;
const text = (max: number) => z.string().trim().min(1).max(max);
const url = z.string().trim().max(2000).refine((v) => URL.canParse(v), 'must be an absolute URL');
const scopeToken = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export const purposeTexts = z.strictObject(Object.fromEntries(LANGS.map((l) => [l, text(500).optional()])) as Record<(typeof LANGS)[number], z.ZodOptional<z.ZodString>>);

/** Every editable client property. Optional here; create and update add their own rules. */
export const clientFields = {
  client_name: text(200),
  'client_name#sr-Cyrl': text(200),
  'client_name#sr-Latn': text(200),
  'client_name#en': text(200),
  logo_uri: url,
  policy_uri: url,
  /** For each claim the service may ask, why: shown on the consent page. */
  kapija_claim_purposes: z.record(z.string().regex(/^[a-z_]{1,64}$/, 'claim names are lower-case'), purposeTexts),
  application_type: z.enum(['web', 'native']),
  redirect_uris: z.array(url).max(20),
  post_logout_redirect_uris: z.array(url).max(20),
  backchannel_logout_uri: url,
  scope: z
    .string()
    .trim()
    .max(1000)
    .refine((s) => s.split(' ').every((t) => scopeToken.test(t)), 'space-separated scope names'),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials'])).min(1),
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
  kapija_sector: z.string().regex(/^[a-z0-9.-]{1,253}(:\d{1,5})?$/i, 'a host name'),
  kapija_access_token_ttl: z.number().int().min(30).max(24 * 3600),
  kapija_refresh_token_ttl: z.number().int().min(60).max(365 * 24 * 3600),
  kapija_resource_server: z.boolean(),
} as const;

type Fields = typeof clientFields;

export const clientCreateBody = z.strictObject({
  client_id: z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/, 'letters, digits, . _ ~ -; at most 128'),
  ...(Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.optional()])) as { [K in keyof Fields]: z.ZodOptional<Fields[K]> }),
});

/** A partial update; `null` removes a property. */
export const clientUpdateBody = z.strictObject(
  Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.nullable().optional()])) as {
    [K in keyof Fields]: z.ZodOptional<z.ZodNullable<Fields[K]>>;
  },
);

export type ClientCreateBody = z.infer<typeof clientCreateBody>;
export type ClientUpdateBody = z.infer<typeof clientUpdateBody>;

export const sessionsEndBody = z.strictObject({ sessions: z.array(z.string().min(1).max(255)).min(1).max(500) });

export const auditQuery = z.object({
  chain: z.string().max(100).optional(),
  actor: z.string().max(64).optional(),
  action: z.string().max(100).optional(),
  subject: z.string().max(36).optional(),
  client: z.string().max(255).optional(),
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
  format: z.enum(['csv', 'json']).optional(),
});

export type AuditQuery = z.infer<typeof auditQuery>;
