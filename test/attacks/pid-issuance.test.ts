/**
 * Attacks on the PID issuer, with a test wallet from the OWF libraries and hand-made requests:
 * issuance for an unverified or low identity, proofs with the wrong nonce or audience, a reused
 * nonce, an unsupported algorithm, a wrong or missing tx_code and a replayed pre-authorized code,
 * another citizen's credential revoked, a service's token at the credential endpoint, and two
 * instances on one database taking status-list indices at once. On PostgreSQL when reachable.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { ledgerChain } from '../../src/account/ledger.js';
import { KapijaError } from '../../src/errors.js';
import { pgAvailable } from '../support/databases.js';
import { createTestAccount, kapijaForSuite, startKapija, testService } from '../support/kapija.js';
import { hiddenField } from '../support/browserless.js';
import { openPortal, signIn, submitForm, SignInError } from '../support/sign-in.js';
import { newHolderKey, TestWallet } from '../support/wallet/obtain.js';
import { Agent, offerUri, publishedStatus, registerWallet, verifiedCitizen, walletSignIn, WALLET_REDIRECT } from '../support/wallet/fixtures.js';

const server = kapijaForSuite({ store: pgAvailable() ? 'postgres' : 'sqlite' });

/** A wallet holding a desk offer for a fresh citizen, opened and with an access token. */
async function deskWallet(clientId: string, identity: 'high' | 'substantial' = 'high') {
  const citizen = await verifiedCitizen(server.kapija, identity);
  const made = await server.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
  const wallet = new TestWallet(clientId, await newHolderKey());
  await wallet.open(offerUri(made.offer));
  return { citizen, made, wallet };
}

/** A proof made by hand (the library always makes a correct one). */
async function handProof(opts: { nonce: string; aud: string; alg?: 'ES256' | 'ES384'; header?: Record<string, unknown> }) {
  const alg = opts.alg ?? 'ES256';
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return new SignJWT({ nonce: opts.nonce, aud: opts.aud })
    .setIssuedAt()
    .setProtectedHeader({ alg, typ: 'openid4vci-proof+jwt', jwk: await exportJWK(publicKey), ...opts.header })
    .sign(privateKey);
}

const credentialRequest = (proof: string | undefined) => ({ credential_configuration_id: 'eu.europa.ec.eudi.pid.1', ...(proof ? { proofs: { jwt: [proof] } } : {}) });

