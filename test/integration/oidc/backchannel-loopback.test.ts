/**
 * Back-channel logout to a service on this machine: in development (the README's Quick start, an
 * example service on localhost) Kapija may reach loopback addresses without further settings; in
 * test and production the SSRF guard of oidc-provider refuses them unless ALLOW_PRIVATE_NETWORK_FETCH
 * says otherwise. A delivery that fails says why in the log.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { startKapija, testService, type RunningKapija } from '../../support/kapija.js';
import { startLogoutReceiver, type LogoutReceiver } from '../../support/logout-receiver.js';
import { loadConfig } from '../../../src/config.js';

let receiver: LogoutReceiver;
beforeAll(async () => {
  receiver = await startLogoutReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

/** Kapija in NODE_ENV=`env` with ALLOW_PRIVATE_NETWORK_FETCH left unset, logging into `lines`. */
async function kapijaIn(env: 'development' | 'test', lines: Record<string, unknown>[]): Promise<RunningKapija> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  // An empty variable counts as unset: the default of the environment applies.
  return startKapija({ env: { NODE_ENV: env, ALLOW_PRIVATE_NETWORK_FETCH: '' }, options: { logger: pino({ level: 'info' }, sink) } });
}

async function endSignedInSession(server: RunningKapija) {
  const s = await testService(server, { backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true });
  await signIn(new Agent(), s.authorize({ scope: 'openid' }), s.redirect, s.citizen);
  const [ended] = await server.kapija.sessions.endAllForAccount(s.citizen.account.id);
  return { clientId: s.rp.clientId, deliveries: ended!.deliveries };
}

test('development delivers back-channel logout to a service on loopback', async () => {
  const lines: Record<string, unknown>[] = [];
  const server = await kapijaIn('development', lines);
  try {
    const before = receiver.tokens.length;
    const { clientId, deliveries } = await endSignedInSession(server);
    expect(deliveries).toEqual([expect.objectContaining({ clientId, backchannel: 'delivered' })]);
    expect(receiver.tokens.length).toBe(before + 1);
  } finally {
    await server.stop();
  }
});

test('outside development loopback stays refused, production refuses the setting, and the log names the cause', async () => {
  const lines: Record<string, unknown>[] = [];
  const server = await kapijaIn('test', lines);
  try {
    const before = receiver.attempts.length;
    const { clientId, deliveries } = await endSignedInSession(server);
    expect(deliveries).toEqual([expect.objectContaining({ clientId, backchannel: 'failed' })]);
    expect(receiver.attempts.length).toBe(before);
    const failed = lines.find((l) => l.msg === 'back-channel logout failed: will retry');
    expect(failed).toMatchObject({ clientId, reason: expect.stringMatching(/\S/) });
    expect(String(failed!.reason)).not.toBe('fetch failed');
  } finally {
    await server.stop();
  }
  expect(() =>
    loadConfig({ NODE_ENV: 'production', ISSUER: 'https://k.example', MASTER_KEY: Buffer.alloc(32).toString('base64'), DATABASE_URL: 'postgres://x@h/d', ALLOW_PRIVATE_NETWORK_FETCH: 'true' }),
  ).toThrow(/ALLOW_PRIVATE_NETWORK_FETCH/);
  expect(loadConfig({ NODE_ENV: 'production', ISSUER: 'https://k.example', MASTER_KEY: Buffer.alloc(32).toString('base64'), DATABASE_URL: 'postgres://x@h/d' }).allowPrivateNetworkFetch).toBe(false);
});
