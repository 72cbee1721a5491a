/**
 * Sign-in with the eID card's qualified certificate (TLS client certificate), the layer below the
 * sign-in route: what the proxy forwarded (proxy.ts: the header and the shared secret that vouches
 * for it), whether Kapija accepts it (validate.ts: chain to the operator's trust anchors, validity,
 * key usage, revocation by stored CRLs, JMBG from the subject), and the CRLs themselves (crl.ts,
 * crl-source.ts, store/certificate-crls.ts, refreshed by `kapija certs refresh`).
 *
 * A certificate sign-in counts as possession of the card and knowledge of its PIN: amr `sc` and
 * `pin` (RFC 8176), which is `CERTIFICATE_AMR` below.
 */
import type { Config } from '../../config.js';
import type { Amr } from '../../assurance/levels.js';
import type { CertificateCrlRepository } from '../../store/certificate-crls.js';
import { loadTrustAnchors, type TrustAnchors } from './anchors.js';
import { createStoredCrlSource } from './crl-source.js';
import { createCertificateValidator, type CertificateRefusal, type CertificateValidator } from './validate.js';

export { TrustAnchorError, fingerprintOf, loadTrustAnchors, parseTrustAnchors, type TrustAnchor, type TrustAnchors } from './anchors.js';
export { CrlError, normaliseSerial, verifyCrl, verifyCrlSignature, type VerifiedCrl } from './crl.js';
export { createStoredCrlSource } from './crl-source.js';
export {
  CLIENT_CERT_HEADER,
  PROXY_SECRET_HEADER,
  PROXY_SECRET_MIN,
  readForwardedCertificate,
  stripForwardedHeaders,
  type ForwardedCertificate,
} from './proxy.js';
export {
  CERTIFICATE_REFUSALS,
  createCertificateValidator,
  type CertificateCheck,
  type CertificateIdentity,
  type CertificateRefusal,
  type CertificateValidator,
  type CrlSource,
} from './validate.js';

/** The authentication methods a certificate sign-in proves: the smart card and its PIN. */
export const CERTIFICATE_AMR: readonly Amr[] = Object.freeze<Amr[]>(['sc', 'pin']);

export interface CertificateSignIn {
  readonly anchors: TrustAnchors;
  readonly validator: CertificateValidator;
  /** CERT_PROXY_SECRET, for http/client-certificate.ts's middleware. */
  readonly proxySecret: string;
}

/**
 * Everything certificate sign-in needs, from the configuration and the CRL repository
 * (store/certificate-crls.ts); undefined when it is not configured (CERT_TRUST_ANCHORS unset).
 * @throws TrustAnchorError when the bundle cannot be read or is not a set of CA certificates
 */
export function createCertificateSignIn(
  config: Pick<Config, 'certificate'>,
  crls: CertificateCrlRepository,
  now?: () => Date,
): CertificateSignIn | undefined {
  if (!config.certificate) return undefined;
  const anchors = loadTrustAnchors(config.certificate.trustAnchorsFile);
  const validator = createCertificateValidator({ anchors, crls: createStoredCrlSource(crls, anchors), ...(now ? { now } : {}) });
  return { anchors, validator, proxySecret: config.certificate.proxySecret };
}

/** The catalogue key explaining a refusal to the citizen (all three languages); 'none' when no certificate arrived. */
export function refusalMessageKey(reason: CertificateRefusal | 'none'): `certificate.refused.${CertificateRefusal | 'none'}` {
  return `certificate.refused.${reason}`;
}
