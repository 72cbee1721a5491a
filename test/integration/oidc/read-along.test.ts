/**
 * A token is read with its grant, session and account in one round trip (oidc/adapter.ts), and
 * introspection and revocation look a token value up as every kind at once. What a request reads
 * along is its own: a change made between requests (an e-mail address, a locked account, a revoked
 * token) is seen by the next request.
 */
import { jest } from '@jest/globals';
import { Agent, type Page } from '../../support/browserless.js';
import { signIn, submitForm } from '../../support/sign-in.js';
import { kapijaForSuite, testService } from '../../support/kapija.js';
import { stores } from '../../support/databases.js';
import { createConsentRefusalRepository } from '../../../src/store/consent-refusals.js';

describe.each(stores())('on %s', (store) => {
  const server = kapijaForSuite({ store });

  const signedIn = async (scope: string) => {
    const s = await testService(server, { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
    const agent = new Agent();
    const cb = await signIn(agent, s.authorize({ prompt: 'consent', scope }), s.redirect, s.citizen);
    const tokens = await s.token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: s.redirect });
    expect(tokens.status).toBe(200);
    return { ...s, agent, tokens: tokens.body };
  };
  const userinfo = async (accessToken: string) => {
    const res = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    return { status: res.status, body: res.status === 200 ? ((await res.json()) as Record<string, unknown>) : {} };
  };

  test('introspection and revocation find a token value of any kind with one read', async () => {
    const { kapija, rp, post, token, tokens } = await signedIn('openid offline_access');
    const cc = await token({ grant_type: 'client_credentials' });
    expect(cc.status).toBe(200);
    const reads = jest.spyOn(kapija.payloads, 'findWithContext');
    try {
      const at = await post('/token/introspection', { token: tokens.access_token! });
      expect(at.body).toMatchObject({ active: true, token_type: 'Bearer', client_id: rp.clientId, sub: expect.any(String) });
      expect(reads).toHaveBeenCalledTimes(1);
      expect(reads.mock.calls[0]![0]).toEqual(['AccessToken', 'ClientCredentials', 'RefreshToken']);
      const rt = (await post('/token/introspection', { token: tokens.refresh_token! })).body;
      expect(rt).toMatchObject({ active: true, sub: at.body.sub, scope: expect.stringContaining('offline_access') });
      expect(rt.token_type).toBeUndefined();
      const client = (await post('/token/introspection', { token: cc.body.access_token! })).body;
      expect(client).toMatchObject({ active: true, client_id: rp.clientId });
      expect(client.sub).toBeUndefined();
      expect((await post('/token/introspection', { token: 'no-such-token-value-no-such-token-value' })).body).toEqual({ active: false });
      expect(reads).toHaveBeenCalledTimes(4);
    } finally {
      reads.mockRestore();
    }
    // Revoked by the service: the next request, reading it afresh, finds nothing usable.
    expect((await post('/token/revocation', { token: tokens.refresh_token! })).status).toBe(200);
    expect((await post('/token/introspection', { token: tokens.refresh_token! })).body).toEqual({ active: false });
    expect((await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! })).body.error).toBe('invalid_grant');
  });

  test('userinfo and refresh take the account read with the token, and see a change made in between', async () => {
    const { kapija, citizen, token, tokens } = await signedIn('openid email offline_access');
    const sub = (JSON.parse(Buffer.from(tokens.id_token!.split('.')[1]!, 'base64url').toString()) as { sub: string }).sub; // pairwise
    const byId = jest.spyOn(kapija.accounts, 'findById');
    try {
      expect((await userinfo(tokens.access_token!)).body).toMatchObject({ sub, email: citizen.account.email });
      await kapija.accounts.setVerifiedEmail(citizen.account.id, `new-${citizen.account.email!}`);
      expect((await userinfo(tokens.access_token!)).body).toMatchObject({ email: `new-${citizen.account.email!}` });
      const refreshed = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
      expect(refreshed.status).toBe(200);
      const idToken = JSON.parse(Buffer.from(refreshed.body.id_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      expect(idToken.sub).toBe(sub);
      expect(byId).not.toHaveBeenCalled(); // answered by the read that found the token

      await kapija.accounts.setStatus(citizen.account.id, 'locked');
      expect((await userinfo(refreshed.body.access_token!)).status).toBe(401);
      expect((await token({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token! })).body.error).toBe('invalid_grant');
    } finally {
      byId.mockRestore();
    }
  });

  test('userinfo and refresh take the claims the citizen refused with the token, and see a refusal made in between', async () => {
    const { kapija, citizen, rp, token, tokens } = await signedIn('openid email offline_access');
    const refusals = createConsentRefusalRepository(kapija.db);
    const lookups = jest.spyOn(kapija.payloads, 'findWithContext');
    try {
      expect((await userinfo(tokens.access_token!)).body).toMatchObject({ email: citizen.account.email });
      // Refused in the account portal between two requests: the next read of the token carries it.
      await refusals.refuse(citizen.account.id, rp.clientId, ['email']);
      const after = (await userinfo(tokens.access_token!)).body;
      expect(after.sub).toEqual(expect.any(String));
      expect(after.email).toBeUndefined();
      const refreshed = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
      expect(refreshed.status).toBe(200);
      const idToken = JSON.parse(Buffer.from(refreshed.body.id_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      expect(idToken.email).toBeUndefined();
      expect(lookups).toHaveBeenCalledTimes(3); // one read per request: the token with its grant, account and refusals
    } finally {
      lookups.mockRestore();
    }
  });

  test('single sign-on takes the account read with the session, and a locked account has no session', async () => {
    const { kapija, citizen, agent, authorize, redirect, token } = await signedIn('openid');
    const byId = jest.spyOn(kapija.accounts, 'findById');
    try {
      const sso = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(redirect));
      if (!(sso instanceof URL)) throw new Error('no single sign-on');
      expect((await token({ grant_type: 'authorization_code', code: sso.searchParams.get('code')!, redirect_uri: redirect })).status).toBe(200);
      expect(byId).not.toHaveBeenCalled();

      await kapija.accounts.setStatus(citizen.account.id, 'locked');
      const after = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(redirect));
      expect(after).not.toBeInstanceOf(URL); // the sign-in page, not a code
    } finally {
      byId.mockRestore();
    }
  });
  test('single sign-on reads the session with its grant, the identity and the mandate mark in one statement', async () => {
    const { kapija, agent, authorize, redirect, token } = await signedIn('openid');
    const finds = jest.spyOn(kapija.payloads, 'find');
    const lookups = jest.spyOn(kapija.payloads, 'findWithContext');
    const identities = jest.spyOn(kapija.identity, 'find');
    const mandates = jest.spyOn(kapija.mandates, 'representationOf');
    try {
      const sso = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(redirect));
      if (!(sso instanceof URL)) throw new Error('no single sign-on');
      const tokens = await token({ grant_type: 'authorization_code', code: sso.searchParams.get('code')!, redirect_uri: redirect });
      expect(tokens.status).toBe(200);
      const idToken = JSON.parse(Buffer.from(tokens.body.id_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      expect(idToken.acr).toMatch(/substantial|high/); // the level the identity supports, read along
      expect(finds.mock.calls.filter(([model]) => model === 'Grant')).toEqual([]);
      expect(lookups.mock.calls.map(([models]) => models[0])).toEqual(['Session', 'AuthorizationCode']);
      expect(identities).not.toHaveBeenCalled();
      expect(mandates).not.toHaveBeenCalled();
    } finally {
      finds.mockRestore();
      lookups.mockRestore();
      identities.mockRestore();
      mandates.mockRestore();
    }
  });

  test("single sign-on saves the session with its code, and touches the session's device in that step only when one is due", async () => {
    const { kapija, citizen, agent, authorize, redirect } = await signedIn('openid');
    const saves = jest.spyOn(kapija.payloads, 'saveAll');
    const upserts = jest.spyOn(kapija.payloads, 'upsert');
    const touches = jest.spyOn(kapija.repos.sessionDevices, 'touch');
    const sso = async (headers?: Record<string, string>) => {
      saves.mockClear();
      const cb = await agent.follow(await agent.request(authorize(), { headers }), (u) => u.href.startsWith(redirect));
      if (!(cb instanceof URL)) throw new Error('no single sign-on');
      return saves.mock.calls.map(([written, device]) => ({ models: written.map((x) => x.model), device }));
    };
    try {
      // Seen from this browser at the resume a moment ago: no touch is due.
      expect(await sso()).toEqual([{ models: ['AuthorizationCode', 'Session'], device: undefined }]);
      // Another user agent on the same session: touched in the statement that saves the session.
      expect(await sso({ 'user-agent': 'Other/2' })).toEqual([
        { models: ['AuthorizationCode', 'Session'], device: expect.objectContaining({ accountId: citizen.account.id, userAgent: 'Other/2' }) },
      ]);
      expect(upserts).not.toHaveBeenCalled();
      expect(touches).not.toHaveBeenCalled();
    } finally {
      saves.mockRestore();
      upserts.mockRestore();
      touches.mockRestore();
    }
    const devices = await kapija.repos.sessionDevices.listForAccount(citizen.account.id);
    expect(devices).toHaveLength(1); // one session: the first use fixed where it started
    expect(devices[0]!.userAgent).not.toBe('Other/2');
  });

  test('an identity that expired between two requests is seen by the next single sign-on', async () => {
    const { kapija, citizen, agent, authorize, redirect } = await signedIn('openid');
    const before = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(redirect));
    expect(before).toBeInstanceOf(URL);
    await kapija.db('verified_identities').where({ account_id: citizen.account.id }).update({ expires_at: Date.now() - 1000 });
    expect((await kapija.identity.levelOf(citizen.account.id))).toBe('none');
    const after = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(redirect));
    expect(after).not.toBeInstanceOf(URL); // signs in again: the session's level is above what the identity supports
  });
  /** `agent`, calling `around` before and after each resume (GET /auth/:uid) it makes. */
  const aroundResumes = (agent: Agent, around: (when: 'before' | 'after', page?: Awaited<ReturnType<Agent['request']>>) => Promise<void> | void) => {
    const request = agent.request.bind(agent);
    agent.request = async (url, init) => {
      const resume = /^\/auth\/[^/]+$/.test(new URL(url).pathname);
      if (resume) await around('before');
      const page = await request(url, init);
      if (resume) await around('after', page);
      return page;
    };
    return agent;
  };

  test('the resume after a sign-in reads the earlier grant with its mandate mark and refusals, and the identity with the account', async () => {
    const { kapija, citizen, rp, authorize, redirect, token } = await signedIn('openid email');
    // Refused in the account portal after the consent: the grant carried over to the next sign-in leaves it out.
    await kapija.repos.refusals.refuse(citizen.account.id, rp.clientId, ['email']);
    const spies = {
      latestGrant: jest.spyOn(kapija.payloads, 'latestGrant'),
      refusals: jest.spyOn(kapija.repos.refusals, 'list'),
      identity: jest.spyOn(kapija.identity, 'find'),
      byId: jest.spyOn(kapija.accounts, 'findById'),
      withIdentity: jest.spyOn(kapija.accounts, 'findByIdWithIdentity'),
      upsert: jest.spyOn(kapija.payloads, 'upsert'),
      saveAll: jest.spyOn(kapija.payloads, 'saveAll'),
      touch: jest.spyOn(kapija.repos.sessionDevices, 'touch'),
    };
    const counts = () => Object.fromEntries(Object.entries(spies).map(([name, spy]) => [name, spy.mock.calls.length]));
    const atResume: Record<string, number>[] = [];
    let before: Record<string, number> = {};
    try {
      const agent = aroundResumes(new Agent(), (when) => {
        if (when === 'before') before = counts();
        else atResume.push(Object.fromEntries(Object.entries(counts()).map(([name, n]) => [name, n - before[name]!])));
      });
      const cb = await signIn(agent, authorize(), redirect, { ...citizen, consent: false }); // no consent page: the earlier one is carried over
      // Written in one step: the grant carried over, the code, the session and its device touch.
      expect(atResume).toEqual([{ latestGrant: 1, refusals: 0, identity: 0, byId: 0, withIdentity: 1, upsert: 0, saveAll: 1, touch: 0 }]);
      const [written, device] = spies.saveAll.mock.calls.at(-1)!;
      expect(written.map((x) => x.model)).toEqual(['Grant', 'AuthorizationCode', 'Session']);
      expect(written[1]!.payload.grantId).toBe(written[0]!.id);
      expect(device).toMatchObject({ accountId: citizen.account.id, sessionUid: written[2]!.payload.uid });
      const tokens = await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: redirect });
      expect(tokens.status).toBe(200);
      const idToken = JSON.parse(Buffer.from(tokens.body.id_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      expect(idToken.acr).toMatch(/substantial|high/); // the identity read with the account supports the sign-in's level
      const info = await userinfo(tokens.body.access_token!);
      expect(info.body.sub).toEqual(expect.any(String));
      expect(info.body.email).toBeUndefined();
    } finally {
      Object.values(spies).forEach((spy) => spy.mockRestore());
    }
  });

  test('a consent asked again at the resume is started with the grant carried over, written together, and finds it', async () => {
    const { kapija, citizen, authorize, redirect, token } = await signedIn('openid email');
    const saves = jest.spyOn(kapija.payloads, 'saveAll');
    const upserts = jest.spyOn(kapija.payloads, 'upsert');
    const atResume: { models: string[]; grantIds: unknown[] }[][] = [];
    try {
      const agent = aroundResumes(new Agent(), (when) => {
        if (when === 'before') {
          saves.mockClear();
          upserts.mockClear();
        } else {
          expect(upserts.mock.calls.map(([model]) => model)).toEqual([]);
          atResume.push(saves.mock.calls.map(([written]) => ({ models: written.map((x) => x.model), grantIds: written.map((x) => x.payload.grantId ?? x.id) })));
        }
      });
      // prompt=consent: the resume after the sign-in starts a consent interaction naming the grant
      // carried over; both are written in one step, then the session.
      const cb = await signIn(agent, authorize({ prompt: 'consent' }), redirect, citizen);
      const [signInResume, consentResume] = atResume;
      expect(signInResume!.map((x) => x.models)).toEqual([['Grant', 'Interaction'], ['Session']]);
      expect(signInResume![0]!.grantIds[1]).toBe(signInResume![0]!.grantIds[0]);
      expect(consentResume!.map((x) => x.models)).toEqual([['AuthorizationCode', 'Session']]);
      const tokens = await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: redirect });
      expect(tokens.status).toBe(200);
      expect(await kapija.payloads.find('Grant', String(consentResume![0]!.grantIds[0]))).toMatchObject({ accountId: citizen.account.id });
    } finally {
      saves.mockRestore();
      upserts.mockRestore();
    }
  });

  test('a consent interaction that fails to be written leaves the grant to the session save, which names it', async () => {
    const { kapija, citizen, rp, authorize, redirect } = await signedIn('openid email');
    const saveAll = kapija.payloads.saveAll.bind(kapija.payloads);
    const saves = jest.spyOn(kapija.payloads, 'saveAll').mockImplementation(async (written, device) => {
      if (written.some((x) => x.model === 'Interaction')) throw new Error('connection lost');
      return saveAll(written, device);
    });
    const resumed = new Error('resumed');
    let status = 0;
    try {
      const agent = aroundResumes(new Agent(), (when, page) => {
        if (when === 'after') {
          status = page!.status;
          throw resumed;
        }
      });
      await expect(signIn(agent, authorize({ prompt: 'consent' }), redirect, citizen)).rejects.toBe(resumed);
    } finally {
      saves.mockRestore();
    }
    expect(status).toBeGreaterThanOrEqual(400); // the consent could not be started
    const sessions = await kapija.payloads.listByAccount(citizen.account.id, 'Session');
    const named = sessions.map((x) => (x.payload.authorizations as Record<string, { grantId?: string }> | undefined)?.[rp.clientId]?.grantId);
    expect(named).toHaveLength(2); // the first sign-in's and this one's
    for (const grantId of named) expect(await kapija.payloads.find('Grant', grantId!)).toMatchObject({ accountId: citizen.account.id });
  });

  test('an identity that expires between the last sign-in step and the resume is seen by the resume', async () => {
    const { kapija, citizen, authorize, redirect } = await signedIn('openid');
    const resumed = new Error('resumed');
    let location: string | null = null;
    const agent = aroundResumes(new Agent(), async (when, page) => {
      if (when === 'before') await kapija.db('verified_identities').where({ account_id: citizen.account.id }).update({ expires_at: Date.now() - 1000 });
      else {
        location = page!.headers.get('location');
        throw resumed; // what follows the resume is the sign-in again, not this test's
      }
    });
    await expect(signIn(agent, authorize(), redirect, citizen)).rejects.toBe(resumed);
    expect(location).toMatch(/\/interaction\//); // signs in again: the session's level is above what the identity supports
  });
  test('a password and TOTP sign-in from a new browser reads the account by id only at the resume, and the second factors once per step', async () => {
    const { kapija, citizen, authorize, redirect } = await signedIn('openid');
    const byId = jest.spyOn(kapija.accounts, 'findById');
    const withIdentity = jest.spyOn(kapija.accounts, 'findByIdWithIdentity');
    const types = jest.spyOn(kapija.credentials, 'enrolledTypes');
    try {
      const cb = await signIn(new Agent(), authorize(), redirect, citizen);
      expect(cb.searchParams.get('code')).toBeTruthy();
      // The password's own row decides the status, and the new-device notice is addressed with the
      // row its device statement read: only the engine's resume reads the account by id (with its
      // verified identity).
      expect(byId).toHaveBeenCalledTimes(0);
      expect(withIdentity).toHaveBeenCalledTimes(1);
      // Once at the password (the re-enrolment check and the next step share it), once on the page.
      expect(types).toHaveBeenCalledTimes(2);
    } finally {
      byId.mockRestore();
      withIdentity.mockRestore();
      types.mockRestore();
    }
    // The notice's "this wasn't me" link was kept (with its message) before the answer.
    expect(await kapija.db('account_tokens').where({ account_id: citizen.account.id, purpose: 'not_me' })).toHaveLength(1);
  });

  test('a locked account is refused at the password, on the row the password was checked against', async () => {
    const { kapija, citizen, authorize } = await testService(server);
    await kapija.accounts.setStatus(citizen.account.id, 'locked');
    const agent = new Agent();
    const login = (await agent.follow(await agent.request(authorize()), () => false)) as Page;
    const res = await submitForm(agent, login, /\/login$/, { username: citizen.username, password: citizen.password });
    expect(res.status).toBe(403);
  });

  test('a session read at the authorization endpoint with any client id a request names: an error page, never a 500', async () => {
    const { agent, authorize } = await signedIn('openid');
    for (const clientId of ['', '$x', '\\', 'a"b', 'a.b[0]', 'ćирилица', 'x'.repeat(300)]) {
      const url = authorize();
      url.searchParams.set('client_id', clientId);
      const res = await agent.request(url);
      expect(res.status).toBeGreaterThanOrEqual(300);
      expect(res.status).toBeLessThan(500);
    }
  });
});
