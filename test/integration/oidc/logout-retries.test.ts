/**
 * Back-channel logout outlasts a service being down (oidc/logout-retries.ts): a delivery that fails
 * when a session ends is kept in the database and tried again after growing pauses, each time with a
 * fresh logout token, until the service takes it; Kapija gives up after the last pause or when the
 * service has no back-channel URI any more. Two instances claiming at once never take the same row.
 */
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';
import { Agent } from '../../support/browserless.js';
import { confirmLogout, signIn } from '../../support/sign-in.js';
import { kapijaForSuite, testService } from '../../support/kapija.js';
import { startLogoutReceiver, type LogoutReceiver } from '../../support/logout-receiver.js';
import { stores } from '../../support/databases.js';
import { createLogoutDeliveryRepository } from '../../../src/store/logout-deliveries.js';
import pino from 'pino';
import { createLogoutRetries, LOGOUT_RETRY_DELAYS_MS } from '../../../src/oidc/logout-retries.js';

describe.each(stores())('on %s', (store) => {
  let receiver: LogoutReceiver;
  const server = kapijaForSuite({ store });
  beforeAll(async () => {
    receiver = await startLogoutReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });
  beforeEach(async () => {
    receiver.status = 200;
    await server.kapija.db('logout_deliveries').delete();
  });

  const signedIn = async () => {
    const s = await testService(server, { backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true, post_logout_redirect_uris: ['http://127.0.0.1:9/out'] });
    const agent = new Agent();
    const cb = await signIn(agent, s.authorize({ scope: 'openid' }), s.redirect, s.citizen);
    const tokens = await s.token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: s.redirect });
    expect(tokens.status).toBe(200);
    return { ...s, agent, idToken: tokens.body.id_token! };
  };
  const rows = () => server.kapija.db('logout_deliveries').select('client_id', 'sid', 'attempts', 'next_at', 'last_error');
  /** Time passes: every kept delivery is due. */
  const makeDue = () => server.kapija.db('logout_deliveries').update({ next_at: 0 });

  test('a session ended while the service is down reaches it once it is back, with a fresh token each attempt', async () => {
    const { kapija, rp, citizen, idToken } = await signedIn();
    const sid = decodeJwt(idToken).sid;
    receiver.status = 503;
    const before = Date.now();
    const [ended] = await kapija.sessions.endAllForAccount(citizen.account.id);
    expect(ended!.deliveries).toEqual([expect.objectContaining({ clientId: rp.clientId, backchannel: 'failed' })]);
    const [kept] = await rows();
    expect(kept).toMatchObject({ client_id: rp.clientId, sid, attempts: 1 });
    expect(kept!.last_error).toContain('503');
    expect(Number(kept!.next_at)).toBeGreaterThanOrEqual(before + LOGOUT_RETRY_DELAYS_MS[0]!);
    expect(Number(kept!.next_at)).toBeLessThanOrEqual(Date.now() + LOGOUT_RETRY_DELAYS_MS[0]!);

    // Not due yet: nothing is sent.
    expect(await kapija.deliverLogouts()).toEqual({ delivered: 0, rescheduled: 0, abandoned: 0 });
    expect(receiver.attempts).toHaveLength(1);
    // Due, still down: a second attempt, then a longer pause.
    await makeDue();
    expect(await kapija.deliverLogouts()).toEqual({ delivered: 0, rescheduled: 1, abandoned: 0 });
    const [again] = await rows();
    expect(again!.attempts).toBe(2);
    expect(Number(again!.next_at)).toBeGreaterThan(Date.now() + LOGOUT_RETRY_DELAYS_MS[0]!);
    // Back: delivered, and the row is gone.
    receiver.status = 200;
    await makeDue();
    const [x, y] = await Promise.all([kapija.deliverLogouts(), kapija.deliverLogouts()]);
    expect(x).toBe(y);
    expect(x).toEqual({ delivered: 1, rescheduled: 0, abandoned: 0 });
    expect(await rows()).toEqual([]);
    expect(receiver.attempts).toHaveLength(3);
    expect(receiver.tokens).toHaveLength(1);
    const { payload } = await jwtVerify(receiver.tokens[0]!, createRemoteJWKSet(new URL(`${server.url}/jwks`)), { issuer: server.url, audience: rp.clientId });
    expect(payload.sid).toBe(sid);
    expect(payload.sub).toBe(decodeJwt(idToken).sub);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(new Set(receiver.attempts.map((t) => decodeJwt(t).jti)).size).toBe(3);
    // Nothing more to do.
    await makeDue();
    expect(await kapija.deliverLogouts()).toEqual({ delivered: 0, rescheduled: 0, abandoned: 0 });
    const metric = (await kapija.metrics.registry.getSingleMetricAsString('kapija_backchannel_logout_retries_total'));
    for (const outcome of ['queued', 'retry', 'delivered']) expect(metric).toMatch(new RegExp(`outcome="${outcome}"} [1-9]`));
  });

  test('RP-initiated logout that fails to reach the service is retried the same way', async () => {
    const { agent, rp, idToken } = await signedIn();
    receiver.status = 500;
    const endSession = new URL(`${server.url}/session/end`);
    endSession.search = new URLSearchParams({ id_token_hint: idToken, client_id: rp.clientId }).toString();
    const { done } = await confirmLogout(agent, endSession);
    expect(done.status).toBeLessThan(400);
    // The engine emits the failure after answering; wait for the row.
    for (let i = 0; i < 50 && (await rows()).length === 0; i += 1) await new Promise((r) => setTimeout(r, 50));
    expect(await rows()).toEqual([expect.objectContaining({ client_id: rp.clientId, sid: decodeJwt(idToken).sid, attempts: 1 })]);
    receiver.status = 200;
    await makeDue();
    expect(await server.kapija.deliverLogouts()).toMatchObject({ delivered: 1 });
    expect(decodeJwt(receiver.tokens.at(-1)!).sid).toBe(decodeJwt(idToken).sid);
  });

  test('gives up after the last pause, and at once for a service without a back-channel URI', async () => {
    const { kapija, rp, citizen } = await signedIn();
    const s2 = await testService(server);
    const deliveries = createLogoutDeliveryRepository(kapija.db);
    receiver.status = 503;
    await deliveries.add({ clientId: rp.clientId, accountId: citizen.account.id, sid: 'last-chance', attempts: LOGOUT_RETRY_DELAYS_MS.length, error: 'x' }, 0);
    await deliveries.add({ clientId: s2.rp.clientId, accountId: citizen.account.id, sid: 'no-uri', attempts: 1, error: 'x' }, 0);
    await deliveries.add({ clientId: rp.clientId, accountId: citizen.account.id, sid: 'not-yet', attempts: LOGOUT_RETRY_DELAYS_MS.length - 1, error: 'x' }, 0);
    expect(await kapija.deliverLogouts()).toEqual({ delivered: 0, rescheduled: 1, abandoned: 2 });
    expect((await rows()).map((r) => r.sid)).toEqual(['not-yet']);
  });

  test('instances claiming at once never take the same delivery', async () => {
    const deliveries = createLogoutDeliveryRepository(server.kapija.db);
    for (let i = 0; i < 30; i += 1) await deliveries.add({ clientId: 'c', accountId: 'a', sid: `s${i}`, attempts: 1, error: 'x' }, 0);
    const now = Date.now();
    const [a, b] = await Promise.all([deliveries.claimDue(now, now + 60_000, 20), deliveries.claimDue(now, now + 60_000, 20)]);
    const ids = [...a!, ...b!].map((d) => d.id);
    expect(ids).toHaveLength(30);
    expect(new Set(ids).size).toBe(30);
    // Claimed ones are hidden until their lease ends.
    expect(await deliveries.claimDue(now, now + 60_000, 20)).toEqual([]);
    expect(await rows()).toHaveLength(30);
  });
});

test('a delivery that cannot be kept (database away) is logged, never thrown at the caller', async () => {
  const away = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
  const lines: string[] = [];
  const retries = createLogoutRetries({
    provider: {} as never,
    store: { add: away, claimDue: away, retryAt: away, remove: away },
    events: { emit: async () => undefined } as never,
    logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }),
  });
  await expect(retries.later({ clientId: 'svc', accountId: 'acc-1', sid: 'sid-1' }, 1, new Error('503'))).resolves.toBeUndefined();
  expect(lines.join('')).toContain('back-channel logout retry not kept');
  expect(lines.join('')).not.toMatch(/acc-1|sid-1/);
});
