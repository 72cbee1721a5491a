/**
 * Property-based fuzzing (fast-check) of every endpoint and form: the engine's authorization, token,
 * PAR, userinfo, introspection, revocation and logout endpoints, the sign-in steps, the account
 * portal, the administration console and API, registration and recovery. Inputs: wrong types, huge
 * values, unicode and control characters, missing and repeated parameters, mismatched bodies and
 * content types, with and without valid credentials and CSRF tokens so the input reaches the code
 * behind them. Whatever comes in: no 5xx, no stack trace or internal detail in the body, nothing
 * logged at error level, no unhandled rejection.
 *
 * Runs FUZZ_RUNS cases per property (default 100; `npm run fuzz` 2000; FUZZ_RUNS=5000 npm run fuzz).
 */
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { createLogger } from '../../src/security/redact.js';
import { createRoleRepository } from '../../src/store/roles.js';
import { createRegistrarRoles } from '../../src/identity/registrar.js';
import { Agent, hiddenField, type Page } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { PKCE_CHALLENGE, withVerifier } from '../support/pkce.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? (process.env.npm_lifecycle_event === 'fuzz' ? 2000 : 100));
const REDIRECT = 'http://127.0.0.1:9/cb';
const LEAKS = [/\/work\//, /node_modules/, /^\s*at /m, /\bat [\w$.<>]+ \(/, /node:internal/, /\.ts:\d+/, /\.js:\d+:\d+/, /knex|sqlite|SQLITE_|relation "|syntax error at/i, /TypeError|ReferenceError|RangeError/];

let server: RunningKapija;
const logged: { level: number; msg: string }[] = [];
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
let sent = 0;
const statuses: Record<string, number> = {};
let clientId: string;
let basic: string;
let cibaBasic: string;
let citizenUsername: string;
let accessToken: string;
let refreshToken: string;
let idToken: string;
let interactionUid: string;
let walletRequestIds: string[] = [];
let adminToken: string;
let registrarToken: string;
let citizenAccountId: string;
const agents: Record<'citizen' | 'portal' | 'console' | 'anonymous', Agent> = { citizen: new Agent(), portal: new Agent(), console: new Agent(), anonymous: new Agent() };
const csrf: Partial<Record<keyof typeof agents, string>> = {};

async function csrfOf(agent: Agent, path: string): Promise<string> {
  const page = await agent.request(new URL(path, server.url));
  const token = hiddenField(page.body, '_csrf');
  if (!token) throw new Error(`no CSRF token on ${path} (${page.status})`);
  return token;
}

async function signInTo(agent: Agent, path: string, citizen: Awaited<ReturnType<typeof createTestAccount>>, callbackPath: string): Promise<void> {
  const first = await agent.request(new URL(path, server.url));
  const location = first.headers.get('location');
  if (first.status !== 303 && first.status !== 302) throw new Error(`${path} answered ${first.status}`);
  const cb = await signIn(agent, new URL(location!, server.url), `${server.url}${callbackPath}`, citizen);
  const back = await agent.request(cb);
  if (back.status >= 400) throw new Error(`${callbackPath} answered ${back.status}`);
}

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        try {
          const { level, msg } = JSON.parse(line) as { level: number; msg: string };
          logged.push({ level, msg });
        } catch {
          logged.push({ level: 50, msg: line });
        }
      }
      done();
    },
  });
  // A trusted issuer of PIDs turns on wallet sign-in, so its pages and endpoints are fuzzed too.
  const walletIssuers = JSON.stringify([{ issuer: 'https://pid.fuzz.example', level: 'high', jwks: { keys: [{ kty: 'EC', crv: 'P-256', kid: 'k', x: 'WbbaSStuffP7TxCA6pdJMAD40KaK8Oh6aXjzp24KvU8', y: 'Q6q0Gvg2wS-SNvAgMjkgXvLyj-IyTAH1tTtWtGZ1fkc' }] } }]);
  server = await startKapija({ env: { ADMIN_MIN_ACR: 'substantial', LOG_LEVEL: 'warn', WALLET_TRUSTED_ISSUERS: walletIssuers }, options: { logger: createLogger('warn', sink) } });
  const k = server.kapija;
  const rp = await createTestClient(k, { redirect_uris: [REDIRECT], scope: 'openid profile email offline_access kapija:admin' });
  clientId = rp.clientId;
  basic = `Basic ${Buffer.from(`${rp.clientId}:${rp.clientSecret}`).toString('base64')}`;
  const citizen = await createTestAccount(k);
  citizenUsername = citizen.username;
  const ciba = await createTestClient(k, { grant_types: ['urn:openid:params:grant-type:ciba'], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'poll', subject_type: 'public', scope: 'openid profile' });
  cibaBasic = `Basic ${Buffer.from(`${ciba.clientId}:${ciba.clientSecret}`).toString('base64')}`;
  const admin = await createTestAccount(k);
  await createRoleRepository(k.db).grant(admin.account.id, 'admin', 'test');

  // A citizen signed in at the service, with tokens to present.
  const auth = new URL('/auth', server.url);
  auth.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid offline_access', redirect_uri: REDIRECT, prompt: 'consent', ...PKCE_CHALLENGE }).toString();
  const cb = await signIn(agents.citizen, auth, REDIRECT, citizen);
  const tokens = (await (
    await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(withVerifier({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT })),
    })
  ).json()) as Record<string, string>;
  ({ access_token: accessToken, refresh_token: refreshToken, id_token: idToken } = tokens as { access_token: string; refresh_token: string; id_token: string });

  // A sign-in left waiting at its first step.
  const pending = await agents.anonymous.request(auth);
  interactionUid = new URL(pending.headers.get('location')!, server.url).pathname.split('/')[2]!;
  csrf.anonymous = await csrfOf(agents.anonymous, `/interaction/${interactionUid}`);
  // Its wallet page: live presentation requests to fetch and answer.
  const walletPage = await agents.anonymous.request(new URL(`/interaction/${interactionUid}/wallet`, server.url));
  walletRequestIds = [...walletPage.body.matchAll(/wallet%2Frequest%2F([A-Za-z0-9_-]{32})|request=([A-Za-z0-9_-]{32})/g)].map((m) => m[1] ?? m[2]!);
  if (walletRequestIds.length < 2) throw new Error(`no wallet requests on the wallet page (${walletPage.status})`);

  await signInTo(agents.portal, '/account', citizen, '/account/callback');
  csrf.portal = await csrfOf(agents.portal, '/account/security');
  await signInTo(agents.console, '/admin/login', admin, '/admin/callback');
  csrf.console = await csrfOf(agents.console, '/admin/clients/new');
  csrf.citizen = await csrfOf(agents.citizen, '/register');

  const client = await k.provider.Client.find(clientId);
  adminToken = await new k.provider.AccessToken({ accountId: admin.account.id, client, scope: 'openid kapija:admin', grantId: 'fuzz', extra: { acr: 'http://eidas.europa.eu/LoA/high', auth_time: Math.floor(Date.now() / 1000) } } as never).save();
  const registrar = await createTestAccount(k);
  await createRegistrarRoles(k.repos).grant(registrar.account.id, 'test');
  registrarToken = await new k.provider.AccessToken({ accountId: registrar.account.id, client, scope: 'openid kapija:admin', grantId: 'fuzz', extra: { acr: 'http://eidas.europa.eu/LoA/high', auth_time: Math.floor(Date.now() / 1000) } } as never).save();
  citizenAccountId = citizen.account.id;
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  process.stdout.write(`\n[fuzz] ${sent} requests, ${RUNS} runs per property, statuses ${JSON.stringify(statuses)}\n`);
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------- inputs

