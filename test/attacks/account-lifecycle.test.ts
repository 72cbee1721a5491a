/**
 * Attack cases against the account's life cycle: "this wasn't me" leaving the intruder a way back,
 * links and queued mail outliving a deleted or locked account, identifiers long enough to break a
 * query, registrations that squat an address or carry a stranger's text into Kapija's mail, passwords
 * set outside the policy or hashed without normalisation, and a production start without a second
 * factor. Each named after the standard it defends.
 */
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import { generateSecret } from 'otplib';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { openPortal, signIn, submitForm, SignInError } from '../support/sign-in.js';
import { startSmtp, linkIn, type TestSmtp } from '../support/smtp.js';
import { stores, createTestDatabase, type StoreName } from '../support/databases.js';
import { createTestAccount, createTestClient, kapijaForSuite, TEST_ENV, type RunningKapija } from '../support/kapija.js';
import { runCli } from '../../src/cli/index.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createPasswordHasher } from '../../src/factors/password/hasher.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const unique = () => randomBytes(4).toString('hex');
type Citizen = Awaited<ReturnType<typeof createTestAccount>>;

function authorize(server: RunningKapija, clientId: string): URL {
  const u = new URL('/auth', server.url);
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  u.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, prompt: 'consent', code_challenge: challenge, code_challenge_method: 'S256' }).toString();
  return u;
}

/** Opens /account in `agent`, signing in through Kapija if needed; returns the portal page. */
const portal = (server: RunningKapija, agent: Agent, citizen: Citizen, path = '/account'): Promise<Page> => openPortal(agent, server.url, citizen, path);

describe('"this wasn\'t me"', () => {
  let smtp: TestSmtp;
  beforeAll(async () => {
    smtp = await startSmtp();
  });
  const server = kapijaForSuite(() => ({ env: { SMTP_URL: smtp.url } }));
  afterAll(async () => {
    await smtp?.close();
  });

  test('ASVS 5.0 V6.3.7 / NIST 800-63B 6.1.2.3: it removes the factors added since the reported sign-in, switches the password off until a mailed reset, and says what was done', async () => {
    const citizen = await createTestAccount(server.kapija, { email: `nisamja.${unique()}@example.rs` });
    const id = citizen.account.id;
    // The citizen's own factors are two days old.
    await server.kapija.db('credentials').where({ account_id: id }).update({ created_at: Date.now() - 2 * 24 * 3600_000 });
    const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    await signIn(new Agent('en'), authorize(server, rp.clientId), REDIRECT, citizen);

    // An intruder with the password and a code signs in from another browser and adds a factor of their own.
    await signIn(new Agent('en'), authorize(server, rp.clientId), REDIRECT, citizen);
    const intruderSecret = generateSecret({ length: 20 });
    await server.kapija.totp.importSeed(id, intruderSecret, 'Intruder');
    const notice = await smtp.waitFor(citizen.account.email!, (m) => m.subject === 'Нова пријава на ваш налог на Капији');
    const notMe = linkIn(notice, `${server.url}/not-me?token=`);

    const victim = new Agent('en');
    const form = await victim.request(notMe);
    expect(form.status).toBe(200);
    // Before confirming, the citizen sees what will go.
    expect(form.body).toMatch(/<ul id="notme-will">[\s\S]*switch your password off[\s\S]*<li data-factor="totp">authenticator app<\/li>/);
    expect(form.body).not.toMatch(/data-factor="recovery"/);

    const receipt = await submitForm(victim, form, /^\/not-me$/, { token: hiddenField(form.body, 'token')!, code: citizen.recoveryCodes[0]! });
    expect(receipt.status).toBe(200);
    expect(receipt.body).toContain('Your password is switched off');
    expect(receipt.body).toMatch(/<ul id="notme-removed">\s*<li data-factor="totp">authenticator app<\/li>\s*<\/ul>/);
    expect(receipt.body).toContain('We have sent a link to set a new password');

    // Only the intruder's factor is gone; the citizen's own key and codes stay.
    const left = await server.kapija.credentials.list(id);
    expect(left.filter((c) => c.type === 'totp').map((c) => c.name)).toEqual(['Test app']);
    expect(left.filter((c) => c.type === 'recovery' && !c.usedAt)).toHaveLength(9);
    // The password no longer signs in.
    await expect(signIn(new Agent('en'), authorize(server, rp.clientId), REDIRECT, citizen)).rejects.toThrow(SignInError);

    // A summary in the citizen's language, with the link for a new password.
    const secured = await smtp.waitFor(citizen.account.email!, (m) => m.subject === 'Ваш налог на Капији је заштићен');
    expect(secured.language).toBe('sr-Cyrl');
    expect(secured.text).toContain('Окончане сесије: 2');
    expect(secured.text).toContain('апликација за аутентификацију');
    const reset = linkIn(secured, `${server.url}/recover/reset?token=`);
    const resetForm = await victim.request(reset);
    expect(resetForm.status).toBe(200);
    const password = `nova lozinka ${unique()}`;
    const done = await submitForm(victim, resetForm, /^\/recover\/reset$/, { token: hiddenField(resetForm.body, 'token')!, password, password_confirm: password });
    expect(done.status).toBe(200);
    const back = await signIn(new Agent('en'), authorize(server, rp.clientId), REDIRECT, { ...citizen, password });
    expect(back.searchParams.get('code')).toBeTruthy();
  }, 90_000);
});

