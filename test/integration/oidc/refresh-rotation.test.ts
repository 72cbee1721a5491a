/**
 * Refresh-token rotation is atomic: when the successor cannot be saved (a database failure between
 * the two writes), the presented token is not consumed either, so the service's retry succeeds
 * instead of looking like reuse and revoking the grant. A real reuse still revokes it.
 */
import { randomBytes } from 'node:crypto';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
let server: RunningKapija;
beforeAll(async () => {
  server = await startKapija();
});
afterAll(async () => {
  await server?.stop();
});

test('a failed save of the successor leaves the presented refresh token usable; reuse still revokes', async () => {
  const { kapija, url } = server;
  const rp = await createTestClient(kapija, { redirect_uris: [REDIRECT] });
  const citizen = await createTestAccount(kapija);
  const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`;
  const token = async (params: Record<string, string>) => {
    const res = await fetch(`${url}/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams(params) });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  const auth = new URL(`${url}/auth`);
  auth.search = new URLSearchParams({ client_id: rp.clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid offline_access', prompt: 'consent', state: randomBytes(4).toString('hex') }).toString();
  const cb = await signIn(new Agent(), auth, REDIRECT, citizen);
  const first = await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT });
  expect(first.status).toBe(200);
  const rt = first.body.refresh_token!;

  const rotate = kapija.payloads.consumeAndSave;
  kapija.payloads.consumeAndSave = () => Promise.reject(Object.assign(new Error('connection terminated unexpectedly'), { code: 'ECONNRESET' }));
  let failed;
  try {
    failed = await token({ grant_type: 'refresh_token', refresh_token: rt });
  } finally {
    kapija.payloads.consumeAndSave = rotate;
  }
  expect(failed.status).toBeGreaterThanOrEqual(500);
  expect(failed.body.refresh_token).toBeUndefined();

  const retried = await token({ grant_type: 'refresh_token', refresh_token: rt });
  expect(retried.status).toBe(200);
  expect(retried.body.refresh_token).toBeDefined();

  // The rotated-away token presented again is reuse: the grant and its newest token are revoked.
  const reuse = await token({ grant_type: 'refresh_token', refresh_token: rt });
  expect(reuse.status).toBe(400);
  expect(reuse.body.error).toBe('invalid_grant');
  expect((await token({ grant_type: 'refresh_token', refresh_token: retried.body.refresh_token! })).status).toBe(400);
});
