/**
 * Userinfo and introspection releases are written to the citizens' ledgers in groups (PostgreSQL):
 * many chains' entries in one statement, each request answered only after its group committed.
 * Every release keeps its entry, the chains verify, and a group that fails withholds every response
 * in it.
 */
import { jest } from '@jest/globals';
import pg from 'pg';
import { Agent } from '../../support/browserless.js';
import { signIn } from '../../support/sign-in.js';
import { kapijaForSuite, testService } from '../../support/kapija.js';
import { pgAvailable } from '../../support/databases.js';
import { ledgerChain } from '../../../src/account/ledger.js';
import { createGroupedAppend, type AuditEntryInput } from '../../../src/store/audit.js';

const onPostgres = pgAvailable() ? describe : describe.skip;

onPostgres('grouped ledger appends on PostgreSQL', () => {
  const server = kapijaForSuite({ store: 'postgres' });

  /** The statements sent to PostgreSQL while `work` runs, by prepared name. */
  async function statementsDuring<T>(work: () => Promise<T>): Promise<{ result: T; names: string[] }> {
    const spy = jest.spyOn(pg.Client.prototype, 'query');
    try {
      const result = await work();
      const names = spy.mock.calls.map(([c]) => (c && typeof c === 'object' && 'name' in c ? String((c as { name?: string }).name) : 'unnamed'));
      return { result, names };
    } finally {
      spy.mockRestore();
    }
  }

  const entry = (chain: string, n: number): AuditEntryInput => ({ chain, actor: 'system', action: 'test.grouped', details: { n } });

  test('entries of many chains queued together are one statement, each after its own chain’s head', async () => {
    const { audit, db } = server.kapija;
    const append = createGroupedAppend(db);
    const chains = Array.from({ length: 5 }, (_, i) => `test:grouped:${i}:${Date.now()}`);
    // Two chains already have entries, written one by one.
    await audit.append(entry(chains[0]!, 0));
    await audit.append(entry(chains[1]!, 0));
    await audit.append(entry(chains[1]!, 0));

    const { result, names } = await statementsDuring(() => Promise.all(chains.flatMap((c) => [append(entry(c, 1)), append(entry(c, 2))])));
    // Two entries per chain: the second of each waits for the next group (its hash covers the first).
    expect(names.filter((n) => n === 'kapija_audit_append_group')).toHaveLength(2);
    const seqs = (c: string) => result.filter((e) => e.chain === c).map((e) => e.seq);
    expect(seqs(chains[0]!)).toEqual([2, 3]);
    expect(seqs(chains[1]!)).toEqual([3, 4]);
    expect(seqs(chains[4]!)).toEqual([1, 2]);
    for (const c of chains) {
      const stored = await audit.list({ chain: c });
      expect(stored.map((e) => e.id).sort()).toEqual([...result.filter((e) => e.chain === c).map((e) => e.id), ...stored.filter((e) => e.details.n === 0).map((e) => e.id)].sort());
      expect(await audit.verify(c)).toMatchObject({ ok: true });
    }
  });

  test('a group whose statement fails rejects every entry in it and stores none of them', async () => {
    const { audit, db } = server.kapija;
    const append = createGroupedAppend(db);
    const chains = Array.from({ length: 4 }, (_, i) => `test:failing:${i}:${Date.now()}`);
    // A chain name longer than the column allows fails the whole statement.
    const outcomes = await Promise.allSettled([...chains.map((c) => append(entry(c, 1))), append(entry('x'.repeat(101), 1))]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
    for (const c of chains) expect(await audit.list({ chain: c })).toEqual([]);
    // The next group is written as usual.
    const after = await append(entry(chains[0]!, 2));
    expect(after.seq).toBe(1);
    expect(await audit.verify(chains[0]!)).toMatchObject({ ok: true });
  });

  async function citizensWithTokens(n: number) {
    return Promise.all(
      Array.from({ length: n }, async () => {
        const s = await testService(server);
        const cb = await signIn(new Agent(), s.authorize({ scope: 'openid email', prompt: 'consent' }), s.redirect, s.citizen);
        const tokens = await s.token({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: s.redirect });
        expect(tokens.status).toBe(200);
        return { ...s, accessToken: tokens.body.access_token! };
      }),
    );
  }
  const userinfo = (accessToken: string) => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  const released = async (accountId: string, channel: string) =>
    (await server.kapija.audit.list({ chain: ledgerChain(accountId), limit: 1000 })).filter((e) => e.action === 'ledger.data_released' && e.details.channel === channel);

  test('concurrent userinfo and introspection calls for several citizens: every release has its entry and the chains verify', async () => {
    const citizens = await citizensWithTokens(4);
    const CALLS = 3;
    const { result: responses, names } = await statementsDuring(() =>
      Promise.all(
        citizens.flatMap((c) => [
          ...Array.from({ length: CALLS }, () => userinfo(c.accessToken).then(async (r) => ({ status: r.status, body: await r.text() }))),
          c.post('/token/introspection', { token: c.accessToken }).then((r) => ({ status: r.status, body: JSON.stringify(r.body) })),
        ]),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(responses.length).fill(200));
    // The releases went through the grouped statement, not one append each.
    expect(names).toContain('kapija_audit_append_group');
    expect(names).not.toContain('kapija_audit_append');
    for (const c of citizens) {
      expect(await released(c.citizen.account.id, 'userinfo')).toHaveLength(CALLS);
      expect(await released(c.citizen.account.id, 'introspection')).toHaveLength(1);
      expect(await server.kapija.audit.verify(ledgerChain(c.citizen.account.id))).toMatchObject({ ok: true });
    }
  });

  test('when the group’s statement fails, every request in it is refused and no data leaves', async () => {
    const citizens = await citizensWithTokens(3);
    // The ledger refuses release entries from now on (existing rows are not checked).
    await server.kapija.db.raw(`alter table audit_events add constraint refuse_releases check (action <> 'ledger.data_released') not valid`);
    try {
      const responses = await Promise.all(citizens.map((c) => userinfo(c.accessToken).then(async (r) => ({ status: r.status, body: await r.text() }))));
      expect(responses.map((r) => r.status)).toEqual([503, 503, 503]);
      for (const [i, r] of responses.entries()) {
        expect(r.body).not.toContain(citizens[i]!.citizen.account.email!);
        expect(JSON.parse(r.body)).toMatchObject({ error: 'temporarily_unavailable' });
      }
      for (const c of citizens) expect(await released(c.citizen.account.id, 'userinfo')).toHaveLength(0);
    } finally {
      await server.kapija.db.raw('alter table audit_events drop constraint refuse_releases');
    }
    const again = await userinfo(citizens[0]!.accessToken);
    expect(again.status).toBe(200);
    expect(await released(citizens[0]!.citizen.account.id, 'userinfo')).toHaveLength(1);
  });
});