const huge = fc.constantFrom('x'.repeat(70_000), '%'.repeat(5000), '𝕏'.repeat(10_000), '[' .repeat(3000), '0'.repeat(400));
const scalar = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 2, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', 'undefined', 'true', '[]', '{}', '__proto__', 'constructor', '../../etc/passwd', '<script>alert(1)</script>', "' or 1=1 --", '\u0000', '\r\nset-cookie: x=1', '%00', '%zz', 'javascript:alert(1)') },
  { weight: 1, arbitrary: huge },
);
const value = fc.oneof({ weight: 5, arbitrary: scalar }, { weight: 1, arbitrary: fc.array(scalar, { minLength: 2, maxLength: 4 }) });
const jsonValue = fc.oneof(scalar, fc.integer(), fc.boolean(), fc.constant(null), fc.array(scalar, { maxLength: 3 }), fc.dictionary(scalar, scalar, { maxKeys: 3 }));

/** A parameter map over known names (each kept, dropped, or fuzzed) plus random names. */
function params(known: Record<string, string>): fc.Arbitrary<Record<string, string | string[]>> {
  const entries = Object.entries(known).map(([k, v]) =>
    fc.oneof({ weight: 2, arbitrary: fc.constant([k, v] as const) }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: value.map((x) => [k, x] as const) }),
  );
  return fc.tuple(fc.tuple(...entries), fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), value, { maxKeys: 3 })).map(([ks, extra]) => {
    const out: Record<string, string | string[]> = { ...extra };
    for (const e of ks) if (e) out[e[0]] = e[1] as string | string[];
    return out;
  });
}