describe('PID issuer attacks', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = await registerWallet(server.kapija);
  });

  test('an unverified or low identity gets no PID: no desk offer, no offer on the portal, and a low sign-in is refused at the credential endpoint', async () => {
    const { kapija, url } = server;
    for (const identity of ['none', 'low'] as const) {
      const citizen = await verifiedCitizen(kapija, identity);
      await expect(kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null })).rejects.toMatchObject({ code: 'wallet.not_eligible', status: 403 });
      const page = await openPortal(new Agent(), url, citizen, '/account/wallet');
      expect(page.body).toContain('data-ineligible');
      expect(page.body).not.toContain('data-credential-offer');
    }
    // A wallet that requires substantial: the sign-in stops at the identity step.
    const low = await verifiedCitizen(kapija, 'low');
    const wallet = new TestWallet(clientId, await newHolderKey());
    await wallet.open(offerUri({ credential_issuer: url, credential_configuration_ids: ['eu.europa.ec.eudi.pid.1'], grants: { authorization_code: {} } }));
    await expect(wallet.tokenByAuthorizationCode(WALLET_REDIRECT, walletSignIn(new Agent(), low))).rejects.toThrow(SignInError);
    // A wallet registered without a minimum: the citizen signs in at low, the token is issued, the credential is not.
    const lax = await registerWallet(kapija, { minAcr: null });
    const laxWallet = new TestWallet(lax, await newHolderKey());
    await laxWallet.open(offerUri({ credential_issuer: url, credential_configuration_ids: ['eu.europa.ec.eudi.pid.1'], grants: { authorization_code: {} } }));
    const token = await laxWallet.tokenByAuthorizationCode(WALLET_REDIRECT, walletSignIn(new Agent(), low));
    const refused = await laxWallet.rawCredentialRequest(token, credentialRequest(await laxWallet.proof(await laxWallet.nonce())));
    // OpenID4VCI §8.3.1.2: credential_request_denied, with 400.
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('credential_request_denied');
    expect(await kapija.pid.list(low.account.id)).toEqual([]);
  });

  test('proofs: a wrong nonce, a wrong audience, an unsupported algorithm, a key by kid or no proof are refused; a nonce is used once per key', async () => {
    const { url, kapija } = server;
    const { citizen, made, wallet } = await deskWallet(clientId);
    const token = await wallet.tokenByPreAuthorizedCode(made.txCode);
    const nonce = await wallet.nonce();

    const wrongNonce = await wallet.rawCredentialRequest(token, credentialRequest(await wallet.proof(randomBytes(32).toString('base64url'))));
    expect(wrongNonce).toMatchObject({ status: 400, body: { error: 'invalid_nonce' } });
    const wrongAud = await wallet.rawCredentialRequest(token, credentialRequest(await handProof({ nonce, aud: 'https://attacker.example' })));
    expect(wrongAud).toMatchObject({ status: 400, body: { error: 'invalid_proof' } });
    const es384 = await wallet.rawCredentialRequest(token, credentialRequest(await handProof({ nonce, aud: url, alg: 'ES384' })));
    expect(es384).toMatchObject({ status: 400, body: { error: 'invalid_proof' } });
    const byKid = await wallet.rawCredentialRequest(token, credentialRequest(await handProof({ nonce, aud: url, header: { jwk: undefined, kid: 'someone-else' } })));
    expect(byKid).toMatchObject({ status: 400, body: { error: 'invalid_proof' } });
    const attested = await wallet.rawCredentialRequest(token, credentialRequest(await handProof({ nonce, aud: url, header: { key_attestation: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln' } })));
    expect(attested).toMatchObject({ status: 400, body: { error: 'invalid_proof' } });
    const none = await wallet.rawCredentialRequest(token, credentialRequest(undefined));
    expect(none).toMatchObject({ status: 400, body: { error: 'invalid_proof' } });
    expect(await kapija.pid.list(citizen.account.id)).toEqual([]);

    const proof = await wallet.proof(nonce);
    const first = await wallet.rawCredentialRequest(token, credentialRequest(proof));
    expect(first.status).toBe(200);
    // The same proof again, and a fresh proof of the same key on the same nonce: refused.
    expect(await wallet.rawCredentialRequest(token, credentialRequest(proof))).toMatchObject({ status: 400, body: { error: 'invalid_nonce' } });
    expect(await wallet.rawCredentialRequest(token, credentialRequest(await wallet.proof(nonce)))).toMatchObject({ status: 400, body: { error: 'invalid_nonce' } });
    expect(await kapija.pid.list(citizen.account.id)).toHaveLength(1);
  });

  test('tx_code: a wrong one burns the offer, a missing one is refused, a redeemed code cannot be replayed', async () => {
    const { url } = server;
    const burnt = await deskWallet(clientId);
    const wrong = burnt.made.txCode === '000000' ? '111111' : '000000';
    await expect(burnt.wallet.tokenByPreAuthorizedCode(wrong)).rejects.toThrow(/invalid_grant|tx_code/);
    await expect(burnt.wallet.tokenByPreAuthorizedCode(burnt.made.txCode)).rejects.toThrow(/invalid_grant|pre-authorized/);

    const { made, wallet } = await deskWallet(clientId);
    const code = (made.offer.grants['urn:ietf:params:oauth:grant-type:pre-authorized_code'] as { 'pre-authorized_code': string })['pre-authorized_code'];
    const missing = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:pre-authorized_code', 'pre-authorized_code': code, client_id: clientId }),
    });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: string }).error).toBe('invalid_request');
    expect(await wallet.tokenByPreAuthorizedCode(made.txCode)).toEqual(expect.any(String));
    await expect(wallet.tokenByPreAuthorizedCode(made.txCode)).rejects.toThrow(/invalid_grant|pre-authorized/);

    // Another wallet client cannot redeem a code made for this one.
    const other = await registerWallet(server.kapija);
    const stolen = await deskWallet(clientId);
    const thief = new TestWallet(other, await newHolderKey());
    await thief.open(offerUri(stolen.made.offer));
    await expect(thief.tokenByPreAuthorizedCode(stolen.made.txCode)).rejects.toThrow(/invalid_grant|client/);
  });

  test("a citizen revokes their own credential on the portal, not another citizen's", async () => {
    const { kapija, url } = server;
    const victim = await deskWallet(clientId);
    await victim.wallet.credential(await victim.wallet.tokenByPreAuthorizedCode(victim.made.txCode), await victim.wallet.proof(await victim.wallet.nonce()));
    const attacker = await deskWallet(clientId);
    await attacker.wallet.credential(await attacker.wallet.tokenByPreAuthorizedCode(attacker.made.txCode), await attacker.wallet.proof(await attacker.wallet.nonce()));
    const [target] = await kapija.pid.list(victim.citizen.account.id);
    const [own] = await kapija.pid.list(attacker.citizen.account.id);

    const agent = new Agent();
    const page = await openPortal(agent, url, attacker.citizen, '/account/wallet');
    expect(page.body).toContain(`data-revoke="${own!.id}"`);
    expect(page.body).not.toContain(target!.id);
    const csrf = hiddenField(page.body, '_csrf')!;
    const refused = await agent.request(`${url}/account/wallet/revoke`, { form: { _csrf: csrf, credential_id: target!.id } });
    expect(refused.status).toBe(404);
    expect((await kapija.pid.list(victim.citizen.account.id))[0]!.revokedAt).toBeNull();
    const withoutCsrf = await agent.request(`${url}/account/wallet/revoke`, { form: { credential_id: own!.id } });
    expect(withoutCsrf.status).toBe(403);

    const revoked = await submitForm(agent, page, /\/account\/wallet\/revoke$/, { credential_id: own!.id });
    expect(revoked.status).toBe(303);
    const after = await kapija.pid.list(attacker.citizen.account.id);
    expect(after[0]!.revokedAt).not.toBeNull();
    expect(await publishedStatus(url, { idx: after[0]!.listIdx, uri: `${url}/wallet/status/${after[0]!.listId}` })).toBe(1);
    expect(await publishedStatus(url, { idx: target!.listIdx, uri: `${url}/wallet/status/${target!.listId}` })).toBe(0);
  });

  test("a service's access token does not reach the credential endpoint, and a service cannot ask for the issuer's resource", async () => {
    const svc = await testService(server);
    const agent = new Agent();
    const callback = await signIn(agent, svc.authorize(), svc.redirect, svc.citizen);
    const tokens = await svc.token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: svc.redirect });
    expect(tokens.status).toBe(200);
    const res = await fetch(`${server.url}/credential`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.body.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(credentialRequest(undefined)),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_token');
    const asked = await agent.request(svc.authorize({ resource: server.url }));
    const location = new URL(asked.headers.get('location') ?? 'http://x/', server.url);
    expect(location.searchParams.get('error')).toBe('invalid_target');
  });

  test('revoking or correcting the proofing revokes its PIDs, and so does deleting the account; in the ledger', async () => {
    const { kapija, url } = server;
    const a = await deskWallet(clientId);
    await a.wallet.credential(await a.wallet.tokenByPreAuthorizedCode(a.made.txCode), await a.wallet.proof(await a.wallet.nonce()));
    await kapija.identity.revoke(a.citizen.account.id, { actor: 'test-registrar' }, 'document reported stolen');
    const [revoked] = await kapija.pid.list(a.citizen.account.id);
    expect(revoked).toMatchObject({ revokedReason: 'identity_revoked' });
    expect(await publishedStatus(url, { idx: revoked!.listIdx, uri: `${url}/wallet/status/${revoked!.listId}` })).toBe(1);
    const ledger = await kapija.audit.list({ chain: ledgerChain(a.citizen.account.id), action: 'ledger.' });
    expect(ledger.find((e) => e.action === 'ledger.pid_revoked')?.details).toMatchObject({ credential: revoked!.id, reason: 'identity_revoked' });

    // A correction of the verified attributes (a typo at the counter) makes the PID outdated.
    const c = await deskWallet(clientId);
    await c.wallet.credential(await c.wallet.tokenByPreAuthorizedCode(c.made.txCode), await c.wallet.proof(await c.wallet.nonce()));
    await kapija.identity.correct(c.citizen.account.id, { familyNameLatn: 'Jovanovic' }, { actor: 'test-registrar' }, 'typo');
    const [outdated] = await kapija.pid.list(c.citizen.account.id);
    expect(outdated).toMatchObject({ revokedReason: 'identity_changed' });
    expect(await publishedStatus(url, { idx: outdated!.listIdx, uri: `${url}/wallet/status/${outdated!.listId}` })).toBe(1);

    const b = await deskWallet(clientId);
    await b.wallet.credential(await b.wallet.tokenByPreAuthorizedCode(b.made.txCode), await b.wallet.proof(await b.wallet.nonce()));
    const agent = new Agent();
    const data = await openPortal(agent, url, b.citizen, '/account/data');
    expect((await submitForm(agent, data, /\/account\/delete$/, { confirm: b.citizen.username })).status).toBe(303);
    const [gone] = await kapija.pid.list(b.citizen.account.id);
    expect(gone).toMatchObject({ revokedReason: 'account_deleted' });
    expect(await publishedStatus(url, { idx: gone!.listIdx, uri: `${url}/wallet/status/${gone!.listId}` })).toBe(1);
  });

  test('two instances on one database issuing at once never share a status-list index', async () => {
    const second = await startKapija({ testDb: server.testDb });
    try {
      const citizens = await Promise.all(Array.from({ length: 6 }, () => verifiedCitizen(server.kapija)));
      const holder = (await newHolderKey()).publicJwk;
      const issued = await Promise.all(
        citizens.flatMap((c) => [server.kapija, second.kapija].map((k) => k.pid.issue({ accountId: c.account.id, clientId, channel: 'desk', signIn: 'high', holderJwk: holder }))),
      );
      const slots = issued.map((i) => `${i.record.listId}#${i.record.listIdx}`);
      expect(new Set(slots).size).toBe(issued.length);
    } finally {
      await second.stop();
    }
  });

  test('an unknown status list is 404, and a malformed list id never reaches the database', async () => {
    for (const id of ['00000000-0000-0000-0000-000000000000', '..%2f..%2fetc', "1' or '1'='1"]) {
      const res = await fetch(`${server.url}/wallet/status/${id}`);
      expect(res.status).toBe(404);
    }
    await expect(server.kapija.pid.revokeOwn(createTestAccount.name, 'nope')).rejects.toBeInstanceOf(KapijaError);
  });
});
