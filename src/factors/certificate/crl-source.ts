/**
 * The validator's CRLs, read from the database (store/certificate-crls.ts). Each sign-in reads the
 * stored CRL's head (one indexed row, no body) so a refresh on any instance is in force at once; the
 * body is fetched, verified against the trust anchors and parsed again only when the head changed.
 */
import type { CertificateCrlRepository } from '../../store/certificate-crls.js';
import type { TrustAnchors } from './anchors.js';
import { verifyCrlSignature, type VerifiedCrl } from './crl.js';
import type { CrlSource } from './validate.js';

export function createStoredCrlSource(repo: CertificateCrlRepository, anchors: TrustAnchors): CrlSource {
  const cache = new Map<string, { version: string; crl: VerifiedCrl }>();
  const versionOf = (h: { thisUpdate: Date; nextUpdate: Date; crlNumber: string | undefined; storedAt: Date }) =>
    `${h.thisUpdate.getTime()}/${h.nextUpdate.getTime()}/${h.crlNumber ?? ''}/${h.storedAt.getTime()}`;
  return {
    async crlFor(issuer) {
      const head = await repo.head(issuer.fingerprint);
      if (!head) return undefined;
      const version = versionOf(head);
      const cached = cache.get(issuer.fingerprint);
      if (cached?.version === version) return cached.crl;
      const stored = await repo.get(issuer.fingerprint);
      if (!stored) return undefined;
      const crl = await verifyCrlSignature(stored.der, anchors);
      if (crl.issuerFingerprint !== issuer.fingerprint) return undefined;
      cache.set(issuer.fingerprint, { version: versionOf(stored), crl });
      return crl;
    },
  };
}