type Encoding = 'form' | 'json' | 'garbage' | 'query';
const encoding = fc.constantFrom<Encoding>('form', 'form', 'json', 'garbage', 'query');

function encode(p: Record<string, string | string[]>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) for (const one of Array.isArray(v) ? v : [v]) s.append(k, typeof one === 'string' ? one : JSON.stringify(one) ?? '');
  return s.toString();
}

// --------------------------------------------------------------------------------------------- sender

interface Shot {
  method: string;
  path: string;
  params: Record<string, string | string[]>;
  enc: Encoding;
  headers?: Record<string, string>;
  agent?: Agent;
  accept?: string;
}

async function fire(shot: Shot): Promise<Page> {
  const url = new URL(shot.path, server.url);
  const headers: Record<string, string> = { accept: shot.accept ?? 'text/html', ...shot.headers };
  let body: string | undefined;
  if (shot.enc === 'query' || shot.method === 'GET') {
    url.search = encode(shot.params);
  } else if (shot.enc === 'form') {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = encode(shot.params);
  } else if (shot.enc === 'json') {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(shot.params);
  } else {
    headers['content-type'] = ['text/plain', 'application/xml', 'multipart/form-data', 'application/json', 'application/x-www-form-urlencoded'][url.pathname.length % 5]!;
    body = `${encode(shot.params)}{"\u0000`;
  }
  if (shot.agent) {
    const cookie = shot.agent.jar.header(url);
    if (cookie) headers.cookie = cookie;
  }
  sent += 1;
  const res = await fetch(url, { method: shot.method, headers, body, redirect: 'manual' });
  statuses[res.status] = (statuses[res.status] ?? 0) + 1;
  return { status: res.status, url, body: await res.text(), headers: res.headers };
}

function check(page: Page, shot: Shot): void {
  const where = `${shot.method} ${shot.path} ${JSON.stringify(shot.params).slice(0, 300)} (${shot.enc}) → ${page.status}`;
  if (page.status >= 500) throw new Error(`server error: ${where}: ${page.body.slice(0, 300)}`);
  for (const leak of LEAKS) if (leak.test(page.body)) throw new Error(`leak ${leak}: ${where}: ${page.body.slice(0, 300)}`);
  if (page.headers.get('location')?.match(/[\r\n]/)) throw new Error(`header split: ${where}`);
}

