/**
 * The copyable example relying party (examples/relying-party) signs a citizen in through a real
 * Kapija: login redirect, callback, claims and userinfo on its page, refresh, back-channel logout
 * and RP-initiated logout.
 */
import { Agent, formAction, hiddenField } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { createRelyingParty, type RelyingParty } from '../../examples/relying-party/server.js';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { freePort } from '../support/spawn-kapija.js';

let kapija: RunningKapija;
let rp: RelyingParty;
let client: { clientId: string; clientSecret?: string | undefined };
let rpUrl: string;
let rpServer: http.Server;
const rpLog: string[] = [];

beforeAll(async () => {
  kapija = await startKapija();
  // The RP's address must be known to register its redirect URI, and the registration gives the secret
  // the RP needs: reserve the port first, then attach the RP's handler.
  rpServer = http.createServer();
  await new Promise<void>((resolve) => rpServer.listen(0, '127.0.0.1', resolve));
  rpUrl = `http://127.0.0.1:${(rpServer.address() as AddressInfo).port}`;
  client = await createTestClient(kapija.kapija, {
    client_name: 'Example service',
    redirect_uris: [`${rpUrl}/callback`],
    post_logout_redirect_uris: [`${rpUrl}/`],
    backchannel_logout_uri: `${rpUrl}/backchannel-logout`,
    backchannel_logout_session_required: true,
  });
  rp = await createRelyingParty({
    issuer: kapija.url,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    redirectUri: `${rpUrl}/callback`,
    log: (line) => rpLog.push(line),
  });
  rpServer.on('request', rp.app.callback());
});

afterAll(async () => {
  rpServer?.closeAllConnections();
  await new Promise<void>((resolve) => (rpServer ? rpServer.close(() => resolve()) : resolve()));
  await kapija?.stop();
});

/** Signs a new citizen in through the example: RP /login → Kapija → RP /callback → RP home page. */
async function signInThroughRp() {
  const citizen = await createTestAccount(kapija.kapija, { givenName: 'Милица', familyName: 'Марковић' });
  const agent = new Agent();
  const login = await agent.request(`${rpUrl}/login`);
  expect(login.status).toBe(302);
  const authorize = new URL(login.headers.get('location')!);
  expect(authorize.origin).toBe(kapija.url);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('state')).toBeTruthy();
  expect(authorize.searchParams.get('nonce')).toBeTruthy();

  const callback = await signIn(agent, authorize, `${rpUrl}/callback`, citizen);
  expect(callback.searchParams.get('code')).toBeTruthy();
  const afterCallback = await agent.request(callback);
  expect(afterCallback.status).toBe(302);
  expect(afterCallback.headers.get('location')).toBe('/');
  const home = await agent.request(`${rpUrl}/`);
  return { citizen, agent, home };
}

const preText = (html: string, id: string) => {
  const m = new RegExp(`<pre id="${id}">([\\s\\S]*?)</pre>`).exec(html);
  if (!m) throw new Error(`no #${id} on the page`);
  return JSON.parse(m[1]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))) as Record<string, unknown>;
};

test('signs a citizen in and shows the verified ID token claims and userinfo', async () => {
  const { citizen, home } = await signInThroughRp();
  expect(home.status).toBe(200);
  expect(home.body).toContain('Милица Марковић');
  const claims = preText(home.body, 'claims');
  const sub = await kapija.kapija.subjectFor(citizen.account.id, client.clientId);
  expect(claims).toMatchObject({ iss: kapija.url, sub, aud: expect.any(String) });
  expect(typeof claims.sid).toBe('string');
  const userinfo = preText(home.body, 'userinfo');
  expect(userinfo).toMatchObject({
    sub,
    given_name: 'Милица',
    family_name: 'Марковић',
    email: citizen.account.email,
  });
});

test('refreshes tokens with the rotated refresh token', async () => {
  const { agent } = await signInThroughRp();
  for (let i = 0; i < 2; i += 1) {
    // twice: the second refresh only works if the RP kept the rotated token
    const refreshed = await agent.request(`${rpUrl}/refresh`, { method: 'POST' });
    expect(refreshed.status).toBe(302);
    const home = await agent.request(`${rpUrl}/`);
    expect(home.body).toMatch(/id="refreshed"/);
  }
});

