/**
 * Claim-level consent: the page names each piece of data and why the service asks for it; the
 * citizen may refuse optional claims (never released, not asked again); the national identifier is
 * released only when ticked explicitly and only to services allowed its scope.
 */
import * as oidc from 'openid-client';
import { Agent, checkedValues, type Page } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { createTestAccount, createTestClient, kapijaForSuite, uniqueJmbg } from '../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const server = kapijaForSuite();

async function flow(citizen: Awaited<ReturnType<typeof createTestAccount>>, rp: { clientId: string; clientSecret?: string | undefined }, scope: string, claims?: string[]) {
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const agent = new Agent('en');
  const cb = await signIn(agent, url, REDIRECT, { ...citizen, ...(claims ? { claims } : {}) });
  const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier });
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
  return { info, agent, config, url };
}

test('the consent page explains each claim and why; the JMBG box starts unticked', async () => {
  const citizen = await createTestAccount(server.kapija, { jmbg: uniqueJmbg() });
  const rp = await createTestClient(server.kapija, {
    redirect_uris: [REDIRECT],
    scope: 'openid profile email jmbg',
    kapija_claim_purposes: { email: { en: 'To send you the building permit' } },
    'client_name#en': 'Building permits',
  });
  const config = await oidc.discovery(new URL(server.url), rp.clientId, rp.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email jmbg',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const agent = new Agent('en');
  const page = await (async () => {
    let p = await agent.request(url);
    p = (await agent.follow(p, () => false)) as Page;
    const { submitForm } = await import('../support/sign-in.js');
    const { nextTotpCode } = await import('../support/totp.js');
    p = (await agent.follow(await submitForm(agent, p, /\/login$/, { username: citizen.username, password: citizen.password }), () => false)) as Page;
    return (await agent.follow(await submitForm(agent, p, /\/totp$/, { code: await nextTotpCode(citizen.totpSecret!) }), () => false)) as Page;
  })();
  expect(page.body).toContain('/confirm"');
  expect(page.body).toContain('To send you the building permit');
  // the service's name in the citizen's language
  expect(page.body).toContain('Building permits asks for your data');
  expect(page.body).toContain('Your unique master citizen number (JMBG)');
  expect(checkedValues(page.body, 'claims').sort()).toEqual(['email', 'email_verified']);
  expect(page.body).toMatch(/<input type="checkbox"[^>]*value="jmbg"(?![^>]*checked)/);
  expect(page.body).toContain('<fieldset');
});

test('an unticked claim is not released; a ticked JMBG is', async () => {
  const citizen = await createTestAccount(server.kapija, { jmbg: '1705990712341' });
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile email jmbg' });
  const refusedEmail = await flow(citizen, rp, 'openid profile email jmbg', ['given_name', 'family_name', 'preferred_username']);
  expect(refusedEmail.info.given_name).toBe('Petar');
  expect(refusedEmail.info.email).toBeUndefined();
  expect(refusedEmail.info.jmbg).toBeUndefined();
  expect(refusedEmail.info.birthdate).toBeUndefined();

  const other = await createTestAccount(server.kapija, { jmbg: '3112999800126' });
  const withJmbg = await flow(other, rp, 'openid jmbg', ['jmbg']);
  expect(withJmbg.info.jmbg).toBe('3112999800126');
});

test('a service not allowed the jmbg scope never receives it', async () => {
  const citizen = await createTestAccount(server.kapija, { jmbg: uniqueJmbg() });
  const rp = await createTestClient(server.kapija, { redirect_uris: [REDIRECT], scope: 'openid profile' });
  // asking for a scope the service is not registered for is refused outright
  await expect(flow(citizen, rp, 'openid profile jmbg', ['jmbg', 'given_name'])).rejects.toMatchObject({ error: 'invalid_scope' });
  const { info } = await flow(citizen, rp, 'openid profile', ['given_name']);
  expect(info.jmbg).toBeUndefined();
  expect(info.given_name).toBe('Petar');
});

