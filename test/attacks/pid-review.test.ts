/**
 * A review of the PID issuer as an attacker: routes out of order, with the wrong step's token,
 * twice, and across two Kapija instances on one PostgreSQL database (the second with the first's
 * ISSUER, as behind a load balancer). Every test here asserts something that failed, or could
 * fail, had the issuer a hole there.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { getListFromStatusListJWT } from '@sd-jwt/jwt-status-list';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey as JoseKey } from 'jose';
import { createLogger } from '../../src/security/redact.js';
import { ledgerChain } from '../../src/store/audit.js';
import { createPgDatabase, pgAvailable, type TestDatabase } from '../support/databases.js';
import { createSecretBox } from '../../src/security/crypto.js';
import { createCredentialKeys } from '../../src/wallet/issuer/keys.js';
import { createPidIssuer } from '../../src/wallet/issuer/service.js';
import { createTestClient, startKapija, type RunningKapija } from '../support/kapija.js';
import { startSmtp, type TestSmtp } from '../support/smtp.js';
import { newHolderKey, TestWallet } from '../support/wallet/obtain.js';
import { offerUri, registerWallet, verifiedCitizen } from '../support/wallet/fixtures.js';

const PRE_AUTHORIZED = 'urn:ietf:params:oauth:grant-type:pre-authorized_code';

/** A token request with a pre-authorized code, as a wallet sends it, at one instance. */
async function redeem(base: string, input: { clientId: string; code: string; txCode: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: PRE_AUTHORIZED, 'pre-authorized_code': input.code, tx_code: input.txCode, client_id: input.clientId }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Both instances log here, at debug. */
let logged = '';
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    logged += chunk.toString('utf8');
    done();
  },
});

const credentialRequest = (proof: string) => ({ credential_configuration_id: 'eu.europa.ec.eudi.pid.1', proofs: { jwt: [proof] } });

const codeOf = (offer: { grants: Record<string, Record<string, unknown>> }) => String(offer.grants[PRE_AUTHORIZED]!['pre-authorized_code']);

