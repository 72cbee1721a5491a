/**
 * Token grants are atomic: when the tokens cannot be saved (a database failure between the writes),
 * the presented refresh token or authorization code is not consumed either, so the service's retry
 * succeeds instead of looking like reuse and revoking the grant. A real reuse still revokes it, also
 * when two redemptions of one code race.
 */
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { kapijaForSuite, testService } from '../../support/kapija.js';
import { stores } from '../../support/databases.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
describe.each(stores())('on %s', (store) => {
  const server = kapijaForSuite({ store });

  const service = () => testService(server);

  const failing = () => Promise.reject(Object.assign(new Error('connection terminated unexpectedly'), { code: 'ECONNRESET' }));

  test('a failed save of the successor leaves the presented refresh token usable; reuse still revokes', async () => {
    const { kapija, citizen, token, authorize } = await service();
    const cb = await signIn(new Agent(), authorize({ prompt: 'consent' }), REDIRECT, citizen);
    const first = await token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT });
    expect(first.status).toBe(200);
    const rt = first.body.refresh_token!;

    const rotate = kapija.payloads.consumeAndSave;
    kapija.payloads.consumeAndSave = failing;
    let failed;
    try {
      failed = await token({ grant_type: 'refresh_token', refresh_token: rt });
    } finally {
      kapija.payloads.consumeAndSave = rotate;
    }
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(failed.body.refresh_token).toBeUndefined();

    const retried = await token({ grant_type: 'refresh_token', refresh_token: rt });
    expect(retried.status).toBe(200);
    expect(retried.body.refresh_token).toBeDefined();

    // The rotated-away token presented again is reuse: the grant and its newest token are revoked.
    const reuse = await token({ grant_type: 'refresh_token', refresh_token: rt });
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    expect((await token({ grant_type: 'refresh_token', refresh_token: retried.body.refresh_token! })).status).toBe(400);
  });

  test('a failed save of the tokens leaves the authorization code redeemable; a racing second redemption revokes', async () => {
    const { kapija, citizen, token, authorize } = await service();
    const agent = new Agent();
    const code = (await signIn(agent, authorize({ prompt: 'consent' }), REDIRECT, citizen)).searchParams.get('code')!;
    // Single sign-on: the code of the next authorization is saved with the session, in one statement.
    const next = await agent.follow(await agent.request(authorize()), (u) => u.href.startsWith(REDIRECT));
    if (!(next instanceof URL)) throw new Error('no callback');
    const again = next.searchParams.get('code')!;

    const redeem = kapija.payloads.consumeAndSave;
    kapija.payloads.consumeAndSave = failing;
    let failed;
    try {
      failed = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    } finally {
      kapija.payloads.consumeAndSave = redeem;
    }
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(failed.body.access_token).toBeUndefined();
    const retried = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(retried.status).toBe(200);

    // The second code redeemed twice at once: one exchange lands, the other is reuse.
    const both = await Promise.all([1, 2].map(() => token({ grant_type: 'authorization_code', code: again, redirect_uri: REDIRECT })));
    const statuses = both.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 400]);
    expect(both.find((r) => r.status === 400)!.body.error).toBe('invalid_grant');
    // The grant is revoked: the winner's refresh token no longer works.
    const winner = both.find((r) => r.status === 200)!.body;
    expect((await token({ grant_type: 'refresh_token', refresh_token: winner.refresh_token! })).status).toBe(400);
    expect((await token({ grant_type: 'refresh_token', refresh_token: retried.body.refresh_token! })).status).toBe(400);
    expect((await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT })).body.error).toBe('invalid_grant');
  });
});
