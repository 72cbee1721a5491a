/**
 * Kapija's configuration: one zod schema over the environment, validated once at start.
 * This is the only module that reads `process.env`; everything else receives the frozen {@link Config}.
 */
import os from 'node:os';
import path from 'node:path';
import type { JsonWebKey } from 'node:crypto';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const schema = z.object({
  /** development (default), test or production; production refuses unsafe defaults. */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /** TCP port of the HTTP server. */
  PORT: int(0, 65535).default(3000),
  /** Address to bind; 0.0.0.0 in containers. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Public base URL; tokens carry it as `iss`. https in production. */
  ISSUER: z.url({ protocol: /^https?$/ }).default('http://localhost:3000'),
  /** postgres://… for PostgreSQL; unset means the embedded SQLite file in DATA_DIR. */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  /** Maximum PostgreSQL connections per process. */
  DATABASE_POOL_MAX: int(1, 200).default(10),
  /** Folder for the SQLite file, the development master key and the development outbox. */
  DATA_DIR: z.string().min(1).default('./data'),
  /** 32 random bytes, base64: encrypts keys and secrets at rest. Required in production. */
  MASTER_KEY: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded')
    .optional(),
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** argon2id memory in KiB (OWASP minimum 19456). */
  ARGON2_MEMORY_KIB: int(19456, 4 * 1024 * 1024).default(19456),
  /** argon2id iterations (OWASP minimum 2 at 19 MiB). */
  ARGON2_TIME_COST: int(2, 100).default(2),
  /** argon2id lanes. */
  ARGON2_PARALLELISM: int(1, 16).default(1),
  /** Trust X-Forwarded-* from a reverse proxy (TLS terminated in front of Kapija). */
  TRUST_PROXY: bool.default(false),
  /** With TRUST_PROXY: how many proxies append to X-Forwarded-For; the client is the address the outermost appended. */
  TRUST_PROXY_HOPS: int(1, 10).default(1),
  /** Absolute session lifetime in seconds (NIST 800-63B AAL2: 12 hours). */
  SESSION_TTL_SECONDS: int(60, 30 * 24 * 3600).default(12 * 3600),
  /** Sign-in session ends after this many seconds without use (NIST 800-63B AAL2: 30 minutes). */
  SESSION_IDLE_SECONDS: int(1, 24 * 3600).default(30 * 60),
  /** Access token lifetime in seconds. */
  ACCESS_TOKEN_TTL_SECONDS: int(30, 24 * 3600).default(600),
  /** Refresh token lifetime in seconds (offline_access). */
  REFRESH_TOKEN_TTL_SECONDS: int(60, 365 * 24 * 3600).default(14 * 24 * 3600),
  /** Seconds between purges of expired protocol rows. */
  PURGE_INTERVAL_SECONDS: int(10, 24 * 3600).default(600),
  /**
   * Let back-channel logout and jwks_uri fetches reach loopback and private addresses, which
   * oidc-provider refuses by default. On in development unless set false (a relying party on localhost); off in test; refused in production.
   */
  ALLOW_PRIVATE_NETWORK_FETCH: bool.optional(),
  /** Seconds within which both factors must have been proven for an account change (re-authentication). */
  REAUTH_SECONDS: int(30, 3600).default(300),
  /** Idle timeout of the account portal, seconds (NIST 800-63B AAL2: 30 minutes). */
  PORTAL_IDLE_SECONDS: int(60, 24 * 3600).default(1800),
  /** Validity of a PID issued to a wallet, days (short: a wallet fetches a fresh one; revocation covers the rest). */
  PID_VALIDITY_DAYS: int(1, 365).default(30),
  /** issuing_authority in every PID Kapija issues. */
  PID_ISSUING_AUTHORITY: z.string().trim().min(2).max(200).default('Kapija'),
  /** Require a second factor for every sign-in (on by default; off only for closed test deployments). Refused off in production. */
  REQUIRE_SECOND_FACTOR: bool.default(true),
  /** WebAuthn relying-party id: the issuer's host name unless set (a registrable suffix of it). */
  WEBAUTHN_RP_ID: z.string().regex(/^[a-z0-9.-]+$/i, 'must be a host name').optional(),
  /** Origins accepted in WebAuthn ceremonies, comma-separated; the issuer's origin unless set. */
  WEBAUTHN_ORIGINS: z.string().optional(),
  /** AAGUIDs of authenticator models counted as hardware keys (eIDAS high) without FIDO metadata, comma-separated. */
  WEBAUTHN_HWK_AAGUIDS: z.string().optional(),
  /**
   * Lowest level of assurance for the administration console and the admin API: low, substantial or high (a security key).
   * high unless set, except in development: substantial (any second factor), and the console says so on every page.
   */
  ADMIN_MIN_ACR: z.enum(['low', 'substantial', 'high']).optional(),
  /** Folder of the operator's footer pages (privacy, accessibility, help), one Markdown file per page and language; a file missing there falls back to the shipped content/. */
  CONTENT_DIR: z.string().min(1).optional(),
  /** Default language of pages: sr-Cyrl, sr-Latn or en. */
  DEFAULT_LOCALE: z.enum(['sr-Cyrl', 'sr-Latn', 'en']).default('sr-Cyrl'),
  /** smtp:// or smtps:// URL of the mail relay; unset writes each mail to DATA_DIR/outbox (development and test only). */
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  /** Sender of Kapija's mail, e.g. "Kapija <no-reply@kapija.gov.rs>"; default no-reply@ the issuer's host. */
  MAIL_FROM: z.string().min(3).max(200).optional(),
  /** Separate port for /metrics, /healthz and /readyz (then /metrics is not served on PORT); 9100 when unset in production. */
  METRICS_PORT: int(1, 65535).optional(),
  /** Worker processes sharing PORT (node:cluster); one per core in production, 1 otherwise. */
  WEB_CONCURRENCY: int(1, 256).optional(),
  /** Days between automatic rotations of the signing keys. */
  KEY_ROTATION_DAYS: int(1, 3650).default(90),
  /** Seconds a new signing key is published in JWKS before it signs (relying parties' cache time). */
  KEY_ACTIVATION_DELAY_SECONDS: int(0, 7 * 24 * 3600).default(3600),
  /** Open data: daily counts below this are published as suppressed, never as their value. */
  OPEN_DATA_MIN_COUNT: int(1, 1_000_000).default(10),
  /** PEM bundle file of the eID certificate roots and intermediates; set, it turns on ID-card (TLS client certificate) sign-in and needs CERT_PROXY_SECRET. */
  CERT_TRUST_ANCHORS: z.string().min(1).optional(),
  /** URLs of the eID CAs' certificate revocation lists, comma-separated, fetched by `kapija certs refresh`. */
  CERT_CRL_URLS: z.string().optional(),
  /** Secret (32+ characters) the TLS proxy sends in X-Kapija-Proxy-Secret with the client certificate; without it the certificate header is ignored. */
  CERT_PROXY_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Origin of the host name of its own on which nginx asks for the ID card's certificate (e.g. https://eid.kapija.gov.rs); the server needs it with CERT_TRUST_ANCHORS (`kapija certs refresh` does not). */
  CERT_SIGNIN_URL: z.string().optional(),
  /** Issuers of PIDs accepted for wallet sign-in besides Kapija's own: a JSON array of {issuer, level: substantial|high, jwks | jwks_uri}. */
  WALLET_TRUSTED_ISSUERS: z.string().optional(),
});