test('a callback without a pending login is refused', async () => {
  const res = await new Agent().request(`${rpUrl}/callback?code=x&state=y`);
  expect(res.status).toBe(400);
  expect(res.body).toContain('expired');
});

test('back-channel logout from Kapija ends the RP session; forged logout tokens are refused', async () => {
  const { agent } = await signInThroughRp();
  const before = rp.sessionCount();

  const forged = await fetch(`${rpUrl}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' }),
  });
  expect(forged.status).toBe(400);
  expect(rp.sessionCount()).toBe(before);
  expect(rp.backchannelLogoutCount()).toBe(0);

  // The citizen signs out at Kapija itself (e.g. from another service): Kapija notifies this RP.
  const logoutPage = await agent.request(`${kapija.url}/session/end`);
  expect(logoutPage.status).toBe(200);
  const action = formAction(logoutPage.body, /\/session\/end\/confirm$/);
  const xsrf = hiddenField(logoutPage.body, 'xsrf');
  expect(action && xsrf).toBeTruthy();
  const confirmed = await agent.request(new URL(action!, kapija.url), { form: { xsrf: xsrf!, logout: 'yes' } });
  expect([200, 302, 303]).toContain(confirmed.status);

  expect(rp.sessionCount()).toBe(before - 1);
  expect(rp.backchannelLogoutCount()).toBe(1);
  expect(rpLog).toEqual([expect.stringMatching(/^back-channel logout received for sid \S+: token verified, 1 session\(s\) ended$/)]);
  const home = await agent.request(`${rpUrl}/`);
  expect(home.body).toContain('not signed in');
});

test('RP-initiated logout sends the citizen to Kapija with the ID token hint and back to the service', async () => {
  const { agent } = await signInThroughRp();
  const out = await agent.request(`${rpUrl}/logout`, { method: 'POST' });
  expect(out.status).toBe(302);
  const endSession = new URL(out.headers.get('location')!);
  expect(endSession.href.startsWith(`${kapija.url}/session/end`)).toBe(true);
  expect(endSession.searchParams.get('id_token_hint')).toBeTruthy();
  expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${rpUrl}/`);
  expect((await agent.request(`${rpUrl}/`)).body).toContain('not signed in');

  const logoutPage = await agent.request(endSession);
  expect(logoutPage.status).toBe(200);
  const action = formAction(logoutPage.body, /\/session\/end\/confirm$/)!;
  const confirmed = await agent.request(new URL(action, kapija.url), {
    form: { xsrf: hiddenField(logoutPage.body, 'xsrf')!, logout: 'yes' },
  });
  const back = await agent.follow(confirmed, (u) => u.href.startsWith(rpUrl));
  expect(back).toBeInstanceOf(URL);
  expect((back as URL).href).toBe(`${rpUrl}/`);
});

describe('run from the command line', () => {
  const run = (env: Record<string, string>) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/relying-party/server.ts'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { PATH: process.env.PATH ?? '', ISSUER: kapija.url, CLIENT_ID: client.clientId, CLIENT_SECRET: client.clientSecret ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, output: () => out, exited };
  };

  test('prints the address of its redirect URI (localhost), the one whose cookie the callback reads', async () => {
    const port = await freePort();
    const rpProcess = run({ PORT: String(port) });
    try {
      const deadline = Date.now() + 20_000;
      while (!/relying party on/.test(rpProcess.output()) && rpProcess.child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(rpProcess.output()).toContain(`relying party on http://localhost:${port}/ `);
      expect(rpProcess.output()).not.toMatch(/relying party on http:\/\/127\.0\.0\.1/);
    } finally {
      rpProcess.child.kill('SIGTERM');
      await rpProcess.exited;
    }
  });

  test('refuses to start when REDIRECT_URI names another port than PORT', async () => {
    const port = await freePort();
    const rpProcess = run({ PORT: String(port), REDIRECT_URI: `http://localhost:${port + 1}/callback` });
    const guard = setTimeout(() => rpProcess.child.kill('SIGKILL'), 15_000);
    expect(await rpProcess.exited).toBe(1);
    clearTimeout(guard);
    expect(rpProcess.output()).toMatch(/REDIRECT_URI .* names port \d+, but this service listens on \d+/);
  });
});
