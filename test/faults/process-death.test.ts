/**
 * Two Kapija processes on one PostgreSQL database. One is killed outright (SIGKILL): the citizens
 * who signed in through it keep their single sign-on, and their refresh tokens, through the other.
 * Then the other is stopped with SIGTERM while requests are in flight: they are answered in full
 * before it exits 0, and no new connection is accepted meanwhile.
 */
import http from 'node:http';
import { pgAvailable } from '../support/databases.js';
import { Recorder, signInAndRedeem, silentSignIn, sleep, startFleet, token, type Fleet } from './fleet.js';

if (!pgAvailable()) {
  process.stdout.write('[skip] process-death: PostgreSQL not reachable (two processes need a shared database)\n');
  test.skip('a killed process and a drained one (PostgreSQL not reachable)', () => undefined);
} else {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet(8);
  }, 90_000);
  afterAll(async () => {
    await fleet?.close();
  });

  const closed = (p: Fleet['a']) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) resolve({ code: p.child.exitCode, signal: p.child.signalCode });
      else p.child.once('close', (code, signal) => resolve({ code, signal }));
    });

  test('SIGKILL of one process: citizens signed in through it keep single sign-on and their tokens through the other', async () => {
    const recorder = new Recorder();
    const atA = [];
    for (let i = 0; i < 4; i += 1) atA.push(await signInAndRedeem(recorder, fleet.a.url, fleet, fleet.citizens[i]!));

    // Steady refreshes at B while A dies.
    let running = true;
    const chain = { rt: (await signInAndRedeem(recorder, fleet.b.url, fleet, fleet.citizens[4]!)).refreshToken };
    const loadAtB = (async () => {
      while (running) {
        const r = await token(recorder, fleet.b.url, fleet, { grant_type: 'refresh_token', refresh_token: chain.rt }, 'refresh');
        if (r.status === 200) chain.rt = r.body.refresh_token as string;
        await sleep(50);
      }
    })();
    await sleep(500);
    const killedAt = Date.now();
    const dead = closed(fleet.a);
    fleet.a.child.kill('SIGKILL');
    expect((await dead).signal).toBe('SIGKILL');
    await sleep(1000);
    running = false;
    await loadAtB;

    let ssoLost = 0;
    let tokensLost = 0;
    for (const s of atA) {
      if (!(await silentSignIn(s.agent, fleet.b.url, fleet)).ok) ssoLost += 1;
      if ((await token(undefined, fleet.b.url, fleet, { grant_type: 'refresh_token', refresh_token: s.refreshToken })).status !== 200) tokensLost += 1;
    }
    const atBAfterKill = recorder.log.filter((e) => e.at >= killedAt && e.what === 'refresh');
    process.stdout.write(
      `\n[faults] SIGKILL of one process: ${JSON.stringify({ requestsAtOtherAfterKill: atBAfterKill.length, statuses: atBAfterKill.map((e) => e.status).join(' ').replace(/(\d+)( \1)*/g, (m, s) => `${s}×${m.split(' ').length}`), sessionsLost: ssoLost, refreshTokensLost: tokensLost })}\n`,
    );
    expect(atBAfterKill.length).toBeGreaterThan(5);
    expect(atBAfterKill.filter((e) => e.status !== 200)).toEqual([]);
    expect(ssoLost).toBe(0);
    expect(tokensLost).toBe(0);
  }, 60_000);

  test('SIGTERM drains the requests in flight, refuses new connections, and exits 0', async () => {
    const recorder = new Recorder();
    const b = fleet.b;
    const rts = [];
    for (let i = 5; i < 8; i += 1) rts.push((await signInAndRedeem(recorder, b.url, fleet, fleet.citizens[i]!)).refreshToken);

    // Refreshes whose bodies are still arriving when SIGTERM comes: the server must wait for them.
    const basic = Buffer.from(`${fleet.client.clientId}:${fleet.client.clientSecret}`).toString('base64');
    const slowRefresh = (rt: string, restAfterMs: number) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }).toString();
        const req = http.request(
          `${b.url}/token`,
          { method: 'POST', agent: false, headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text }));
          },
        );
        req.on('error', reject);
        req.write(body.slice(0, 20));
        setTimeout(() => req.end(body.slice(20)), restAfterMs);
      });
    const slow = slowRefresh(rts[0]!, 1500);
    // Two more whose requests have begun (the server has their headers) and end just after the signal.
    const concurrent = rts.slice(1).map((rt) => slowRefresh(rt, 300));
    await sleep(200);
    const exited = closed(b);
    b.child.kill('SIGTERM');
    await sleep(500);
    expect(b.child.exitCode).toBeNull(); // still draining the slow request
    const refused = await fetch(`${b.url}/healthz`, { headers: { connection: 'close' } }).then(
      (r) => r.status,
      () => 'refused' as const,
    );
    const answered = await slow;
    const others = await Promise.all(concurrent);
    const { code } = await exited;
    process.stdout.write(`\n[faults] SIGTERM drain: ${JSON.stringify({ slowRefresh: answered.status, concurrent: others.map((o) => o.status), newConnection: refused, exitCode: code })}\n`);
    expect(answered.status).toBe(200);
    expect(JSON.parse(answered.body)).toHaveProperty('refresh_token');
    expect(others.map((o) => o.status)).toEqual([200, 200]);
    expect(refused).toBe('refused');
    expect(code).toBe(0);
    expect(b.output()).toMatch(/"msg":"shutting down"/);
  }, 60_000);
}
