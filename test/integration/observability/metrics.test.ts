/**
 * Health, readiness and Prometheus metrics: what an operator scrapes after a real sign-in.
 */
import * as oidc from 'openid-client';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, startKapija } from '../../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

const server = kapijaForSuite();

const get = (path: string, base = server.url) => fetch(new URL(path, base));

test('healthz is alive and readyz reports database, migrations and keys', async () => {
  const live = await get('/healthz');
  expect(live.status).toBe(200);
  const ready = await get('/readyz');
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready', checks: { database: true, migrations: true, keys: true } });
});

test('a sign-in and a code exchange are counted, with bounded labels only', async () => {
  const citizen = await createTestAccount(server.kapija, { givenName: 'Милица', familyName: 'Милић' });
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const callback = await signIn(new Agent(), url, REDIRECT, citizen);
  await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
  await oidc.clientCredentialsGrant(config, {}).catch(() => undefined); // not allowed for this client: an error

  const res = await get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  expect(text).toMatch(/kapija_signins_total\{result="success",factor="totp",level="substantial"\} 1\b/);
  expect(text).toMatch(/kapija_token_grants_total\{grant_type="authorization_code",result="success"\} 1\b/);
  expect(text).toMatch(/kapija_token_grants_total\{grant_type="client_credentials",result="error"\} 1\b/);
  expect(text).toMatch(/kapija_http_request_duration_seconds_count\{route="oidc:authorization",method="GET",status="3xx"\} \d+/);
  expect(text).toMatch(/kapija_http_request_duration_seconds_count\{route="\/interaction\/:uid\/login",method="POST",status="3xx"\} 1\b/);
  expect(text).toMatch(/kapija_db_pool_connections\{state="used"\} \d+/);
  expect(text).toMatch(/kapija_retry_queue_pending\{queue="mail"\} \d+/);
  expect(text).toMatch(/kapija_retry_queue_pending\{queue="backchannel_logout"\} \d+/);
  expect(text).toMatch(/kapija_process_resident_memory_bytes \d+/);
  // No raw URL, account, client or personal data reaches a label.
  const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((m) => m[1]!));
  expect(routes.size).toBeGreaterThan(3);
  for (const route of routes) expect(route).toMatch(/^(oidc:[a-z_]+|\/interaction\/:uid(\/[a-z_:-]+)?|\/[a-z]+|other)$/);
  for (const secret of [citizen.account.id, citizen.username, citizen.account.email, 'Милица', rp.clientId]) {
    expect(text).not.toContain(secret);
  }
});

test('readyz turns 503 when the database is gone', async () => {
  const other = await startKapija();
  try {
    await other.kapija.db.destroy();
    const res = await get('/readyz', other.url);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { checks: unknown }).checks).toEqual({ database: false, migrations: false, keys: true });
    expect((await get('/healthz', other.url)).status).toBe(200);
  } finally {
    await other.stop();
  }
});

test('with METRICS_PORT, /metrics is not served on the public port', async () => {
  const other = await startKapija({ env: { METRICS_PORT: '9' } });
  try {
    expect((await get('/metrics', other.url)).status).toBe(404);
    expect((await get('/readyz', other.url)).status).toBe(200);
  } finally {
    await other.stop();
  }
});
