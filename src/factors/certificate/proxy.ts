/**
 * The client certificate as the TLS-terminating proxy forwards it.
 *
 * nginx terminates TLS with `ssl_verify_client optional_no_ca` (it asks for a certificate, makes the
 * client prove it holds the private key, and leaves every other judgement to Kapija) and forwards
 * `$ssl_client_escaped_cert` (the URL-escaped PEM) in `X-Kapija-Client-Cert`.
 *
 * How Kapija knows the header came from the proxy: nginx also sends a shared secret
 * (CERT_PROXY_SECRET, at least 32 characters) in `X-Kapija-Proxy-Secret`, compared in constant
 * time. A request whose secret is missing or wrong has both headers dropped, whatever it claims: it
 * reached Kapija without passing through the proxy (or through a proxy that was not given the
 * secret), so for Kapija it carries no certificate. `proxy_set_header` replaces any header of the
 * same name the client sent, so a client of the proxy cannot smuggle either header through it.
 * A shared secret was chosen over a dedicated listener because it protects every deployment shape
 * Kapija has (one port, node:cluster workers, several instances behind one or more proxies) without
 * another port to open, firewall and monitor; a network policy letting only the proxy reach Kapija
 * remains the first line (docs in README: "Signing in with the ID card").
 */
import type { IncomingHttpHeaders } from 'node:http';
import { constantTimeEqual } from '../../security/crypto.js';

export const CLIENT_CERT_HEADER = 'x-kapija-client-cert';
export const PROXY_SECRET_HEADER = 'x-kapija-proxy-secret';

/** The minimum length of CERT_PROXY_SECRET. */
export const PROXY_SECRET_MIN = 32;

/** Largest forwarded header accepted: an escaped PEM of a certificate with a 4096-bit RSA key is well under this. */
const MAX_HEADER = 16 * 1024;

export type ForwardedCertificate =
  /** The proxy vouched for the request and the client presented no certificate. */
  | { readonly kind: 'none' }
  /** The proxy vouched for the request; `pem` is what it forwarded (it may still be malformed). */
  | { readonly kind: 'certificate'; readonly pem: string }
  /** Certificate headers without the proxy's secret: ignored (a forgery, or a proxy misconfigured). */
  | { readonly kind: 'unauthenticated' };

const single = (v: string | string[] | undefined) => (Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v);

/**
 * Reads the proxy's headers. Only with the right secret is a certificate returned.
 */
export function readForwardedCertificate(headers: IncomingHttpHeaders, proxySecret: string): ForwardedCertificate {
  const secret = single(headers[PROXY_SECRET_HEADER]);
  const raw = headers[CLIENT_CERT_HEADER];
  if (secret === undefined || !constantTimeEqual(secret, proxySecret)) {
    return raw === undefined && headers[PROXY_SECRET_HEADER] === undefined ? { kind: 'none' } : { kind: 'unauthenticated' };
  }
  const value = single(raw);
  if (raw !== undefined && value === undefined) return { kind: 'certificate', pem: '' };
  if (value === undefined || value === '' || value === '-') return { kind: 'none' };
  if (value.length > MAX_HEADER) return { kind: 'certificate', pem: '' };
  let pem: string;
  try {
    pem = decodeURIComponent(value);
  } catch {
    pem = '';
  }
  return { kind: 'certificate', pem };
}

/** Removes the proxy's headers, so that nothing after this middleware reads them unchecked. */
export function stripForwardedHeaders(headers: IncomingHttpHeaders): void {
  delete headers[CLIENT_CERT_HEADER];
  delete headers[PROXY_SECRET_HEADER];
}