/** An operator-added issuer of PIDs (WALLET_TRUSTED_ISSUERS): its keys given inline or by URL. */
export interface ConfiguredTrustedIssuer {
  readonly issuer: string;
  readonly level: 'substantial' | 'high';
  readonly jwks?: { readonly keys: readonly JsonWebKey[] };
  readonly jwksUri?: string;
}

const trustedIssuerSchema = z
  .object({
    issuer: z.string().url(),
    level: z.enum(['substantial', 'high']),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    jwks_uri: z.string().url().optional(),
  })
  .strict()
  .refine((i) => (i.jwks === undefined) !== (i.jwks_uri === undefined), 'each issuer needs exactly one of jwks and jwks_uri');

function parseTrustedIssuers(raw: string | undefined, production: boolean): readonly ConfiguredTrustedIssuer[] {
  if (raw === undefined) return Object.freeze([]);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError('WALLET_TRUSTED_ISSUERS: not JSON (a JSON array of {issuer, level, jwks | jwks_uri})');
  }
  const parsed = z.array(trustedIssuerSchema).safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`WALLET_TRUSTED_ISSUERS: ${issue.path.join('.')} ${issue.message}`.trim());
  }
  const seen = new Set<string>();
  return Object.freeze(
    parsed.data.map((i) => {
      if (seen.has(i.issuer)) throw new ConfigError(`WALLET_TRUSTED_ISSUERS: ${i.issuer} is listed twice`);
      seen.add(i.issuer);
      if (production && (!i.issuer.startsWith('https://') || (i.jwks_uri && !i.jwks_uri.startsWith('https://')))) {
        throw new ConfigError(`WALLET_TRUSTED_ISSUERS: ${i.issuer} must be https when NODE_ENV=production`);
      }
      return Object.freeze({
        issuer: i.issuer,
        level: i.level,
        ...(i.jwks ? { jwks: { keys: i.jwks.keys as JsonWebKey[] } } : {}),
        ...(i.jwks_uri ? { jwksUri: i.jwks_uri } : {}),
      });
    }),
  );
}