async function fuzz(make: fc.Arbitrary<Shot>): Promise<void> {
  await fc.assert(
    fc.asyncProperty(make, async (shot) => {
      check(await fire(shot), shot);
    }),
    { numRuns: RUNS },
  );
}

const accept = fc.constantFrom('text/html', 'application/json', '*/*', '');

// ---------------------------------------------------------------------------------------------- engine

const authParams = () => ({
  client_id: clientId,
  response_type: 'code',
  scope: 'openid profile',
  redirect_uri: REDIRECT,
  state: 's',
  nonce: 'n',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
  prompt: 'login',
  max_age: '60',
  acr_values: 'http://eidas.europa.eu/LoA/substantial',
  claims: '{"id_token":{"acr":{"essential":true}}}',
  ui_locales: 'sr-Latn',
  request_uri: 'urn:ietf:params:oauth:request_uri:x',
  request: 'eyJhbGciOiJub25lIn0.e30.',
  id_token_hint: 'x',
  login_hint: 'ana',
  response_mode: 'query',
});

describe('the engine\'s endpoints', () => {
  test('authorization endpoint (GET and POST)', () =>
    fuzz(fc.record({ method: fc.constantFrom('GET', 'POST'), path: fc.constant('/auth'), params: params(authParams()), enc: encoding, accept, agent: fc.constantFrom(undefined, agents.citizen) }).map((s) => s as Shot)));

  test('token endpoint, every grant type, with and without client authentication', () =>
    fuzz(
      fc.record({
        method: fc.constant('POST'),
        path: fc.constant('/token'),
        params: params({
          grant_type: 'authorization_code',
          code: 'x',
          redirect_uri: REDIRECT,
          code_verifier: 'v'.repeat(43),
          refresh_token: refreshToken,
          scope: 'openid',
          client_id: clientId,
          client_secret: 'nope',
          resource: 'https://rs.example',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: 'a.b.c',
        }),
        enc: encoding,
        accept,
        headers: fc.constantFrom({}, { authorization: basic }, { authorization: 'Basic %%%' }, { authorization: 'Basic ' + Buffer.from('ä:ö').toString('base64') }, { dpop: 'x.y.z', authorization: basic }),
      }).map((s) => s as Shot),
    ));

  test('pushed authorization requests', () =>
    fuzz(fc.record({ method: fc.constant('POST'), path: fc.constant('/request'), params: params(authParams()), enc: encoding, accept, headers: fc.constantFrom({}, { authorization: basic }) }).map((s) => s as Shot)));

  test('backchannel authentication (CIBA) and its poll', () =>
    fuzz(
      fc.record({
        method: fc.constant('POST'),
        path: fc.constantFrom('/backchannel', '/token'),
        params: params({ grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: 'x', scope: 'openid profile', login_hint: citizenUsername, binding_message: 'A-1', requested_expiry: '60', acr_values: 'http://eidas.europa.eu/LoA/substantial', claims: '{"id_token":{"email":null}}' }),
        enc: encoding,
        accept,
        headers: fc.constantFrom({}, { authorization: cibaBasic }, { authorization: basic }),
      }).map((s) => s as Shot),
    ));

  test('userinfo with valid, fuzzed and repeated tokens', () =>
    fuzz(
      fc.record({
        method: fc.constantFrom('GET', 'POST'),
        path: fc.constant('/me'),
        params: params({ access_token: accessToken, claims: '{}' }),
        enc: encoding,
        accept,
        headers: fc.oneof(fc.constant({}), fc.constant({ authorization: `Bearer ${accessToken}` }), scalar.map((t) => ({ authorization: `Bearer ${t.replace(/[^\x20-\x7e]/g, '')}` })), fc.constant({ authorization: `DPoP ${accessToken}` })),
      }).map((s) => s as Shot),
    ));

  test('the PID issuer: credential and nonce endpoints, the pre-authorized code grant, status lists and issuer metadata', () =>
    fuzz(
      fc.record({
        method: fc.constantFrom('GET', 'POST'),
        path: fc.constantFrom('/credential', '/challenge', '/token', '/wallet/status/00000000-0000-0000-0000-000000000000', '/wallet/status/x', '/.well-known/jwt-vc-issuer', '/.well-known/openid-credential-issuer'),
        params: params({
          grant_type: 'urn:ietf:params:oauth:grant-type:pre-authorized_code',
          'pre-authorized_code': 'x',
          tx_code: '123456',
          client_id: clientId,
          resource: 'https://rs.example',
          credential_configuration_id: 'eu.europa.ec.eudi.pid.1',
          proof: '{"proof_type":"jwt","jwt":"a.b.c"}',
        }),
        enc: encoding,
        accept,
        headers: fc.oneof(fc.constant({}), fc.constant({ authorization: `Bearer ${accessToken}` }), scalar.map((t) => ({ authorization: `Bearer ${t.replace(/[^\x20-\x7e]/g, '')}` }))),
      }).map((s) => s as Shot),
    ));

  test('introspection and revocation', () =>
    fuzz(
      fc.record({
        method: fc.constant('POST'),
        path: fc.constantFrom('/token/introspection', '/token/revocation'),
        params: params({ token: accessToken, token_type_hint: 'access_token', client_id: clientId }),
        enc: encoding,
        accept,
        headers: fc.constantFrom({}, { authorization: basic }),
      }).map((s) => s as Shot),
    ));

  test('end session (RP-initiated logout) and its confirmation', () =>
    fuzz(
      fc.record({
        method: fc.constantFrom('GET', 'POST'),
        path: fc.constantFrom('/session/end', '/session/end/confirm'),
        params: params({ id_token_hint: idToken, post_logout_redirect_uri: REDIRECT, state: 's', client_id: clientId, ui_locales: 'en', logout: 'yes', xsrf: 'x' }),
        enc: encoding,
        accept,
        agent: fc.constantFrom(undefined, agents.anonymous),
      }).map((s) => s as Shot),
    ));
});

