/**
 * Builders for tests: a configuration, an in-process Kapija on 127.0.0.1:0, accounts and clients.
 */
import http from 'node:http';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { generateSecret } from 'otplib/functional';
import { loadConfig, type Config } from '../../src/config.js';
import { createKapija, type Kapija } from '../../src/app.js';
import { createTestDatabase, type StoreName, type TestDatabase } from './databases.js';
import { PKCE_CHALLENGE, withVerifier } from './pkce.js';

/** Cheapest argon2id parameters the configuration accepts, so tests spend little time hashing. */
export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: process.env.KAPIJA_TEST_LOG_LEVEL ?? 'silent',
  ARGON2_MEMORY_KIB: '19456',
  ARGON2_TIME_COST: '2',
  ALLOW_PRIVATE_NETWORK_FETCH: 'true',
};

export function testConfig(overrides: Record<string, string> = {}): Config {
  const dataDir = overrides.DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-data-'));
  return loadConfig({
    ...TEST_ENV,
    DATA_DIR: dataDir,
    MASTER_KEY: randomBytes(32).toString('base64'),
    ...overrides,
  });
}

export interface RunningKapija {
  readonly kapija: Kapija;
  readonly url: string;
  readonly testDb: TestDatabase;
  stop(): Promise<void>;
}

/**
 * Starts Kapija before a suite's tests and stops it after them (beforeAll/afterAll of the calling
 * suite); the returned handle reaches the running instance once the suite has started. Options that
 * depend on something an earlier beforeAll starts (an SMTP server's address) are given as a function,
 * read when Kapija starts.
 */
export function kapijaForSuite(
  opts: Parameters<typeof startKapija>[0] | (() => Parameters<typeof startKapija>[0]) = {},
): RunningKapija {
  let running: RunningKapija | undefined;
  beforeAll(async () => {
    running = await startKapija(typeof opts === 'function' ? opts() : opts);
  });
  afterAll(async () => {
    await running?.stop();
  });
  return new Proxy({} as RunningKapija, {
    get(_, key) {
      if (!running) throw new Error('Kapija is started in beforeAll: use it inside a test or hook');
      return running[key as keyof RunningKapija];
    },
  });
}

/**
 * Starts Kapija on an ephemeral port with its issuer set to that address.
 * The port is reserved first so the issuer is known before the provider is built.
 */
export async function startKapija(
  opts: {
    store?: StoreName;
    env?: Record<string, string>;
    testDb?: TestDatabase;
    /**
     * 'localhost' for WebAuthn, whose RP ID cannot be an IP address: the issuer is then
     * http://localhost:<port>, served on both 127.0.0.1 and [::1] so any resolution of the name works.
     */
    host?: '127.0.0.1' | 'localhost';
    /** Passed to createKapija, e.g. a logger writing to memory or an injected clock. */
    options?: Omit<NonNullable<Parameters<typeof createKapija>[1]>, 'db'>;
  } = {},
): Promise<RunningKapija> {
  const testDb = opts.testDb ?? (await createTestDatabase(opts.store ?? 'sqlite'));
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const servers = [server];
  if (opts.host === 'localhost') {
    const v6 = http.createServer();
    await new Promise<void>((resolve) => v6.listen(port, '::1', resolve));
    servers.push(v6);
  }
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  const config = testConfig({ ISSUER: url, PORT: String(port), ...testDb.env, ...opts.env });
  const kapija = await createKapija(config, opts.options);
  for (const s of servers) s.on('request', kapija.app.callback());
  return {
    kapija,
    url,
    testDb,
    async stop() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      await kapija.close();
      if (!opts.testDb) await testDb.drop();
    },
  };
}

let counter = 0;
let jmbgSerial = 0;
/**
 * A valid JMBG not used before in this test process (born 31 December 1999, region 80, a serial of
 * its own): verified identities must have unique JMBGs.
 */
export function uniqueJmbg(): string {
  for (;;) {
    jmbgSerial += 1;
    const serial = (process.pid * 7 + jmbgSerial) % 1000;
    const body = `3112999${'80'}${String(serial).padStart(3, '0')}`;
    const a = [...body].map(Number);
    const sum = 7 * (a[0]! + a[6]!) + 6 * (a[1]! + a[7]!) + 5 * (a[2]! + a[8]!) + 4 * (a[3]! + a[9]!) + 3 * (a[4]! + a[10]!) + 2 * (a[5]! + a[11]!);
    const check = 11 - (sum % 11);
    if (check === 10) continue; // no valid check digit for this serial
    return `${body}${check === 11 ? 0 : check}`;
  }
}

/** The date of birth a JMBG begins with (DDMMYYY), as YYYY-MM-DD. */
function birthdateOfJmbg(jmbg: string): string {
  const yyy = Number(jmbg.slice(4, 7));
  return `${yyy >= 800 ? 1000 + yyy : 2000 + yyy}-${jmbg.slice(2, 4)}-${jmbg.slice(0, 2)}`;
}

