/**
 * A service's own signing key with its public half served as a JWKS on loopback: what the engine
 * requires of a pairwise client of a grant without a browser (device authorization, CIBA), which
 * authenticates with private_key_jwt. Call inside a describe: the key servers close after the suite.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type CryptoKey } from 'jose';

export interface ClientKey {
  privateKey: CryptoKey;
  kid: string;
  /** Where the public key is served, for the client's `jwks_uri`. */
  jwksUri: string;
}

export function clientKeysForSuite(): () => Promise<ClientKey> {
  const servers: http.Server[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });
  return async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomBytes(4).toString('hex');
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] });
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return { privateKey, kid, jwksUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json` };
  };
}