// ------------------------------------------------------------------------------------- Kapija's pages

const STEPS = ['', '/login', '/totp', '/recovery', '/totp/enrol', '/continue', '/recovery/new', '/webauthn/options', '/webauthn', '/webauthn/register', '/passkey', '/confirm', '/abort', '/wallet', '/wallet/status', '/wallet/start', '/wallet/identify', '/wallet/refused'];
const PORTAL = ['/account', '/account/profile', '/account/password', '/account/email', '/account/sessions', '/account/sessions/end', '/account/services', '/account/services/revoke', '/account/security', '/account/security/remove', '/account/security/recovery-codes', '/account/security/totp', '/account/activity', '/account/activity/export', '/account/data', '/account/data/export.json', '/account/callback', '/account/login', '/account/wallet', '/account/wallet/revoke', '/account/requests', '/account/requests/approve', '/account/requests/deny'];
const CONSOLE = ['/admin', '/admin/clients', '/admin/clients/new', '/admin/clients/nope', '/admin/clients/nope/secret', '/admin/clients/nope/disable', '/admin/clients/nope/delete', '/admin/citizens', '/admin/citizens/nope', '/admin/citizens/nope/lock', '/admin/sessions', '/admin/sessions/end', '/admin/audit', '/admin/audit/export', '/admin/callback', '/admin/desk', '/admin/desk/check', '/admin/desk/identity/nope', '/admin/desk/identity/nope/revoke', '/admin/desk/pid/nope'];
const SELF = ['/register', '/verify-email', '/recover', '/recover/reset', '/not-me', '/activate'];