describe.each(stores())('links and mail of a deleted or locked account (%s)', (store: StoreName) => {
  let smtp: TestSmtp;
  beforeAll(async () => {
    smtp = await startSmtp();
  });
  const server = kapijaForSuite(() => ({ store, env: { SMTP_URL: smtp.url } }));
  afterAll(async () => {
    await smtp?.close();
  });

  test('ASVS 5.0 V6.4.1 / GDPR Art. 17: deletion revokes every pending link and queued mail; a link followed afterwards writes nothing', async () => {
    const citizen = await createTestAccount(server.kapija, { email: `brisanje.${unique()}@example.rs` });
    const id = citizen.account.id;
    const newAddress = `nova.${unique()}@example.rs`;
    await server.kapija.registrationAndRecovery.requestEmailChange(id, newAddress, 'en');
    const change = linkIn(await smtp.waitFor(newAddress), `${server.url}/verify-email?token=`);

    // A reset mail the relay does not take yet waits in the queue.
    smtp.refuse(451);
    await server.kapija.registrationAndRecovery.requestPasswordReset(citizen.username, { locale: 'en' });
    for (let i = 0; i < 100 && (await server.kapija.db('mail_queue').count<{ n: number }[]>({ n: '*' }))[0]!.n == 0; i += 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Number((await server.kapija.db('mail_queue').count<{ n: number }[]>({ n: '*' }))[0]!.n)).toBe(1);
    smtp.refuse(undefined);

    const agent = new Agent('en');
    const data = await portal(server, agent, citizen, '/account/data');
    const deleted = await submitForm(agent, data, /\/account\/delete$/, { confirm: citizen.username });
    expect(deleted.status).toBe(303);
    expect(Number((await server.kapija.db('mail_queue').count<{ n: number }[]>({ n: '*' }))[0]!.n)).toBe(0);

    const stranger = new Agent('en');
    const page = await stranger.request(change);
    expect(page.status).toBe(400);
    expect(page.body).toContain('This link is not valid');
    const csrf = await stranger.request(new URL('/register', server.url));
    const posted = await stranger.request(new URL('/verify-email', server.url), { form: { _csrf: hiddenField(csrf.body, '_csrf')!, token: change.searchParams.get('token')! } });
    expect(posted.status).toBe(400);
    const erased = await server.kapija.accounts.findById(id);
    expect(erased).toMatchObject({ email: null, emailVerified: false });
    expect((await server.kapija.accounts.findByEmail(newAddress)).length).toBe(0);
    const live = await server.kapija.db('account_tokens').where({ account_id: id }).whereNull('used_at');
    expect(live).toEqual([]);
  });

  test('ASVS 5.0 V6.4.1: a mailed link of a locked account does nothing (no address written, no password set)', async () => {
    const citizen = await createTestAccount(server.kapija, { email: `zakljucan.${unique()}@example.rs` });
    const id = citizen.account.id;
    const newAddress = `zakljucan.nova.${unique()}@example.rs`;
    await server.kapija.registrationAndRecovery.requestEmailChange(id, newAddress, 'en');
    const change = linkIn(await smtp.waitFor(newAddress), `${server.url}/verify-email?token=`);
    await server.kapija.registrationAndRecovery.requestPasswordReset(citizen.username, { locale: 'en' });
    const reset = linkIn(await smtp.waitFor(citizen.account.email!, (m) => m.text.includes('/recover/reset?token=')), `${server.url}/recover/reset?token=`);
    await server.kapija.accounts.setStatus(id, 'locked');

    const agent = new Agent('en');
    expect((await agent.request(change)).status).toBe(400);
    expect((await agent.request(reset)).status).toBe(400);
    const csrf = hiddenField((await agent.request(new URL('/register', server.url))).body, '_csrf')!;
    expect((await agent.request(new URL('/verify-email', server.url), { form: { _csrf: csrf, token: change.searchParams.get('token')! } })).status).toBe(400);
    const password = `zakljucana ${unique()}`;
    expect((await agent.request(new URL('/recover/reset', server.url), { form: { _csrf: csrf, token: reset.searchParams.get('token')!, password, password_confirm: password } })).status).toBe(400);
    const after = await server.kapija.accounts.findCredentialsByUsername(citizen.username);
    expect(after?.account.email).toBe(citizen.account.email);
    expect(await server.kapija.passwords.verify(after?.passwordHash, citizen.password)).toBe(true);
  });

  test('ASVS 5.0 V2.2.1 / V16.5.3: over-long identifiers on every self-service form get a 4xx page, never a 500', async () => {
    const agent = new Agent('en');
    const form = async (path: string) => {
      const page = await agent.request(new URL(path, server.url));
      expect(page.status).toBe(200);
      return page;
    };
    const recover = await form('/recover');
    const tooLong = await submitForm(agent, recover, /^\/recover$/, { identifier: 'a'.repeat(300) });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body).toContain('at most 254 characters');
    // The longest address there can be is looked up (and throttled by) like any other.
    const longest = `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(58)}.rs`;
    expect(longest).toHaveLength(254);
    expect((await submitForm(agent, recover, /^\/recover$/, { identifier: longest })).status).toBe(200);

    const register = await form('/register');
    const password = `duga lozinka ${unique()}`;
    const base = { given_name: 'Ana', family_name: 'Jovanović', password, password_confirm: password };
    expect((await submitForm(agent, register, /^\/register$/, { ...base, username: `u${unique()}`, email: longest })).status).toBe(200);
    const bad = [
      { username: 'x'.repeat(300), email: `a${unique()}@example.rs` },
      // Four characters as typed, 72 once normalised (NFKC) as usernames are stored.
      { username: '\uFDFA'.repeat(4), email: `a${unique()}@example.rs` },
      { username: `u${unique()}`, email: `${'a'.repeat(300)}@example.rs` },
      { username: `u${unique()}`, email: `a${unique()}@example.rs`, given_name: 'A'.repeat(300) },
    ];
    for (const fields of bad) {
      const res = await submitForm(agent, register, /^\/register$/, { ...base, ...fields });
      expect(res.status).toBe(400);
      expect(res.body).toMatch(/aria-invalid="true"/);
    }

    // The account portal's change of address: an address longer than the column holds is refused at once.
    const citizen = await createTestAccount(server.kapija);
    const signedIn = new Agent('en');
    const profile = await portal(server, signedIn, citizen, '/account/profile');
    const long = await submitForm(signedIn, profile, /\/account\/email$/, { email: `${'a'.repeat(60)}@${'b'.repeat(100)}.${'c'.repeat(120)}` });
    expect(long.status).toBe(400);
    expect(await server.kapija.db('account_tokens').where({ account_id: citizen.account.id, purpose: 'change_email' })).toEqual([]);
  });
});

