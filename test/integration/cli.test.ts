/**
 * The `kapija` command line, run in-process against each store, plus one run of the real bin.
 */
import { Readable } from 'node:stream';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import request from 'supertest';
import { generate } from 'otplib/functional';
import { runCli } from '../../src/cli/index.js';
import { loadConfig } from '../../src/config.js';
import { createKapija, openHandles } from '../../src/app.js';
import { createTestDatabase, stores, type StoreName, type TestDatabase } from '../support/databases.js';
import { TEST_ENV } from '../support/kapija.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function kapija(env: Record<string, string>, argv: string[], stdin = ''): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, env, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    stdin: Readable.from(stdin ? [stdin] : []),
  });
  return { code, stdout, stderr };
}

/** One line on stderr, nothing on stdout: the shape of every CLI error. */
function expectOneErrorLine(run: Run, code: number, pattern: RegExp): void {
  expect({ code: run.code, stdout: run.stdout }).toEqual({ code, stdout: '' });
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(pattern);
}

describe.each(stores())('kapija CLI on %s', (store: StoreName) => {
  let db: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase(store);
    env = { ...TEST_ENV, MASTER_KEY: randomBytes(32).toString('base64'), ...db.env };
  });
  afterAll(async () => {
    await db?.drop();
  });

  test('migrate applies the migrations once, then reports the database up to date', async () => {
    const first = await kapija(env, ['migrate']);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^applied: \d+_initial/);
    const second = await kapija(env, ['migrate']);
    expect(second).toEqual({ code: 0, stdout: 'database is up to date\n', stderr: '' });
  });

  describe('client create', () => {
    test('generates a secret and shows it once', async () => {
      const run = await kapija(env, ['client', 'create', '--client-id', 'porez', '--redirect-uri', 'https://porez.example.gov.rs/cb']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^client porez created\n/);
      const secret = /client secret \(shown once\): (\S+)/.exec(run.stdout)?.[1];
      expect(secret).toBeDefined();
      expect(secret!.length).toBeGreaterThanOrEqual(32);
      // The secret is stored sealed and given back to oidc-provider as-is.
      const h = openHandles(loadConfig(env));
      try {
        expect((await h.clients.findMetadata('porez'))?.client_secret).toBe(secret);
      } finally {
        await h.db.destroy();
      }
    });

    test('--json prints parseable metadata including the given --secret', async () => {
      const secret = randomBytes(32).toString('hex');
      const run = await kapija(env, [
        'client', 'create', '--client-id', 'katastar', '--secret', secret, '--json',
        '--redirect-uri', 'https://katastar.example.gov.rs/cb', '--redirect-uri', 'https://katastar.example.gov.rs/cb2',
        '--post-logout-redirect-uri', 'https://katastar.example.gov.rs/', '--backchannel-logout-uri', 'https://katastar.example.gov.rs/bcl',
        '--min-acr', 'substantial', '--name', 'Катастар',
      ]);
      expect(run).toMatchObject({ code: 0, stderr: '' });
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(out).toMatchObject({
        client_id: 'katastar',
        client_name: 'Катастар',
        client_secret: secret,
        redirect_uris: ['https://katastar.example.gov.rs/cb', 'https://katastar.example.gov.rs/cb2'],
        post_logout_redirect_uris: ['https://katastar.example.gov.rs/'],
        backchannel_logout_uri: 'https://katastar.example.gov.rs/bcl',
        backchannel_logout_session_required: true,
        token_endpoint_auth_method: 'client_secret_basic',
        kapija_min_acr: 'http://eidas.europa.eu/LoA/substantial',
      });
    });

    test('--public creates a client without a secret that authenticates with none', async () => {
      const run = await kapija(env, ['client', 'create', '--client-id', 'mobile', '--public', '--json', '--redirect-uri', 'rs.gov.app:/cb']);
      expect(run.code).toBe(0);
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(out.token_endpoint_auth_method).toBe('none');
      expect(out).not.toHaveProperty('client_secret');
    });

    test('refuses a missing --redirect-uri', async () => {
      expectOneErrorLine(await kapija(env, ['client', 'create', '--client-id', 'x1']), 64, /^kapija: --redirect-uri is required/);
    });

    test('refuses a relative redirect URI', async () => {
      expectOneErrorLine(
        await kapija(env, ['client', 'create', '--client-id', 'x2', '--redirect-uri', '/cb']),
        64,
        /--redirect-uri: "\/cb" is not an absolute URL/,
      );
    });

    test('refuses a redirect URI with a fragment', async () => {
      expectOneErrorLine(
        await kapija(env, ['client', 'create', '--client-id', 'x3', '--redirect-uri', 'https://a.example/cb#frag']),
        64,
        /must not contain a fragment/,
      );
    });

    test('refuses a redirect URI with credentials in it, as the admin API does', async () => {
      expectOneErrorLine(
        await kapija(env, ['client', 'create', '--client-id', 'x7', '--redirect-uri', 'https://user:pass@a.example/cb']),
        64,
        /^kapija: --redirect-uri: "https:\/\/user:pass@a\.example\/cb" must not contain credentials$/m,
      );
    });

    test('--min-acr takes only the names of the assurance levels', async () => {
      for (const name of ['toString', 'constructor', 'http://eidas.europa.eu/LoA/high']) {
        expectOneErrorLine(
          await kapija(env, ['client', 'create', '--client-id', 'x8', '--min-acr', name, '--redirect-uri', 'https://a.example/cb']),
          64,
          /^kapija: --min-acr must be low, substantial or high$/m,
        );
      }
    });

    test('refuses a short --secret and a --public client with a secret', async () => {
      expectOneErrorLine(
        await kapija(env, ['client', 'create', '--client-id', 'x4', '--secret', 'short', '--redirect-uri', 'https://a.example/cb']),
        64,
        /--secret must be at least 32 characters/,
      );
      expectOneErrorLine(
        await kapija(env, ['client', 'create', '--client-id', 'x5', '--public', '--secret', 'a'.repeat(40), '--redirect-uri', 'https://a.example/cb']),
        64,
        /--public clients have no secret/,
      );
    });

    test('refuses a duplicate client id', async () => {
      expectOneErrorLine(
        await kapija(env, ['client', 'create', '--client-id', 'porez', '--redirect-uri', 'https://porez.example.gov.rs/cb']),
        1,
        /^kapija: client "porez" already exists$/m,
      );
    });

    test('an invalid --client-id is reported as invalid, a missing one as required', async () => {
      expectOneErrorLine(
        await kapija(env, ['client', 'create', '--client-id', 'porez uprava', '--redirect-uri', 'https://a.example/cb']),
        64,
        /^kapija: --client-id "porez uprava" is not valid: use letters, digits/,
      );
      expectOneErrorLine(await kapija(env, ['client', 'create', '--redirect-uri', 'https://a.example/cb']), 64, /^kapija: --client-id is required$/m);
    });

    test('refuses an unknown flag', async () => {
      expectOneErrorLine(await kapija(env, ['client', 'create', '--client-id', 'x6', '--nope']), 64, /--nope/);
    });
  });

  test('client list shows every client, as text and as JSON', async () => {
    const text = await kapija(env, ['client', 'list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^porez\tclient_secret_basic\thttps:\/\/porez\.example\.gov\.rs\/cb$/m);
    const json = await kapija(env, ['client', 'list', '--json']);
    expect(json.code).toBe(0);
    const list = JSON.parse(json.stdout) as { client_id: string; has_secret: boolean; enabled: boolean; client_secret?: string }[];
    expect(list.map((c) => c.client_id).sort()).toEqual(['katastar', 'mobile', 'porez']);
    expect(list.find((c) => c.client_id === 'mobile')).toMatchObject({ has_secret: false, enabled: true });
    expect(list.find((c) => c.client_id === 'porez')).toMatchObject({ has_secret: true });
    // Secrets are shown once, at creation, never in a listing.
    expect(json.stdout).not.toMatch(/client_secret"/);
  });

  test('user create reads the password from stdin and stores an argon2id hash of it', async () => {
    const run = await kapija(
      env,
      ['user', 'create', '--username', 'Ana.Jovanovic', '--email', 'ana@example.rs', '--given-name', 'Ана', '--birthdate', '1985-02-03'],
      'correct horse battery staple\n',
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^user ana\.jovanovic created \(id [0-9a-f-]{36}\)\n$/);
    const h = openHandles(loadConfig(env));
    try {
      const creds = await h.accounts.findCredentialsByUsername('ana.jovanovic');
      expect(creds?.account).toMatchObject({ email: 'ana@example.rs', givenName: 'Ана', birthdate: '1985-02-03' });
      expect(creds?.passwordHash).toMatch(/^\$argon2id\$/);
      expect(await h.passwords.verify(creds!.passwordHash, 'correct horse battery staple')).toBe(true);
    } finally {
      await h.db.destroy();
    }
  });

  test('user create --email-verified marks the e-mail as verified; without it, it is not', async () => {
    expect((await kapija(env, ['user', 'create', '--username', 'vesna', '--email', 'vesna@example.rs', '--email-verified'], 'a long passphrase here\n')).code).toBe(0);
    expect((await kapija(env, ['user', 'create', '--username', 'goran', '--email', 'goran@example.rs'], 'a long passphrase here\n')).code).toBe(0);
    expectOneErrorLine(await kapija(env, ['user', 'create', '--username', 'zoran', '--email-verified'], 'a long passphrase here\n'), 64, /--email-verified needs --email/);
    const h = openHandles(loadConfig(env));
    try {
      expect((await h.accounts.findByUsername('vesna'))?.emailVerified).toBe(true);
      expect((await h.accounts.findByUsername('goran'))?.emailVerified).toBe(false);
    } finally {
      await h.db.destroy();
    }
  });

  test('user create refuses the e-mail addresses the registration and profile pages refuse', async () => {
    for (const email of ['ana@example.r', `${'a'.repeat(65)}@example.rs`, `ana@${'d'.repeat(250)}.rs`, 'ana @example.rs']) {
      expectOneErrorLine(
        await kapija(env, ['user', 'create', '--username', 'milica', '--email', email], 'a long passphrase here\n'),
        64,
        /^kapija: --email is not an e-mail address$/m,
      );
    }
  });

  test('user create refuses a short password, a duplicate username and a bad birthdate', async () => {
    expectOneErrorLine(await kapija(env, ['user', 'create', '--username', 'marko'], 'short\n'), 64, /at least 8 characters/);
    expectOneErrorLine(
      await kapija(env, ['user', 'create', '--username', 'ANA.jovanovic'], 'another good password\n'),
      1,
      /^kapija: user "ana\.jovanovic" already exists$/m,
    );
    expectOneErrorLine(
      await kapija(env, ['user', 'create', '--username', 'a b'], 'another good password\n'),
      64,
      /^kapija: --username "a b" is not valid: use 3 to 64 letters/,
    );
    expectOneErrorLine(await kapija(env, ['user', 'create'], 'another good password\n'), 64, /^kapija: --username is required$/m);
    expectOneErrorLine(
      await kapija(env, ['user', 'create', '--username', 'marko', '--birthdate', '3.2.1985'], 'long enough password\n'),
      64,
      /--birthdate must be YYYY-MM-DD/,
    );
  });

  test('keys rotate publishes new signing keys first and keeps the old ones for verification', async () => {
    const config = loadConfig({ ...env, ISSUER: 'http://127.0.0.1:1' });
    const before = await createKapija(config);
    const oldKids = ((await request(before.app.callback()).get('/jwks').expect(200)).body as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    await before.close();
    expect(oldKids.length).toBeGreaterThan(0);

    const run = await kapija(env, ['keys', 'rotate']);
    expect(run.code).toBe(0);
    const newKids = /new signing keys: (.+)\n/.exec(run.stdout)?.[1]?.split(', ');
    expect(newKids).toHaveLength(3);

    // An instance started after the rotation signs with the new keys and still publishes the old ones.
    const after = await createKapija(config);
    try {
      const kids = ((await request(after.app.callback()).get('/jwks').expect(200)).body as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      expect(kids.slice(0, 3).sort()).toEqual([...newKids!].sort());
      expect(kids).toEqual(expect.arrayContaining(oldKids));
      expect(kids).toHaveLength(oldKids.length + 3);
    } finally {
      await after.close();
    }
  });

  describe('user totp-import', () => {
    test('provisions an OATH hardware token whose codes then verify once, and issues recovery codes', async () => {
      const created = await kapija(env, ['user', 'create', '--username', 'tokenholder'], 'a-long-enough-password');
      expect(created.code).toBe(0);
      const seed = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
      const run = await kapija(env, ['user', 'totp-import', '--username', 'TokenHolder', '--seed', seed]);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^TOTP token added for tokenholder\n/);
      expect(run.stdout.match(/^[0-9A-Z]{5}-[0-9A-Z]{5}$/gm)).toHaveLength(10);
      const h = openHandles(loadConfig(env));
      try {
        const account = await h.accounts.findByUsername('tokenholder');
        const code = await generate({ secret: seed });
        await expect(h.totp.verify(account!.id, code)).resolves.toMatchObject({ amr: ['otp'] });
        await expect(h.totp.verify(account!.id, code)).rejects.toMatchObject({ code: 'factor.totp.invalid_code' });
      } finally {
        await h.db.destroy();
      }
    });

    test('refuses an unknown user and a seed that is not base32', async () => {
      expectOneErrorLine(await kapija(env, ['user', 'totp-import', '--username', 'nobody-here', '--seed', 'JBSWY3DPEHPK3PXP']), 64, /no user "nobody-here"/);
      expectOneErrorLine(await kapija(env, ['user', 'totp-import', '--username', 'tokenholder', '--seed', 'not base32!']), 64, /--seed must be a base32/);
    });
  });

  test('identity proof records a verified identity (audit and ledger), refuses a bad or duplicate JMBG; registrar grant; user create takes no --jmbg', async () => {
    for (const u of ['proofed.one', 'proofed.two']) expect((await kapija(env, ['user', 'create', '--username', u], 'a long passphrase here\n')).code).toBe(0);
    const args = ['identity', 'proof', '--username', 'proofed.one', '--level', 'high', '--verifier', 'operator', '--office', 'IT', '--given-name', 'Ана', '--birthdate', '1990-01-01', '--jmbg', '0101990710008', '--document-number', 'X123'];
    const ok = await kapija(env, args);
    expect(ok).toEqual({ code: 0, stdout: 'identity of proofed.one verified at high (in_person)\n', stderr: '' });
    const h = openHandles(loadConfig(env));
    try {
      const account = (await h.accounts.findByUsername('proofed.one'))!;
      expect(await h.identity.levelOf(account.id)).toBe('high');
      expect((await h.audit.list({ chain: 'admin', action: 'identity.proofed', subject: account.id }))[0]!.actor).toBe('cli');
      expect((await h.audit.list({ chain: `account:${account.id}`, action: 'ledger.identity_proofed' })).length).toBe(1);
      // The document number and the JMBG are not stored in clear.
      expect(JSON.stringify(await h.db('verified_identities'))).not.toMatch(/X123|0101990710008/);
    } finally {
      await h.db.destroy();
    }
    expectOneErrorLine(await kapija(env, [...args.slice(0, 3), 'proofed.two', ...args.slice(4)]), 64, /another account already has a verified identity with this JMBG/);
    expectOneErrorLine(await kapija(env, ['identity', 'proof', '--username', 'proofed.two', '--level', 'high', '--verifier', 'operator', '--jmbg', '0101990710009']), 64, /--jmbg is not a valid JMBG/);
    expectOneErrorLine(await kapija(env, ['identity', 'proof', '--username', 'proofed.two', '--level', 'top', '--verifier', 'operator']), 64, /--level must be/);
    expect(await kapija(env, ['registrar', 'grant', '--username', 'proofed.two'])).toEqual({ code: 0, stdout: 'proofed.two is now a registrar\n', stderr: '' });
    expectOneErrorLine(await kapija(env, ['user', 'create', '--username', 'selfjmbg', '--jmbg', '0101990710008'], 'a long passphrase here\n'), 64, /--jmbg is recorded only with a document check/);
  });

  test('an unknown command exits 64 naming it', async () => {
    expectOneErrorLine(await kapija(env, ['frobnicate']), 64, /^kapija: unknown command "frobnicate"$/m);
    expectOneErrorLine(await kapija(env, ['client', 'delete']), 64, /unknown command "client delete"/);
  });
});

describe('kapija CLI configuration', () => {
  test('a bad variable exits 2 with one line naming it', async () => {
    const run = await kapija({ ...TEST_ENV, PORT: 'abc' }, ['client', 'list']);
    expectOneErrorLine(run, 2, /^kapija: configuration error: PORT: /);
  });

  test('production without MASTER_KEY exits 2 naming MASTER_KEY', async () => {
    const run = await kapija({ NODE_ENV: 'production', ISSUER: 'https://kapija.example.gov.rs', DATABASE_URL: 'postgres://x@127.0.0.1/x' }, ['migrate']);
    expectOneErrorLine(run, 2, /MASTER_KEY/);
  });

  test('an unreachable database is one line naming it, without a stack trace', async () => {
    const dir = await import('node:fs').then((fs) => fs.mkdtempSync('/tmp/kapija-cli-'));
    const bin = fileURLToPath(new URL('../../bin/kapija.js', import.meta.url));
    const env = { PATH: process.env.PATH ?? '', ...TEST_ENV, DATA_DIR: dir, MASTER_KEY: randomBytes(32).toString('base64'), DATABASE_URL: 'postgres://kapija@127.0.0.1:1/kapija' };
    const run = await promisify(execFile)(process.execPath, [bin, 'client', 'list'], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(run.code).toBe(1);
    const lines = run.stderr.split('\n').filter((l) => l && !/^oidc-provider WARNING/.test(l));
    expect(lines).toEqual([expect.stringMatching(/^kapija: cannot reach the database \(DATABASE_URL\): .*ECONNREFUSED/)]);
  });

  test('no command prints the usage and exits 1; help exits 0', async () => {
    const none = await kapija({ ...TEST_ENV }, []);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/^usage: kapija <command>/);
    const help = await kapija({ ...TEST_ENV }, ['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('keys rotate');
  });
});

describe('bin/kapija.js', () => {
  test('runs as a real process', async () => {
    const db = await createTestDatabase('sqlite');
    try {
      const bin = fileURLToPath(new URL('../../bin/kapija.js', import.meta.url));
      const env = { PATH: process.env.PATH ?? '', ...TEST_ENV, MASTER_KEY: randomBytes(32).toString('base64'), ...db.env };
      const created = await promisify(execFile)(process.execPath, [bin, 'client', 'create', '--client-id', 'bin-test', '--redirect-uri', 'https://a.example/cb'], { env });
      expect(created.stdout).toMatch(/^client bin-test created\n/);
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, 'client', 'list'], { env });
      // (oidc-provider may print a runtime notice on stderr; no error line from kapija)
      expect(stderr).not.toMatch(/kapija:/);
      expect(stdout).toMatch(/^bin-test\tclient_secret_basic\thttps:\/\/a\.example\/cb\n$/);
      // and the exit status reaches the shell
      await expect(promisify(execFile)(process.execPath, [bin, 'frobnicate'], { env })).rejects.toMatchObject({ code: 64 });
    } finally {
      await db.drop();
    }
  });
});