export type Locale = 'sr-Cyrl' | 'sr-Latn' | 'en';

/** METRICS_PORT when it is not set in production. */
export const PRODUCTION_METRICS_PORT = 9100;

export interface Config {
  readonly env: 'development' | 'test' | 'production';
  readonly port: number;
  readonly host: string;
  readonly issuer: string;
  readonly database:
    | { readonly client: 'sqlite'; readonly filename: string }
    | { readonly client: 'pg'; readonly url: string; readonly poolMax: number };
  readonly dataDir: string;
  /** Undefined means: development key file in dataDir (never in production). */
  readonly masterKey: Buffer | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly argon2: { readonly memoryCost: number; readonly timeCost: number; readonly parallelism: number };
  readonly trustProxy: boolean;
  /** Proxies in front of Kapija that each append to X-Forwarded-For (used only with trustProxy). */
  readonly trustProxyHops: number;
  readonly ttl: { readonly session: number; readonly sessionIdle: number; readonly accessToken: number; readonly refreshToken: number };
  readonly purgeIntervalSeconds: number;
  readonly allowPrivateNetworkFetch: boolean;
  readonly defaultLocale: Locale;
  /** The operator's folder of footer pages (content/*.md overrides); undefined: the shipped ones only. */
  readonly contentDir: string | undefined;
  readonly adminMinAcr: 'low' | 'substantial' | 'high';
  readonly requireSecondFactor: boolean;
  readonly reauthSeconds: number;
  readonly portalIdleSeconds: number;
  /** The PID issuer (src/wallet/issuer/): validity of a credential (seconds) and its issuing_authority. */
  readonly pid: { readonly validitySeconds: number; readonly issuingAuthority: string };
  readonly webauthn: {
    readonly rpId: string;
    readonly rpName: string;
    readonly origins: readonly string[];
    /** Lower-case AAGUIDs counted as hardware keys whatever the metadata says. */
    readonly hwkAaguids: readonly string[];
  };
  /** Outgoing mail: SMTP relay, or (no smtpUrl, outside production) .eml files in dataDir/outbox. */
  readonly mail: { readonly smtpUrl: string | undefined; readonly from: string };
  /** Undefined (development and test only): /metrics is served on the main port. */
  readonly metricsPort: number | undefined;
  readonly webConcurrency: number;
  readonly keyRotation: { readonly everyDays: number; readonly activationDelaySeconds: number };
  readonly openData: { readonly minCount: number };
  /** ID-card sign-in (TLS client certificates through the proxy); undefined when CERT_TRUST_ANCHORS is unset. */
  readonly certificate:
    | {
        readonly trustAnchorsFile: string;
        readonly crlUrls: readonly string[];
        readonly proxySecret: string;
        /** The certificate host's origin (CERT_SIGNIN_URL); without it the card is not offered (the CLI still refreshes CRLs). */
        readonly signInUrl: string | undefined;
      }
    | undefined;
  /** Wallet sign-in (OpenID4VP): the issuers of PIDs the operator added (Kapija's own is added by composition). */
  readonly wallet: { readonly trustedIssuers: readonly ConfiguredTrustedIssuer[] };
}

