/**
 * The key that signs Kapija's presentation requests (JAR) as a verifier, with a self-signed X.509
 * certificate naming the issuer's host (subjectAltName dNSName), so the client identifier is
 * `x509_san_dns:<host>` (OpenID4VP 1.0 §5.9.3). Created once by the first instance that needs it,
 * under the key lock, and kept sealed with the master key in the keys table (use `wallet`).
 *
 * A wallet that checks verifiers against an access certificate authority (the EUDI wallet's
 * registration of relying parties) needs a certificate that authority issued; importing one is not
 * supported yet, so such wallets will not trust the self-signed one.
 */
import { randomUUID, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { KeyRepository } from '../../store/keys.js';
import type { SecretBox } from '../../security/crypto.js';

export interface RequestSigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The certificate chain, base64 DER (the JWS `x5c` header). */
  readonly x5c: string[];
  /** `x509_san_dns:<host>`. */
  readonly clientId: string;
}

const context = (id: string) => `key:wallet:${id}`;
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

async function createMaterial(host: string): Promise<{ jwk: JWK; x5c: string[] }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomUUID().replace(/-/g, '').slice(0, 16),
      name: `CN=${host.replace(/[,=+<>#;"\\]/g, '')}`,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + TEN_YEARS_MS),
      keys: { privateKey: privateKey as unknown as webcrypto.CryptoKey, publicKey: publicKey as unknown as webcrypto.CryptoKey },
      signingAlgorithm: alg,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }]), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    },
    webcrypto as never,
  );
  return { jwk: await exportJWK(privateKey), x5c: [Buffer.from(cert.rawData).toString('base64')] };
}

/** The request-signing key for `issuer`, created on first use. */
export function requestSigningKey(deps: { keys: KeyRepository; box: SecretBox; issuer: string }): () => Promise<RequestSigningKey> {
  const host = new URL(deps.issuer).hostname;
  let loaded: Promise<RequestSigningKey> | undefined;
  const open = async (id: string, sealed: string): Promise<RequestSigningKey> => {
    const { jwk, x5c } = JSON.parse(deps.box.openString(sealed, context(id))) as { jwk: JWK; x5c: string[] };
    return { kid: id, privateKey: (await importJWK(jwk, 'ES256')) as CryptoKey, x5c, clientId: `x509_san_dns:${host}` };
  };
  const load = async (): Promise<RequestSigningKey> => {
    const now = Date.now();
    const existing = (await deps.keys.listLive('wallet', now))[0];
    if (existing) return open(existing.id, existing.materialEnc);
    return deps.keys.withLock(async (trx) => {
      const again = (await deps.keys.listLive('wallet', now, trx))[0];
      if (again) return open(again.id, again.materialEnc);
      const id = randomUUID();
      const material = await createMaterial(host);
      const materialEnc = deps.box.seal(JSON.stringify(material), context(id));
      await deps.keys.insert([{ id, use: 'wallet', alg: 'ES256', materialEnc, createdAt: now, retiredAt: null, expiresAt: null }], trx);
      return open(id, materialEnc);
    });
  };
  return () => {
    loaded ??= load().catch((err: unknown) => {
      loaded = undefined;
      throw err;
    });
    return loaded;
  };
}
