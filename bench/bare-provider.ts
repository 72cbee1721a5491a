/**
 * The baseline: bare oidc-provider with its in-memory adapter and development interactions, the
 * same signing algorithm as Kapija's ID tokens (RS256), listening on loopback. Argument: port.
 */
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret-bench-secret-bench-secret',
      redirect_uris: ['http://127.0.0.1:9/cb'],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      scope: 'openid offline_access profile email',
    },
  ],
  jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'bench' }] },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  features: { devInteractions: { enabled: true }, introspection: { enabled: true }, clientCredentials: { enabled: true }, userinfo: { enabled: true } },
  rotateRefreshToken: true,
  issueRefreshToken: async () => true,
  pkce: { required: () => false },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  loadExistingGrant: async (ctx) => {
    const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
    return id ? ctx.oidc.provider.Grant.find(id) : undefined;
  },
});
createServer(provider.callback()).listen(port, '127.0.0.1', () => process.stdout.write('bare listening\n'));