/** A form post or page view with the agent's CSRF token kept, dropped or fuzzed. */
function form(paths: string[], agentName: keyof typeof agents, known: Record<string, string>): fc.Arbitrary<Shot> {
  return fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'POST', 'POST'),
      path: fc.constantFrom(...paths),
      params: params({ _csrf: 'CSRF', ...known }),
      enc: encoding,
      accept,
    })
    .map((s) => {
      const p = { ...s.params };
      if (p._csrf === 'CSRF') p._csrf = csrf[agentName]!;
      return { ...s, params: p, agent: agents[agentName] };
    });
}

describe('Kapija\'s own pages', () => {
  test('the sign-in steps of a live interaction and of unknown ones', () =>
    fuzz(
      fc
        .tuple(fc.constantFrom(...STEPS), fc.constantFrom('live', 'unknown', '..%2f..', '%00'))
        .chain(([step, uid]) =>
          form([`/interaction/${uid === 'live' ? interactionUid : uid}${step}`], 'anonymous', { username: 'ana', password: 'a long passphrase', code: '123456', claims: 'email', remember: 'on', credential: '{}', name: 'key', request: 'a'.repeat(32), response_code: 'b'.repeat(43), reason: 'revoked' }),
        ),
    ));

  test('the wallet\'s request and response endpoints, for unknown requests and a live one', () =>
    fuzz(
      fc
        .tuple(fc.constantFrom('/wallet/request/', '/wallet/response/'), fc.constantFrom('live', 'live', 'a'.repeat(32), 'nope', '..%2f', '%00', 'x'.repeat(300)), fc.nat(), fc.constantFrom('GET', 'POST'), params({ response: 'eyJhbGciOiJFQ0RILUVTIn0..x.y.z', state: 's', vp_token: '{}' }), encoding, accept)
        .map(([prefix, id, n, method, p, enc, acc]) => ({ method, path: `${prefix}${id === 'live' ? walletRequestIds[n % walletRequestIds.length]! : id}`, params: p, enc, accept: acc }) as Shot),
    ));

  test('the account portal, signed in', () =>
    fuzz(form(PORTAL, 'portal', { current_password: 'x', password: 'a new long passphrase', password_confirm: 'a new long passphrase', email: 'a@example.rs', session: 'x', sessions: 'x', client: clientId, credential: 'x', code: '123456', format: 'csv', confirm: 'DELETE' })));

  test('the administration console, signed in as an administrator', () =>
    fuzz(
      form(CONSOLE, 'console', {
        client_id: 'fuzz-svc',
        client_name: 'Fuzz',
        redirect_uris: 'https://rp.example/cb',
        scope: 'openid',
        token_endpoint_auth_method: 'client_secret_basic',
        kapija_min_acr: 'substantial',
        q: 'ana',
        sessions: 'x',
        account: 'x',
        format: 'json',
        action: 'x',
      }),
    ));

  test('registration, e-mail verification, recovery and "this wasn\'t me"', () =>
    fuzz(form(SELF, 'citizen', { username: 'fuzzer', email: 'fuzz@example.rs', given_name: 'Ана', family_name: 'Ф', password: 'a long passphrase', password_confirm: 'a long passphrase', token: 'x', code: '123456', return: 'x', name: 'ana' })));

  test('the admin API with an administrator\'s token: every route, random JSON bodies', () =>
    fuzz(
      fc
        .record({
          method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT'),
          path: fc.constantFrom('/admin/api/clients', `/admin/api/clients/${clientId}`, '/admin/api/clients/nope', '/admin/api/clients/nope/secret', '/admin/api/clients/nope/disable', '/admin/api/citizens', '/admin/api/citizens/nope', '/admin/api/citizens/nope/lock', '/admin/api/citizens/nope/reset-factors', '/admin/api/sessions', '/admin/api/sessions/end', '/admin/api/sessions/nope', '/admin/api/audit', '/admin/api/audit/export', '/admin/api/audit/verify', '/admin/api/me'),
          body: fc.dictionary(fc.constantFrom('client_id', 'redirect_uris', 'scope', 'grant_types', 'token_endpoint_auth_method', 'jwks', 'kapija_min_acr', 'sessions', 'client_name', 'format', 'q'), jsonValue, { maxKeys: 5 }),
          query: params({ q: 'ana', account: 'x', client: clientId, format: 'csv', limit: '10', before: '0' }),
          auth: fc.constantFrom(`Bearer ${adminToken}`, 'Bearer nope', '', `Basic ${adminToken}`),
          raw: fc.boolean(),
        })
        .filter((s) => !(s.path === `/admin/api/clients/${clientId}` && s.method === 'DELETE'))
        .map(
          (s): Shot => ({
            method: s.method,
            path: `${s.path}?${encode(s.query)}`,
            params: s.body as Record<string, string>,
            enc: s.raw ? 'garbage' : 'json',
            accept: 'application/json',
            headers: s.auth ? { authorization: s.auth } : {},
          }),
        ),
    ));
});

