/**
 * The issuers whose PIDs Kapija accepts for wallet sign-in, and the level each one declares for its
 * credentials (the level of identity proofing behind the PID and of the wallet units it issues to).
 * Operator-configured issuers come from WALLET_TRUSTED_ISSUERS; Kapija's own issuer is added by
 * composition (app.ts), its keys read in-process.
 */
import type { JsonWebKey } from 'node:crypto';
import type { ConfiguredTrustedIssuer } from '../../config.js';

export interface TrustedIssuer {
  issuer: string;
  level: 'substantial' | 'high';
  jwks(): Promise<{ keys: JsonWebKey[] }>;
  /**
   * An issuer in this process (Kapija's own) answers a credential's status entry itself (0 valid,
   * anything else revoked) from its registry as it is now, instead of a status list token fetched
   * from `uri`.
   */
  status?(uri: string, idx: number): Promise<number>;
}

/** Fetches a URL (the global fetch, or one a test or the composition injects). */
export type WalletFetch = (url: string, init?: { headers?: Record<string, string>; signal?: AbortSignal }) => Promise<Response>;

/** How long a fetched jwks_uri is kept before it is fetched again. */
const JWKS_CACHE_MS = 5 * 60 * 1000;
const FETCH_TIMEOUT_MS = 5000;

/** A configured issuer as a TrustedIssuer: inline keys, or its jwks_uri fetched (and cached five minutes). */
export function configuredIssuer(entry: ConfiguredTrustedIssuer, fetcher: WalletFetch, now: () => number = Date.now): TrustedIssuer {
  let cached: { at: number; jwks: { keys: JsonWebKey[] } } | undefined;
  return {
    issuer: entry.issuer,
    level: entry.level,
    async jwks() {
      if (entry.jwks) return { keys: [...entry.jwks.keys] };
      if (cached && now() - cached.at < JWKS_CACHE_MS) return cached.jwks;
      const res = await fetcher(entry.jwksUri!, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`jwks_uri of ${entry.issuer} answered ${res.status}`);
      const body = (await res.json()) as { keys?: unknown };
      if (!Array.isArray(body.keys)) throw new Error(`jwks_uri of ${entry.issuer} is not a JWKS`);
      cached = { at: now(), jwks: { keys: body.keys as JsonWebKey[] } };
      return cached.jwks;
    },
  };
}

/** The trusted issuers by identifier: the configured ones and those the composition adds. */
export function trustedIssuers(configured: readonly ConfiguredTrustedIssuer[], fetcher: WalletFetch, extra: readonly TrustedIssuer[] = []): Map<string, TrustedIssuer> {
  const out = new Map<string, TrustedIssuer>();
  for (const t of [...extra, ...configured.map((c) => configuredIssuer(c, fetcher))]) {
    if (out.has(t.issuer)) throw new Error(`trusted issuer ${t.issuer} is listed twice`);
    out.set(t.issuer, t);
  }
  return out;
}
