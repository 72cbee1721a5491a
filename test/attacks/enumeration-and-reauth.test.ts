/**
 * Attack cases that need timing or a clock:
 * - OWASP ASVS 2.2.1 / 3.x, NIST SP 800-63B 5.2.2: user enumeration by response time through
 *   sign-in, registration and password reset — a known and an unknown name take about as long.
 * - OWASP ASVS 3.7.1 / NIST SP 800-63B 7.2: a sensitive account change from a sign-in older than
 *   REAUTH_SECONDS is sent to sign in again (both factors) and not carried out.
 * Medians of several tries, and a loose bound, so a noisy machine does not make them flaky.
 */
import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import { Agent, type Page } from '../support/browserless.js';
import { signIn, submitForm } from '../support/sign-in.js';
import { createTestAccount, startKapija, type RunningKapija } from '../support/kapija.js';

let server: RunningKapija;
beforeAll(async () => {
  server = await startKapija();
});
afterAll(async () => {
  jest.useRealTimers();
  await server?.stop();
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Times `attempt` for each name, alternating the two kinds so drift hits both alike. */
async function timed(names: { known: string[]; unknown: string[] }, attempt: (name: string) => Promise<Page>) {
  const known: number[] = [];
  const unknown: number[] = [];
  const bodies = new Set<string>();
  for (let i = 0; i < names.known.length; i += 1) {
    for (const [name, bucket] of [[names.known[i]!, known], [names.unknown[i]!, unknown]] as const) {
      const t0 = performance.now();
      const page = await attempt(name);
      bucket.push(performance.now() - t0);
      bodies.add(String(page.status));
    }
  }
  return { known: median(known), unknown: median(unknown), statuses: [...bodies] };
}

/** Within max(35 % of the slower median, 15 ms): close enough that no name can be told apart. */
function expectClose(m: { known: number; unknown: number }) {
  const bound = Math.max(0.35 * Math.max(m.known, m.unknown), 15);
  expect(Math.abs(m.known - m.unknown)).toBeLessThanOrEqual(bound);
}

// Medians of 15 interleaved pairs: with 7, a loaded machine moved one median by more than the bound now and then.
const TRIES = 15;

test('ASVS 2.2.1 / NIST 800-63B 5.2.2 (enumeration by timing, sign-in): a wrong password and an unknown name take as long', async () => {
  const known = await Promise.all(Array.from({ length: TRIES }, () => createTestAccount(server.kapija, { totp: false })));
  const unknown = Array.from({ length: TRIES }, () => `nobody.${randomBytes(4).toString('hex')}`);
  const agent = new Agent('en');
  const login = async (username: string) => {
    const form = await agent.follow(await agent.request(new URL('/account', server.url)), () => false);
    const page = await agent.follow(form as Page, () => false);
    return submitForm(agent, page as Page, /\/login$/, { username, password: 'not the password' });
  };
  const m = await timed({ known: known.map((k) => k.username), unknown }, login);
  expect(m.statuses).toEqual(['401']);
  expectClose(m);
});

test('ASVS 2.5.x (enumeration by timing, registration and reset): taken and free names take as long', async () => {
  const known = await Promise.all(Array.from({ length: TRIES }, () => createTestAccount(server.kapija, { totp: false })));
  const unknown = Array.from({ length: TRIES }, () => `free.${randomBytes(4).toString('hex')}`);
  const register = async (username: string) => {
    const agent = new Agent('en');
    const form = await agent.request(new URL('/register', server.url));
    const password = `a long pass phrase ${randomBytes(3).toString('hex')}`;
    return submitForm(agent, form, /^\/register$/, { username, email: `${username}@example.rs`, given_name: 'I', family_name: 'P', password, password_confirm: password });
  };
  const reg = await timed({ known: known.map((k) => k.username), unknown }, register);
  expect(reg.statuses).toEqual(['200']);
  expectClose(reg);

  const reset = async (username: string) => {
    const agent = new Agent('en');
    const form = await agent.request(new URL('/recover', server.url));
    return submitForm(agent, form, /^\/recover$/, { identifier: username });
  };
  const rec = await timed({ known: known.map((k) => k.username), unknown: unknown.map((u) => `${u}x`) }, reset);
  expect(rec.statuses.every((s) => s === '200' || s === '429')).toBe(true);
  expectClose(rec);
});

test('ASVS 3.7.1 / NIST 800-63B 7.2 (re-authentication): a change from a sign-in older than REAUTH_SECONDS asks for both factors again and is not made', async () => {
  const citizen = await createTestAccount(server.kapija);
  const agent = new Agent('en');
  let page = await agent.request(new URL('/account/security', server.url));
  const callback = await signIn(agent, new URL(page.headers.get('location')!), `${server.url}/account/callback`, citizen);
  await agent.request(callback);
  page = await agent.request(new URL('/account/security', server.url));
  expect(page.status).toBe(200);
  const id = /data-remove-factor="([^"]+)"/.exec(page.body)![1]!;
  // a second factor so that removal itself would be allowed
  await server.kapija.totp.importSeed(citizen.account.id, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'Spare');

  // ten minutes later (only the clock moves; timers stay real)
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'], now: Date.now() + 10 * 60 * 1000 });
  try {
    const stale = await submitForm(agent, page, /\/account\/security\/remove$/, { id });
    expect(stale.status).toBe(303);
    const to = new URL(stale.headers.get('location')!);
    expect(to.pathname).toBe('/auth');
    expect(to.searchParams.get('prompt')).toBe('login');
    expect(to.searchParams.get('max_age')).toBe('0');
    expect((await server.kapija.credentials.list(citizen.account.id, 'totp')).map((c) => c.id)).toContain(id);
  } finally {
    jest.useRealTimers();
  }
});
