/**
 * A PID issuer for the verifier's tests, apart from Kapija's own: an ES256 key, PIDs issued with
 * @sd-jwt/sd-jwt-vc as the shared contract describes them (dc+sd-jwt, kid, cnf.jwk, status list
 * entry, every PID attribute selectively disclosable), and a loopback HTTP server publishing its JWKS
 * (`/jwks`) and its status list token (`/status/1`, @sd-jwt/jwt-status-list, 1 bit per entry).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { ES256, digest, generateSalt } from '@sd-jwt/crypto-nodejs';
import { StatusList, createHeaderAndPayload } from '@sd-jwt/jwt-status-list';

export interface TestPidIssuer {
  /** The issuer identifier (the server's origin) and its public keys. */
  readonly issuer: string;
  readonly jwks: { keys: JWK[] };
  readonly jwksUri: string;
  /** A PID for `pan` bound to `holder` (a public JWK); its status list index is returned. */
  issue(input: { pan: string; holder: JWK; exp?: number; iss?: string; vct?: string }): Promise<{ credential: string; idx: number }>;
  revoke(idx: number): void;
  /** How many times the status list was fetched. */
  statusFetches(): number;
  /** How the status list is served: signed by the issuer (`ok`), by another key (`forged`), or not at all (`down`, 503). */
  serveStatus(mode: 'ok' | 'forged' | 'down'): void;
  stop(): Promise<void>;
}

export async function startTestPidIssuer(): Promise<TestPidIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid };
  const statuses = new StatusList(new Array<number>(1024).fill(0), 1);
  let next = 0;
  let fetches = 0;
  let mode: 'ok' | 'forged' | 'down' = 'ok';
  const forger = (await generateKeyPair('ES256')).privateKey;

  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const statusUri = `${issuer}/status/1`;

  const statusToken = async () => {
    const at = Math.floor(Date.now() / 1000);
    const { header, payload } = createHeaderAndPayload(statuses, { iss: issuer, sub: statusUri, iat: at, exp: at + 600, ttl: 300 }, { alg: 'ES256', kid, typ: 'statuslist+jwt' });
    return new SignJWT(payload).setProtectedHeader(header as never).sign((mode === 'forged' ? forger : privateKey) as CryptoKey);
  };
  server.on('request', (req, res) => {
    void (async () => {
      if (req.url === '/jwks') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: [publicJwk] }));
      } else if (req.url === '/status/1' && mode === 'down') {
        res.statusCode = 503;
        res.end();
      } else if (req.url === '/status/1') {
        fetches += 1;
        res.setHeader('content-type', 'application/statuslist+jwt');
        res.setHeader('cache-control', 'max-age=60');
        res.end(await statusToken());
      } else {
        res.statusCode = 404;
        res.end();
      }
    })();
  });

  const sdjwt = new SDJwtVcInstance({ signer: await ES256.getSigner(privateJwk), signAlg: 'ES256', hasher: digest, saltGenerator: generateSalt });
  return {
    issuer,
    jwks: { keys: [publicJwk] },
    jwksUri: `${issuer}/jwks`,
    async issue(input) {
      const idx = next;
      next += 1;
      const at = Math.floor(Date.now() / 1000);
      const payload = {
        iss: input.iss ?? issuer,
        vct: input.vct ?? 'urn:eudi:pid:1',
        iat: at,
        exp: input.exp ?? at + 30 * 24 * 3600,
        cnf: { jwk: input.holder },
        status: { status_list: { idx, uri: statusUri } },
        issuing_country: 'RS',
        issuing_authority: 'Test PID issuer',
        family_name: 'Petrović',
        given_name: 'Petar',
        birthdate: '1999-12-31',
        nationalities: ['RS'],
        personal_administrative_number: input.pan,
      };
      const credential = await sdjwt.issue(payload, { _sd: ['family_name', 'given_name', 'birthdate', 'nationalities', 'personal_administrative_number'] }, { header: { typ: 'dc+sd-jwt', kid } });
      return { credential, idx };
    },
    revoke(idx) {
      statuses.setStatus(idx, 1);
    },
    statusFetches: () => fetches,
    serveStatus(m) {
      mode = m;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A holder's key pair: the private JWK the wallet signs with and the public one the issuer binds. */
export async function holderKeyPair(): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateJwk: await exportJWK(privateKey), publicJwk: await exportJWK(publicKey) };
}