/** A configuration problem, reported as one line naming the variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Validates the environment and returns a frozen configuration.
 * @throws ConfigError naming the first wrong variable, or a production-unsafe setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input = Object.fromEntries(
    Object.keys(schema.shape).flatMap((k) => (env[k] === undefined || env[k] === '' ? [] : [[k, env[k]]])),
  );
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${issue.path.join('.')}: ${issue.message}`);
  }
  const e = parsed.data;
  const issuer = e.ISSUER.replace(/\/+$/, '');

  if (e.NODE_ENV === 'production') {
    if (!e.MASTER_KEY) throw new ConfigError('MASTER_KEY: required when NODE_ENV=production');
    if (!issuer.startsWith('https://')) throw new ConfigError('ISSUER: must be https when NODE_ENV=production');
    if (!e.DATABASE_URL) throw new ConfigError('DATABASE_URL: a PostgreSQL URL is required when NODE_ENV=production');
    if (e.ALLOW_PRIVATE_NETWORK_FETCH) {
      throw new ConfigError('ALLOW_PRIVATE_NETWORK_FETCH: must not be set when NODE_ENV=production');
    }
    if (!e.REQUIRE_SECOND_FACTOR) throw new ConfigError('REQUIRE_SECOND_FACTOR: must not be false when NODE_ENV=production');
  }

  const dataDir = path.resolve(e.DATA_DIR);
  const issuerUrl = new URL(issuer);
  const origins = (e.WEBAUTHN_ORIGINS ?? issuerUrl.origin).split(',').map((o) => o.trim()).filter(Boolean);
  for (const o of origins) {
    if (!/^https?:\/\/[^/]+$/.test(o)) throw new ConfigError(`WEBAUTHN_ORIGINS: "${o}" is not an origin (scheme://host[:port])`);
  }
  const hwkAaguids = (e.WEBAUTHN_HWK_AAGUIDS ?? '').split(',').map((a) => a.trim().toLowerCase()).filter(Boolean);
  for (const a of hwkAaguids) {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(a)) throw new ConfigError(`WEBAUTHN_HWK_AAGUIDS: "${a}" is not an AAGUID`);
    if (/^[0-]+$/.test(a)) throw new ConfigError('WEBAUTHN_HWK_AAGUIDS: the all-zero AAGUID names no authenticator model');
  }
  const crlUrls = (e.CERT_CRL_URLS ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  for (const u of crlUrls) {
    if (!/^https?:\/\/[^\s]+$/.test(u) || !URL.canParse(u)) throw new ConfigError(`CERT_CRL_URLS: "${u}" is not an http(s) URL`);
  }
  if (e.CERT_TRUST_ANCHORS !== undefined && e.CERT_PROXY_SECRET === undefined) {
    throw new ConfigError('CERT_PROXY_SECRET: required with CERT_TRUST_ANCHORS (the TLS proxy proves with it that it forwarded the certificate)');
  }
  const certSignInUrl = e.CERT_SIGNIN_URL?.replace(/\/+$/, '');
  if (certSignInUrl !== undefined) {
    if (!/^https?:\/\/[^/?#\s]+$/.test(certSignInUrl) || !URL.canParse(certSignInUrl)) throw new ConfigError(`CERT_SIGNIN_URL: "${certSignInUrl}" is not an origin (scheme://host[:port])`);
    if (e.NODE_ENV === 'production' && !certSignInUrl.startsWith('https://')) throw new ConfigError('CERT_SIGNIN_URL: must be https when NODE_ENV=production');
    if (new URL(certSignInUrl).hostname === issuerUrl.hostname) throw new ConfigError('CERT_SIGNIN_URL: must be a host name of its own, not the ISSUER\'s (the browser asks for a certificate only there)');
  }
  return Object.freeze({
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    issuer,
    database: Object.freeze(
      e.DATABASE_URL
        ? { client: 'pg' as const, url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX }
        : { client: 'sqlite' as const, filename: path.join(dataDir, 'kapija.sqlite') },
    ),
    dataDir,
    masterKey: e.MASTER_KEY ? Buffer.from(e.MASTER_KEY, 'base64') : undefined,
    logLevel: e.LOG_LEVEL,
    argon2: Object.freeze({
      memoryCost: e.ARGON2_MEMORY_KIB,
      timeCost: e.ARGON2_TIME_COST,
      parallelism: e.ARGON2_PARALLELISM,
    }),
    trustProxy: e.TRUST_PROXY,
    trustProxyHops: e.TRUST_PROXY_HOPS,
    ttl: Object.freeze({
      session: e.SESSION_TTL_SECONDS,
      sessionIdle: e.SESSION_IDLE_SECONDS,
      accessToken: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshToken: e.REFRESH_TOKEN_TTL_SECONDS,
    }),
    purgeIntervalSeconds: e.PURGE_INTERVAL_SECONDS,
    allowPrivateNetworkFetch: e.ALLOW_PRIVATE_NETWORK_FETCH ?? e.NODE_ENV === 'development',
    defaultLocale: e.DEFAULT_LOCALE,
    contentDir: e.CONTENT_DIR === undefined ? undefined : path.resolve(e.CONTENT_DIR),
    adminMinAcr: e.ADMIN_MIN_ACR ?? (e.NODE_ENV === 'development' ? 'substantial' : 'high'),
    requireSecondFactor: e.REQUIRE_SECOND_FACTOR,
    reauthSeconds: e.REAUTH_SECONDS,
    portalIdleSeconds: e.PORTAL_IDLE_SECONDS,
    pid: Object.freeze({ validitySeconds: e.PID_VALIDITY_DAYS * 24 * 3600, issuingAuthority: e.PID_ISSUING_AUTHORITY }),
    webauthn: Object.freeze({
      rpId: e.WEBAUTHN_RP_ID ?? issuerUrl.hostname,
      rpName: 'Kapija',
      origins: Object.freeze(origins),
      hwkAaguids: Object.freeze(hwkAaguids),
    }),
    mail: Object.freeze({ smtpUrl: e.SMTP_URL, from: e.MAIL_FROM ?? `Kapija <no-reply@${issuerUrl.hostname}>` }),
    // In production the metrics (request counts, sign-in outcomes) are never on the public port.
    metricsPort: e.METRICS_PORT ?? (e.NODE_ENV === 'production' ? PRODUCTION_METRICS_PORT : undefined),
    webConcurrency: e.WEB_CONCURRENCY ?? (e.NODE_ENV === 'production' ? os.availableParallelism() : 1),
    keyRotation: Object.freeze({ everyDays: e.KEY_ROTATION_DAYS, activationDelaySeconds: e.KEY_ACTIVATION_DELAY_SECONDS }),
    openData: Object.freeze({ minCount: e.OPEN_DATA_MIN_COUNT }),
    certificate:
      e.CERT_TRUST_ANCHORS === undefined
        ? undefined
        : Object.freeze({ trustAnchorsFile: path.resolve(e.CERT_TRUST_ANCHORS), crlUrls: Object.freeze(crlUrls), proxySecret: e.CERT_PROXY_SECRET!, signInUrl: certSignInUrl }),
    wallet: Object.freeze({ trustedIssuers: parseTrustedIssuers(e.WALLET_TRUSTED_ISSUERS, e.NODE_ENV === 'production') }),
  });
}