describe('identity proofing', () => {
  const check = fc.record(
    {
      level: fc.oneof(fc.constantFrom('low', 'substantial', 'high', 'none'), jsonValue),
      office: fc.oneof(fc.constant('Office'), jsonValue),
      evidence: fc.oneof(fc.record({ document_type: fc.constantFrom('idcard', 'passport', 'x'), issuing_country: fc.constantFrom('RS', 'rs', ''), document_number: fc.string({ maxLength: 50 }), expiry: fc.constantFrom('2030-01-01', '2030-13-40', '') }, { requiredKeys: [] }), jsonValue),
      attributes: fc.oneof(fc.record({ given_name_cyrl: fc.string({ maxLength: 120 }), family_name_cyrl: fc.string(), given_name_latn: fc.string(), family_name_latn: fc.string(), birthdate: fc.constantFrom('1990-01-01', '1999-12-31', 'x'), jmbg: fc.constantFrom('0101990710008', '3112999800126', '0101990710009', '1234567890123', 'x') }, { requiredKeys: [] }), jsonValue),
    },
    { requiredKeys: [] },
  );
  test('the registrar routes of the admin API with a registrar\'s token: every route, random JSON bodies', () =>
    fuzz(
      fc
        .record({
          method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE'),
          path: fc.constantFrom('/admin/api/registrar/accounts', '/admin/api/registrar/activation-codes', `/admin/api/registrar/identities/${citizenAccountId}`, `/admin/api/registrar/identities/${citizenAccountId}/revoke`, '/admin/api/registrar/identities/nope', '/admin/api/identity/registrar-rates'),
          body: fc.record({ account_id: fc.oneof(fc.constant(citizenAccountId), jsonValue), username: fc.oneof(fc.string({ maxLength: 70 }), jsonValue), check, attributes: jsonValue, reason: fc.oneof(fc.string({ maxLength: 250 }), jsonValue) }, { requiredKeys: [] }),
          query: params({ q: 'ana', days: '30' }),
          auth: fc.constantFrom(`Bearer ${registrarToken}`, `Bearer ${adminToken}`, 'Bearer nope', ''),
          raw: fc.boolean(),
        })
        .map(
          (s): Shot => ({
            method: s.method,
            path: `${s.path}?${encode(s.query)}`,
            params: s.body as unknown as Record<string, string>,
            enc: s.raw ? 'garbage' : 'json',
            accept: 'application/json',
            headers: s.auth ? { authorization: s.auth } : {},
          }),
        ),
    ));
});

describe('afterwards', () => {
  test('nothing was logged at error level and no promise was left rejected', () => {
    expect(rejections).toEqual([]);
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);
    // The inputs reached past authentication and CSRF, not only the front door.
    expect((statuses['200'] ?? 0) + (statuses['303'] ?? 0) + (statuses['302'] ?? 0)).toBeGreaterThan(RUNS / 5);
  });
});
