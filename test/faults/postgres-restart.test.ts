/**
 * PostgreSQL restarted under load (`pg_ctl restart` of a private server this suite starts with
 * initdb in a temporary folder, on its own port; the machine's PostgreSQL is never touched) while two Kapija processes serve a
 * steady loopback load of sign-ins and refresh-token exchanges. During the outage every answer is a
 * clear 503, never a 500 or a crash; both processes recover by themselves; and every session, grant
 * and refresh token written before the restart still works after it. The figures are printed.
 */
import pg from 'pg';
import { pgAvailable } from '../support/databases.js';
import { privatePostgresUnavailable, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import {
  Recorder,
  isSignInError,
  signInAndRedeem,
  silentSignIn,
  sleep,
  startFleet,
  token,
  type Fleet,
} from './fleet.js';

/** When the machine's PostgreSQL (the one every other suite uses) last started. */
async function postmasterStart(): Promise<string> {
  const c = new pg.Client({ connectionString: process.env.KAPIJA_TEST_PG_URL });
  await c.connect();
  try {
    return String((await c.query<{ t: string }>('select pg_postmaster_start_time()::text as t')).rows[0]!.t);
  } finally {
    await c.end();
  }
}

const unavailable = privatePostgresUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`postgres-restart: ${unavailable} (required under CI=true)`);
if (unavailable) {
  process.stdout.write(`[skip] postgres-restart: ${unavailable}\n`);
  test.skip('PostgreSQL restart under load (no PostgreSQL server programs)', () => undefined);
} else {
  let fleet: Fleet;
  let server: PrivatePostgres;
  let machineStartedAt: string | undefined;
  beforeAll(async () => {
    if (pgAvailable()) machineStartedAt = await postmasterStart();
    server = await startPrivatePostgres();
    fleet = await startFleet(48, server.url);
  }, 120_000);
  afterAll(async () => {
    await server?.start().catch(() => undefined);
    await fleet?.close();
    await server?.destroy();
  });

  test('a PostgreSQL restart under load: clear 503s only, both processes recover, nothing written before is lost', async () => {
    const recorder = new Recorder();
    const bases = [fleet.a.url, fleet.b.url];
    let nextCitizen = 0;

    // Written before the restart and left untouched until after it: six sessions with their grants and refresh tokens.
    const kept = [];
    for (let i = 0; i < 6; i += 1) kept.push({ via: bases[i % 2]!, ...(await signInAndRedeem(recorder, bases[i % 2]!, fleet, fleet.citizens[nextCitizen++]!)) });
    // The load's own refresh chains.
    const chains: { rt: string; lost: boolean }[] = [];
    for (let i = 0; i < 4; i += 1) chains.push({ rt: (await signInAndRedeem(recorder, bases[i % 2]!, fleet, fleet.citizens[nextCitizen++]!)).refreshToken, lost: false });

    let running = true;
    let turn = 0;
    const signInLoop = async () => {
      while (running && nextCitizen < fleet.citizens.length) {
        const base = bases[turn++ % 2]!;
        const citizen = fleet.citizens[nextCitizen++]!;
        try {
          await signInAndRedeem(recorder, base, fleet, citizen);
        } catch (err) {
          if (!isSignInError(err) && !/code exchange|fetch failed|no code/.test((err as Error).message)) throw err;
        }
        await sleep(150);
      }
    };
    // Each loop has its own chains: a service never presents one refresh token twice at once (that
    // is reuse, and revokes the grant), so two loops must not share a chain.
    const refreshLoop = async (worker: number) => {
      const mine = chains.filter((_, k) => k % 2 === worker);
      let i = 0;
      while (running) {
        const chain = mine[i++ % mine.length]!;
        if (mine.every((c) => c.lost)) break;
        if (chain.lost) continue;
        const base = bases[i % 2]!;
        const answer = await token(recorder, base, fleet, { grant_type: 'refresh_token', refresh_token: chain.rt }, 'refresh');
        if (answer.status === 200) chain.rt = answer.body.refresh_token as string;
        else if (answer.status === 400) {
          chain.lost = true;
          process.stdout.write(`[faults] refresh chain lost at ${new Date().toISOString()}: ${JSON.stringify(answer.body)}\n`);
        }
        await sleep(100);
      }
    };
    const load = Promise.all([signInLoop(), refreshLoop(0), refreshLoop(1)]);

    await sleep(4000);
    const restartAt = Date.now();
    let restarted: number | undefined;
    let recovered: number | undefined;
    try {
      await server.restart();
      restarted = Date.now();
      // Recovered: each process says it is ready and a refresh through it succeeds.
      const ready = new Set<string>();
      while (ready.size < 2 && Date.now() - restarted < 30_000) {
        for (const base of bases) {
          if (ready.has(base)) continue;
          const r = await fetch(`${base}/readyz`).then((res) => res.status, () => 0);
          if (r === 200) ready.add(base);
        }
        await sleep(100);
      }
      recovered = Date.now();
      await sleep(5000);
    } finally {
      running = false;
      await load;
      await server.start().catch(() => undefined); // already running unless the restart failed
    }

    // Everything written before the restart, used only now.
    let sessionsLost = 0;
    let refreshLost = 0;
    for (const [i, k] of kept.entries()) {
      const other = bases[(i + 1) % 2]!;
      if (!(await silentSignIn(k.agent, other, fleet)).ok) sessionsLost += 1;
      const r = await token(undefined, k.via, fleet, { grant_type: 'refresh_token', refresh_token: k.refreshToken });
      if (r.status !== 200) refreshLost += 1;
    }

    // A request in flight when the restart began belongs to the outage, whenever it started.
    const { before, during, after } = recorder.around(restartAt, recovered!);
    const unclear = recorder.log.filter((e) => e.status === 503 && !e.clear).length;
    const figures = {
      requests: recorder.log.length,
      signIns: nextCitizen,
      before,
      during,
      after,
      restartSeconds: ((restarted! - restartAt) / 1000).toFixed(2),
      recoverySecondsAfterRestart: ((recovered! - restarted!) / 1000).toFixed(2),
      recoverySecondsFromRestartStart: ((recovered! - restartAt) / 1000).toFixed(2),
      loadRefreshChainsLost: chains.filter((c) => c.lost).length,
      sessionsLost,
      refreshTokensLost: refreshLost,
      unclear503Bodies: unclear,
    };
    process.stdout.write(`\n[faults] PostgreSQL restart under load: ${JSON.stringify(figures)}\n`);

    // Never a 500, never a dropped connection.
    const statuses = Object.keys({ ...before, ...during, ...after });
    expect(statuses.filter((s) => s === 'network' || (Number(s) >= 500 && s !== '503'))).toEqual([]);
    expect(unclear).toBe(0);
    // Before and after the outage: no error at all; during it, only 503 (the protocol answers, 4xx, are
    // the load's own: none expected).
    expect(Object.keys(before).filter((s) => Number(s) >= 400)).toEqual([]);
    expect(Object.keys(after).filter((s) => Number(s) >= 400)).toEqual([]);
    expect(Object.keys(during).filter((s) => Number(s) >= 400 && s !== '503')).toEqual([]);
    expect(recovered! - restarted!).toBeLessThan(10_000);
    expect(Object.values(after).reduce((n, c) => n + c, 0)).toBeGreaterThan(20);
    // Both processes are the ones started before: neither crashed nor logged a fatal error.
    for (const p of [fleet.a, fleet.b]) {
      expect(p.child.exitCode).toBeNull();
      expect(p.output()).not.toMatch(/"level":60/);
    }
    expect(sessionsLost).toBe(0);
    expect(refreshLost).toBe(0);
    expect(figures.loadRefreshChainsLost).toBe(0);
  }, 120_000);

  test("the machine's PostgreSQL is untouched: its postmaster started before the test run and was not restarted", async () => {
    if (!pgAvailable()) {
      process.stdout.write('[skip] machine PostgreSQL check: no PostgreSQL at KAPIJA_TEST_PG_URL\n');
      return;
    }
    const now = await postmasterStart();
    // `npm test` (scripts/test.mjs) reads it before the first suite; a file run alone compares with its own start.
    expect(now).toBe(process.env.KAPIJA_MACHINE_PG_STARTED ?? machineStartedAt);
  });
}