describe('registration with someone else\'s address', () => {
  let smtp: TestSmtp;
  beforeAll(async () => {
    smtp = await startSmtp();
  });
  const server = kapijaForSuite(() => ({ env: { SMTP_URL: smtp.url } }));
  afterAll(async () => {
    await smtp?.close();
  });

  async function register(fields: Record<string, string>): Promise<Page> {
    const agent = new Agent('en');
    const form = await agent.request(new URL('/register', server.url));
    return submitForm(agent, form, /^\/register$/, fields);
  }

  test('ASVS 5.0 V6.4.3 / OWASP Content Spoofing: an unverified registration neither holds the address nor puts the registrant\'s text into mail to it', async () => {
    const victim = `vlasnica.${unique()}@example.rs`;
    const squatter = `platiodmah${unique()}`;
    const lure = 'Call 0800-123-456 to keep your account';
    const password = `lozinka od reci ${unique()}`;
    expect((await register({ username: squatter, email: victim, given_name: lure, family_name: 'x', password, password_confirm: password })).status).toBe(200);
    const first = await smtp.waitFor(victim, (m) => m.subject === 'Confirm your e-mail address for Kapija');
    expect(first.text).not.toContain(lure);
    expect(first.html).not.toContain('0800-123-456');
    expect(first.text).not.toContain(squatter);

    // The owner registers with her address at once, receives her own link and gets the account.
    const owner = `ana${unique()}`;
    expect((await register({ username: owner, email: victim, given_name: 'Ana', family_name: 'Jovanović', password, password_confirm: password })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const mails = smtp.to(victim);
    expect(mails.map((m) => m.subject)).not.toContain('Someone tried to register with your address');
    const own = mails.filter((m) => m.subject === 'Confirm your e-mail address for Kapija');
    expect(own).toHaveLength(2);
    const link = linkIn(own[1]!, `${server.url}/verify-email?token=`);
    const agent = new Agent('en');
    const confirm = await agent.request(link);
    expect(confirm.status).toBe(200);
    expect((await submitForm(agent, confirm, /^\/verify-email$/, { token: hiddenField(confirm.body, 'token')! })).status).toBe(200);
    expect(await server.kapija.accounts.findByUsername(owner)).toMatchObject({ status: 'active', email: victim, emailVerified: true });

    // The squatter's link (which went to the owner) can no longer take the address.
    const squat = linkIn(first, `${server.url}/verify-email?token=`);
    expect((await agent.request(squat)).status).toBe(200);
    const csrf = hiddenField((await agent.request(squat)).body, '_csrf')!;
    expect((await agent.request(new URL('/verify-email', server.url), { form: { _csrf: csrf, token: squat.searchParams.get('token')! } })).status).toBe(400);
    expect((await server.kapija.accounts.findByUsername(squatter))?.status).toBe('pending');

    // And an unverified registration does not last: the purge removes it after 24 hours.
    await server.kapija.db('accounts').where({ username: squatter }).update({ created_at: Date.now() - 25 * 3600_000 });
    await server.kapija.registrationAndRecovery.purgeExpired();
    expect(await server.kapija.accounts.findByUsername(squatter)).toBeUndefined();
  });
});

describe('passwords set outside the sign-up pages', () => {
  async function cli(env: Record<string, string>, argv: string[], stdin: string) {
    let stdout = '';
    let stderr = '';
    const code = await runCli(argv, env, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), stdin: Readable.from([stdin]) });
    return { code, stdout, stderr };
  }

  test('NIST 800-63B 5.1.1.2 / ASVS 5.0 V6.2.4: `kapija user create` and `kapija admin create --create` refuse common and breached passwords and ones containing the username', async () => {
    const db = await createTestDatabase('sqlite');
    try {
      const env = { ...TEST_ENV, MASTER_KEY: randomBytes(32).toString('base64'), ...db.env };
      expect((await cli(env, ['migrate'], '')).code).toBe(0);
      for (const [argv, password, why] of [
        [['user', 'create', '--username', 'marko'], 'password1\n', /commonly used or breached/],
        [['user', 'create', '--username', 'marko'], 'marko-the-great\n', /must not contain the username/],
        [['admin', 'create', '--username', 'ana.admin', '--create'], 'qwertyuiop\n', /commonly used or breached/],
      ] as const) {
        const run = await cli(env, [...argv], password);
        expect(run.code).toBe(64);
        expect(run.stderr).toMatch(why);
      }
      expect((await cli(env, ['user', 'create', '--username', 'marko'], 'tri duge reci zajedno\n')).code).toBe(0);
    } finally {
      await db.drop();
    }
  });

  test('NIST 800-63B 5.1.1.2 (Unicode normalisation, NFC): a password typed in either form verifies; an old hash of the non-NFC form still verifies and is re-hashed', async () => {
    const params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
    const hasher = createPasswordHasher(params);
    const composed = 'Šećer i čaj u Đakovu'.normalize('NFC');
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    const hash = await hasher.hash(decomposed);
    expect(await hasher.verify(hash, composed)).toBe(true);
    expect(await hasher.verify(hash, decomposed)).toBe(true);
    expect(hasher.needsRehash(hash)).toBe(false);
    expect(await hasher.verify(hash, 'Secer i caj u Djakovu')).toBe(false);

    // A hash made before normalisation, of the decomposed form as it was typed.
    const legacy = await argon2.hash(decomposed, { type: argon2.argon2id, ...params });
    expect(await hasher.verify(legacy, decomposed)).toBe(true);
    expect(hasher.needsRehash(legacy)).toBe(true);
    const rehashed = await hasher.hash(decomposed);
    expect(await hasher.verify(rehashed, composed)).toBe(true);
  });
});

describe('production configuration', () => {
  test('NIST 800-63B 4.2.1 (AAL2) / ASVS 5.0 V6.3.3: NODE_ENV=production refuses REQUIRE_SECOND_FACTOR=false at start-up', () => {
    const production = {
      NODE_ENV: 'production',
      MASTER_KEY: randomBytes(32).toString('base64'),
      ISSUER: 'https://kapija.gov.example',
      DATABASE_URL: 'postgres://kapija@db.internal:5432/kapija',
    };
    expect(() => loadConfig({ ...production, REQUIRE_SECOND_FACTOR: 'false' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...production, REQUIRE_SECOND_FACTOR: 'false' })).toThrow(/^REQUIRE_SECOND_FACTOR:/);
    expect(loadConfig({ ...production, REQUIRE_SECOND_FACTOR: 'true' }).requireSecondFactor).toBe(true);
    expect(loadConfig({ ...TEST_ENV, REQUIRE_SECOND_FACTOR: 'false' }).requireSecondFactor).toBe(false);
  });
});