if (!pgAvailable()) {
  process.stdout.write('[skip] pid-review: PostgreSQL not reachable\n');
  test.skip('PID issuer review across two instances (PostgreSQL not reachable)', () => undefined);
} else {
  describe('PID issuer review: two instances on one PostgreSQL', () => {
    let testDb: TestDatabase;
    let a: RunningKapija;
    let b: RunningKapija;
    let clientId: string;
    let smtp: TestSmtp;
    const masterKey = randomBytes(32);

    beforeAll(async () => {
      testDb = await createPgDatabase();
      smtp = await startSmtp();
      const env = { MASTER_KEY: masterKey.toString('base64'), SMTP_URL: smtp.url };
      a = await startKapija({ testDb, env: { ...env, LOG_LEVEL: 'debug' }, options: { logger: createLogger('debug', sink) } });
      b = await startKapija({ testDb, env: { ...env, ISSUER: a.url, LOG_LEVEL: 'debug' }, options: { logger: createLogger('debug', sink) } });
      clientId = await registerWallet(a.kapija);
    }, 60_000);
    afterAll(async () => {
      await b?.stop();
      await a?.stop();
      await testDb?.drop();
      await smtp?.close();
    });

    /** The wallet reaches B for everything published under the issuer (A's address). */
    const viaB: typeof fetch = (input, init) => fetch(String(input instanceof Request ? input.url : input).replace(a.url, b.url), init);

    /** A fresh citizen's desk offer opened by a wallet that talks to B, and its access token (from A). */
    async function deskToken() {
      const citizen = await verifiedCitizen(a.kapija);
      const made = await a.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
      const wallet = new TestWallet(clientId, await newHolderKey());
      await wallet.open(offerUri(made.offer));
      const token = await wallet.tokenByPreAuthorizedCode(made.txCode);
      /** The credential request at B (the wallet's library posts to A's address). */
      const atB = async (proof: string) => {
        const res = await viaB(wallet.metadata.credentialIssuer.credential_endpoint, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(credentialRequest(proof)),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      return { citizen, made, wallet, token, atB };
    }

    test('one pre-authorized code redeemed at two instances at once gives one access token, not one each', async () => {
      for (let round = 0; round < 3; round += 1) {
        const citizen = await verifiedCitizen(a.kapija);
        const made = await a.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
        const input = { clientId, code: codeOf(made.offer), txCode: made.txCode };
        const answers = await Promise.all([a.url, b.url, a.url, b.url].map((base) => redeem(base, input)));
        const granted = answers.filter((r) => r.status === 200);
        expect(granted).toHaveLength(1);
        for (const r of answers.filter((x) => x.status !== 200)) expect(r).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
        // The code is spent: a later try at either instance is refused.
        expect(await redeem(b.url, input)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      }
    });

    test('tx_code guessed in parallel at both instances: every wrong guess burns the code, the right one then fails', async () => {
      const citizen = await verifiedCitizen(a.kapija);
      const made = await a.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
      const code = codeOf(made.offer);
      const wrong = Array.from({ length: 6 }, (_, i) => String((Number(made.txCode) + 1 + i) % 1_000_000).padStart(6, '0'));
      const guesses = await Promise.all(wrong.map((txCode, i) => redeem(i % 2 ? b.url : a.url, { clientId, code, txCode })));
      for (const g of guesses) expect(g).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      expect(await redeem(a.url, { clientId, code, txCode: made.txCode })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      expect(await a.kapija.pid.list(citizen.account.id)).toEqual([]);
    });

    test('a DPoP-bound wallet token is refused at the credential endpoint without its proof, as a Bearer token or with another key', async () => {
      const citizen = await verifiedCitizen(a.kapija);
      const made = await a.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
      const dpopKey = await generateKeyPair('ES256');
      const dpop = async (key: { privateKey: JoseKey; publicKey: JoseKey }, htm: string, htu: string, ath?: string) =>
        new SignJWT({ htm, htu, jti: randomBytes(16).toString('base64url'), ...(ath ? { ath } : {}) })
          .setIssuedAt()
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
          .sign(key.privateKey);
      const res = await fetch(`${b.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', dpop: await dpop(dpopKey, 'POST', `${a.url}/token`) },
        body: new URLSearchParams({ grant_type: PRE_AUTHORIZED, 'pre-authorized_code': codeOf(made.offer), tx_code: made.txCode, client_id: clientId }).toString(),
      });
      const tokens = (await res.json()) as { access_token: string; token_type: string };
      expect(res.status).toBe(200);
      expect(tokens.token_type).toBe('DPoP');
      const wallet = new TestWallet(clientId, await newHolderKey());
      await wallet.open(offerUri(made.offer));
      const proof = await wallet.proof(await wallet.nonce());
      const endpoint = `${a.url}/credential`;
      const ath = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(tokens.access_token))).toString('base64url');
      const attempts: Record<string, string>[] = [
        { authorization: `Bearer ${tokens.access_token}` },
        { authorization: `DPoP ${tokens.access_token}` },
        { authorization: `DPoP ${tokens.access_token}`, dpop: await dpop(await generateKeyPair('ES256'), 'POST', endpoint, ath) },
      ];
      for (const headers of attempts) {
        const refused = await fetch(endpoint, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(credentialRequest(proof)) });
        expect([400, 401]).toContain(refused.status);
        expect(['invalid_token', 'invalid_dpop_proof', 'invalid_request']).toContain(((await refused.json()) as { error: string }).error);
      }
      expect(await a.kapija.pid.list(citizen.account.id)).toEqual([]);
      // With its proof, the same token and wallet proof get the PID: the refusals above were the binding's.
      const good = await fetch(endpoint, { method: 'POST', headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await dpop(dpopKey, 'POST', endpoint, ath), 'content-type': 'application/json' }, body: JSON.stringify(credentialRequest(proof)) });
      expect(good.status).toBe(200);
      expect(await a.kapija.pid.list(citizen.account.id)).toHaveLength(1);
    });

    test("a wallet's access token lives the documented five minutes, not a service token's lifetime", async () => {
      const citizen = await verifiedCitizen(a.kapija);
      const made = await a.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
      const granted = await redeem(b.url, { clientId, code: codeOf(made.offer), txCode: made.txCode });
      expect(granted.status).toBe(200);
      expect(granted.body.expires_in).toBeLessThanOrEqual(300);
      expect(granted.body.expires_in).toBeGreaterThan(240);
    });

    test('one proof sent to both instances at once gives one credential; a nonce from B is good at A', async () => {
      const { citizen, wallet, token, atB } = await deskToken();
      const nonceAtB = String(((await (await viaB(`${a.url}/challenge`, { method: 'POST' })).json()) as { c_nonce: string }).c_nonce);
      const proof = await wallet.proof(nonceAtB);
      const [atA, atBAnswer] = await Promise.all([wallet.rawCredentialRequest(token, credentialRequest(proof)), atB(proof)]);
      expect([atA.status, atBAnswer.status].sort()).toEqual([200, 400]);
      expect([atA, atBAnswer].find((r) => r.status === 400)!.body.error).toBe('invalid_nonce');
      expect(await a.kapija.pid.list(citizen.account.id)).toHaveLength(1);
    });

    test('an identity revoked at B between the token and the credential request: no PID from A', async () => {
      const { citizen, wallet, token } = await deskToken();
      await b.kapija.identity.revoke(citizen.account.id, { actor: 'test-registrar' }, 'document reported stolen');
      const refused = await wallet.rawCredentialRequest(token, credentialRequest(await wallet.proof(await wallet.nonce())));
      expect(refused).toMatchObject({ status: 400, body: { error: 'credential_request_denied' } });
      expect(await a.kapija.pid.list(citizen.account.id)).toEqual([]);
    });

    test('an identity revoked at B while A is issuing (after its eligibility check): the PID is not left valid', async () => {
      const citizen = await verifiedCitizen(a.kapija);
      const holderJwk = (await newHolderKey()).publicJwk;
      // A's issuer, whose read of the identity is overtaken by B's revocation (and B's revocation of its PIDs, none yet).
      const racing = createPidIssuer({
        issuer: a.url,
        issuingAuthority: 'Test',
        validitySeconds: 3600,
        repos: a.kapija.repos,
        identity: {
          find: async (accountId: string) => {
            const before = await a.kapija.repos.identities.find(accountId);
            await b.kapija.identity.revoke(accountId, { actor: 'test-registrar' }, 'document reported stolen');
            return before;
          },
        },
        keys: createCredentialKeys({ keys: a.kapija.repos.keys, box: createSecretBox(masterKey), retentionSeconds: 7200 }),
        box: createSecretBox(masterKey),
      });
      await expect(racing.issue({ accountId: citizen.account.id, clientId, channel: 'desk', signIn: 'high', holderJwk })).rejects.toMatchObject({ code: 'wallet.not_eligible' });
      const live = (await a.kapija.pid.list(citizen.account.id)).filter((c) => c.revokedAt === null);
      expect(live).toEqual([]);
    });

    test('an identity revoked while revoking its PIDs fails (a database blip, a crash): the PID still shows revoked in the status list', async () => {
      const { citizen, wallet, token } = await deskToken();
      await wallet.credential(token, await wallet.proof(await wallet.nonce()));
      const [issued] = await a.kapija.pid.list(citizen.account.id);
      const revokeAll = a.kapija.pid.revokeAll;
      a.kapija.pid.revokeAll = () => Promise.reject(new Error('connection terminated'));
      try {
        await a.kapija.identity.revoke(citizen.account.id, { actor: 'test-registrar' }, 'document reported stolen').catch(() => undefined);
      } finally {
        a.kapija.pid.revokeAll = revokeAll;
      }
      // The identity is revoked; a retry has nothing left to revoke, so nothing revokes the PID again.
      expect(await a.kapija.identity.revoke(citizen.account.id, { actor: 'test-registrar' }, 'again')).toBe(false);
      for (const k of [a.kapija, b.kapija]) {
        const list = await k.pid.statusList(issued!.listId, { fresh: true });
        expect(getListFromStatusListJWT(list!).getStatus(issued!.listIdx)).toBe(1);
        // Kapija's own wallet sign-in reads the one entry by the same rule.
        expect(await k.pid.statusOf(issued!.listId, issued!.listIdx)).toBe(1);
      }
    });

    test('a PID issued at the desk is told to the citizen by mail (the wallet, the portal page to revoke it), so one redeemed by someone else does not go unseen', async () => {
      const { citizen, wallet, atB } = await deskToken();
      await atB(await wallet.proof(await wallet.nonce()));
      expect(await a.kapija.pid.list(citizen.account.id)).toHaveLength(1);
      const notice = await smtp.waitFor(citizen.account.email!, (m) => m.text.includes('/account/wallet'));
      expect(notice.text).toContain('Test wallet');
      for (const secret of [citizen.jmbg, 'Jovanović']) expect(notice.raw).not.toContain(secret);
    });

    test('an account locked between the token and the credential request: the token no longer works', async () => {
      const { citizen, wallet, atB } = await deskToken();
      await a.kapija.accounts.setStatus(citizen.account.id, 'locked');
      const refused = await atB(await wallet.proof(await wallet.nonce()));
      expect(refused).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
      expect(await a.kapija.pid.list(citizen.account.id)).toEqual([]);
    });

    test("a desk offer only for a registered wallet that may redeem it; a service's client id is refused", async () => {
      const citizen = await verifiedCitizen(a.kapija);
      const { clientId: service } = await createTestClient(a.kapija, { redirect_uris: ['http://127.0.0.1:9/cb'] });
      for (const other of [service, 'no-such-client', '']) {
        await expect(b.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId: other, registrar: 'test-registrar', ip: null })).rejects.toMatchObject({ code: 'wallet.offer_invalid', status: 400 });
      }
    });

    test('status list routes: unknown, huge, unicode and odd ids are 404 at either instance, odd methods never 200, HEAD has no body', async () => {
      const { wallet, token } = await deskToken();
      const pid = await wallet.credential(token, await wallet.proof(await wallet.nonce()));
      const uri = String((JSON.parse(Buffer.from(pid.split('~')[0]!.split('.')[1]!, 'base64url').toString()) as { status: { status_list: { uri: string } } }).status.status_list.uri);
      const ids = ['00000000-0000-0000-0000-000000000000', '-'.repeat(36), 'a'.repeat(5000), encodeURIComponent('ђурђевдан-ЈМБГ-0000000000000000000000'), '%00', '..%2f..%2fkeys'];
      for (const base of [a.url, b.url]) {
        for (const id of ids) {
          const res = await fetch(`${base}/wallet/status/${id}`);
          expect([404, 414]).toContain(res.status);
        }
        const head = await fetch(uri.replace(a.url, base), { method: 'HEAD' });
        expect(head.status).toBe(200);
        expect(await head.text()).toBe('');
        for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
          const res = await fetch(uri.replace(a.url, base), { method });
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
        }
      }
    });

    test('privacy: the desk offer, the admin trail, the ledger and both instances\' logs carry neither the JMBG nor the names', async () => {
      logged = '';
      const { citizen, made, wallet, token } = await deskToken();
      await wallet.credential(token, await wallet.proof(await wallet.nonce()));
      // A refused request too: its error says nothing of the citizen.
      const refused = await wallet.rawCredentialRequest(token, credentialRequest(await wallet.proof(randomBytes(16).toString('base64url'))));
      expect(refused.status).toBe(400);
      const offer = JSON.stringify(made.offer) + offerUri(made.offer);
      const trail = JSON.stringify([
        ...(await a.kapija.audit.list({ chain: 'admin', action: 'wallet.' })),
        ...(await a.kapija.audit.list({ chain: ledgerChain(citizen.account.id), action: 'ledger.' })),
      ]);
      expect(trail).toContain('ledger.pid_issued');
      // One issuance, one entry (the held token writes add none of their own).
      expect((await a.kapija.audit.list({ chain: ledgerChain(citizen.account.id), action: 'ledger.' })).filter((e) => e.action === 'ledger.pid_issued')).toHaveLength(1);
      for (const secret of [citizen.jmbg, 'Jovanović', 'Jelena', made.txCode]) {
        expect(offer).not.toContain(secret);
        expect(logged).not.toContain(secret);
        expect(JSON.stringify(refused.body)).not.toContain(secret);
        if (secret !== made.txCode) expect(trail).not.toContain(secret);
      }
      expect(logged).not.toContain(codeOf(made.offer));
      expect(logged).not.toContain(token);
    });
  });
}
