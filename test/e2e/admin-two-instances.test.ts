/**
 * A client change made through the admin API of one instance is in force at another instance on
 * the same PostgreSQL database without a restart: at once on the instance that made it, and within
 * CLIENT_CACHE_MS (one second) at the other, which may still serve what it read just before.
 */
import request from 'supertest';
import { createPgDatabase, pgAvailable, type TestDatabase } from '../support/databases.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { CLIENT_CACHE_MS } from '../../src/store/clients.js';

const settle = () => new Promise((r) => setTimeout(r, CLIENT_CACHE_MS + 50));

const describePg = pgAvailable() ? describe : describe.skip;

describePg('admin changes across instances (PostgreSQL)', () => {
  let db: TestDatabase;
  let a: RunningKapija;
  let b: RunningKapija;
  let token: string;

  beforeAll(async () => {
    db = await createPgDatabase();
    a = await startKapija({ testDb: db });
    b = await startKapija({ testDb: db });
    const admin = await createTestAccount(a.kapija, { totp: false });
    await createRoleRepository(a.kapija.db).grant(admin.account.id, 'admin', 'test');
    const script = await createTestClient(a.kapija, { scope: 'openid kapija:admin' });
    const client = await a.kapija.provider.Client.find(script.clientId);
    token = await new a.kapija.provider.AccessToken({ accountId: admin.account.id, client, scope: 'openid kapija:admin', grantId: 'g', extra: { acr: 'http://eidas.europa.eu/LoA/high', auth_time: Math.floor(Date.now() / 1000) } } as never).save();
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  test('a redirect URI added and a client disabled at A take effect at B', async () => {
    const adminApi = () => request(a.kapija.app.callback());
    const created = await adminApi().post('/admin/api/clients').set('authorization', `Bearer ${token}`).send({ client_id: 'shared-rp', redirect_uris: ['https://one.example/cb'] });
    expect(created.status).toBe(201);
    const authorize = (redirectUri: string) =>
      request(b.kapija.app.callback())
        .get('/auth')
        .set('accept', 'application/json')
        .query({ client_id: 'shared-rp', response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    expect((await authorize('https://one.example/cb')).status).toBe(303);
    expect((await authorize('https://one.example/cb2')).body.error).toBe('invalid_redirect_uri');

    const patched = await adminApi().patch('/admin/api/clients/shared-rp').set('authorization', `Bearer ${token}`).send({ redirect_uris: ['https://one.example/cb', 'https://one.example/cb2'] });
    expect(patched.body).toMatchObject({ client: { client_id: 'shared-rp' } });
    await settle();
    expect((await authorize('https://one.example/cb2')).status).toBe(303);

    await adminApi().post('/admin/api/clients/shared-rp/disable').set('authorization', `Bearer ${token}`).expect(200);
    await settle();
    expect((await authorize('https://one.example/cb')).body.error).toBe('invalid_client');
    // the token minted at A works at B too: tokens live in the shared database
    expect((await request(b.kapija.app.callback()).get('/admin/api/clients/shared-rp').set('authorization', `Bearer ${token}`)).body.enabled).toBe(false);
  });
});