/**
 * A citizen with a password and, unless `totp: false`, an enrolled TOTP key (returned as
 * `totpSecret`, for test/support/totp.ts) and ten recovery codes.
 *
 * `identity` (default `high`): the citizen's identity was proofed at a counter at that level (names,
 * date of birth and, when given, `jmbg` verified), so that the acr a sign-in reaches is decided by
 * the factors alone; `none` leaves the citizen unverified (acr low whatever the factors).
 */
export async function createTestAccount(
  kapija: Kapija,
  input: { username?: string; password?: string; email?: string; givenName?: string; familyName?: string; totp?: boolean; jmbg?: string; identity?: 'high' | 'substantial' | 'low' | 'none' } = {},
) {
  counter += 1;
  const username = input.username ?? `citizen${counter}${randomBytes(3).toString('hex')}`;
  const password = input.password ?? `pw-${randomBytes(12).toString('base64url')}`;
  const account = await kapija.accounts.create(
    {
      username,
      email: input.email ?? `${username}@example.rs`,
      emailVerified: true,
      givenName: input.givenName ?? 'Petar',
      familyName: input.familyName ?? 'Petrović',
      birthdate: '1990-05-17',
      locale: 'sr-Cyrl',
    },
    await kapija.passwords.hash(password),
  );
  const identity = input.identity ?? 'high';
  if (identity !== 'none') {
    await kapija.identity.recordProofing(
      account.id,
      {
        method: 'in_person',
        level: identity,
        verifier: 'test-registrar',
        office: 'Test registration office',
        evidence: { type: 'document', documentType: 'idcard', issuingCountry: 'RS', documentNumber: randomBytes(5).toString('hex'), expiry: '2031-01-01' },
        attributes: {
          givenNameCyrl: input.givenName ?? 'Петар',
          familyNameCyrl: input.familyName ?? 'Петровић',
          givenNameLatn: input.givenName ?? 'Petar',
          familyNameLatn: input.familyName ?? 'Petrović',
          birthdate: input.jmbg ? birthdateOfJmbg(input.jmbg) : '1990-05-17',
          ...(input.jmbg ? { jmbg: input.jmbg } : {}),
        },
      },
      { actor: 'test-registrar' },
    );
  }
  let totpSecret: string | undefined;
  let recoveryCodes: string[] = [];
  if (input.totp !== false) {
    totpSecret = generateSecret({ length: 20 });
    await kapija.totp.importSeed(account.id, totpSecret, 'Test app');
    recoveryCodes = await kapija.recovery.issue(account.id);
  }
  return { account, username, password, totpSecret, recoveryCodes };
}

export async function createTestClient(
  kapija: Kapija,
  metadata: Partial<Record<string, unknown>> & { redirect_uris?: string[] } = {},
  opts: { public?: boolean } = {},
) {
  counter += 1;
  const clientId = (metadata.client_id as string | undefined) ?? `rp-${counter}-${randomBytes(3).toString('hex')}`;
  const secret = opts.public ? undefined : randomBytes(32).toString('base64url');
  await kapija.clients.create(
    {
      client_name: `Service ${counter}`,
      redirect_uris: ['http://127.0.0.1:9/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: opts.public ? 'none' : 'client_secret_basic',
      scope: 'openid profile email offline_access',
      ...metadata,
      client_id: clientId,
    },
    secret,
  );
  return { clientId, clientSecret: secret };
}

/**
 * A confidential service (client_secret_basic) and a citizen on a running Kapija, with the
 * service's back-channel calls (`post('/token', …)`, `/token/introspection`, `/token/revocation`)
 * and its authorization URL.
 */
export async function testService(running: RunningKapija, metadata: Partial<Record<string, unknown>> = {}) {
  const { kapija, url } = running;
  const redirect = 'http://127.0.0.1:9/cb';
  const rp = await createTestClient(kapija, { redirect_uris: [redirect], ...metadata });
  const citizen = await createTestAccount(kapija);
  const basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret!}`).toString('base64')}`;
  const post = async (endpoint: string, params: Record<string, string>) => {
    const res = await fetch(`${url}${endpoint}`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams(params) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, string> };
  };
  const token = (params: Record<string, string>) => post('/token', withVerifier(params));
  const authorize = (extra: Record<string, string> = {}) => {
    const u = new URL(`${url}/auth`);
    u.search = new URLSearchParams({ client_id: rp.clientId, redirect_uri: redirect, response_type: 'code', scope: 'openid offline_access', state: randomBytes(4).toString('hex'), ...PKCE_CHALLENGE, ...extra }).toString();
    return u;
  };
  return { kapija, rp, citizen, redirect, post, token, authorize };
}
