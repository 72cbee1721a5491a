/**
 * The PID issuer's store on every store (store/wallet-credentials.ts, wallet/issuer/keys.ts): the
 * credential-signing key is created once by instances starting together, sealed at rest, rotated
 * with the old key still published until its retention; status-list indices are never shared by
 * concurrent issuances and a full list makes way for a new one; a nonce's use is kept once.
 */
import { randomBytes } from 'node:crypto';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createKeyRepository } from '../../../src/store/keys.js';
import { createWalletCredentialRepository, STATUS_LIST_SIZE, statusIndex } from '../../../src/store/wallet-credentials.js';
import { createCredentialKeys } from '../../../src/wallet/issuer/keys.js';
import { createSecretBox } from '../../../src/security/crypto.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';

test('the index permutation is a bijection of the whole list', () => {
  const box = createSecretBox(randomBytes(32));
  const seen = new Uint8Array(STATUS_LIST_SIZE);
  let outside = 0;
  for (let n = 0; n < STATUS_LIST_SIZE; n += 1) {
    const i = statusIndex(box, 'list', n);
    if (!(i >= 0 && i < STATUS_LIST_SIZE)) outside += 1;
    else seen[i] = 1;
  }
  expect(outside).toBe(0);
  // Every index reached once from 2^17 counters: none twice.
  expect(seen.reduce((a, b) => a + b, 0)).toBe(STATUS_LIST_SIZE);
});

describe.each(stores())('the PID issuer store (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
  });
  afterAll(async () => {
    await db.destroy();
    await testDb.drop();
  });

  test('one credential-signing key for instances starting together; sealed at rest; rotation keeps the old one published until its retention', async () => {
    const box = createSecretBox(randomBytes(32));
    let clock = Date.now();
    const make = () => createCredentialKeys({ keys: createKeyRepository(db), box, retentionSeconds: 60, now: () => clock });
    await Promise.all([make().ensure(), make().ensure(), make().ensure()]);
    const rows = (await db('keys').where({ use: 'vc' })) as { id: string; material_enc: string }[];
    expect(rows).toHaveLength(1);
    const keys = make();
    const first = await keys.signingKey();
    expect(first).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', kid: rows[0]!.id });
    expect(rows[0]!.material_enc).not.toContain(first.d!);
    const published = await keys.publicJwks();
    expect(published.keys).toHaveLength(1);
    expect(published.keys[0]!.d).toBeUndefined();

    const second = await keys.rotate();
    expect((await keys.signingKey()).kid).toBe(second);
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual([second, first.kid]);
    clock += 61_000;
    await createKeyRepository(db).deleteExpired(clock);
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual([second]);
  });

  test('concurrent issuances never share a status-list index, which tells nothing of the order; a full list makes way for a new one', async () => {
    const box = createSecretBox(randomBytes(32));
    const repo = createWalletCredentialRepository(db, box);
    const input = (i: number) => ({ accountId: `acc-${i}`, identityRef: `acc-${i}@1`, level: 'high', clientId: 'w', channel: 'desk' as const, issuedAt: Date.now(), expiresAt: Date.now() + 1000 });
    // Each account's proofing in force, the one its credential was issued from (verified at 1).
    const identity = (i: number) => ({ account_id: `acc-${i}`, level: 'high', method: 'test', verifier: 'test', evidence: '{}', attributes: '{}', verified_at: 1, updated_at: 1 });
    await db('verified_identities').whereLike('account_id', 'acc-%').delete();
    await db('verified_identities').insert([...Array.from({ length: 30 }, (_, i) => identity(i)), identity(99)]);
    const made = await Promise.all(Array.from({ length: 30 }, (_, i) => db.transaction((trx) => repo.insert(input(i), trx))));
    const slots = new Set(made.map((c) => `${c.listId}#${c.listIdx}`));
    expect(slots.size).toBe(30);
    const listId = made[0]!.listId;
    // Not the issuance order: the indices are spread over the list.
    const indices = made.map((c) => c.listIdx).sort((x, y) => x - y);
    expect(indices).not.toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(indices.every((i) => Number.isInteger(i) && i >= 0 && i < STATUS_LIST_SIZE)).toBe(true);
    expect(Math.max(...indices)).toBeGreaterThan(1000);
    await db('wallet_status_lists').where({ id: listId }).update({ next_idx: STATUS_LIST_SIZE });
    const next = await db.transaction((trx) => repo.insert(input(99), trx));
    expect(next.listId).not.toBe(listId);
    expect(next.listIdx).toBe(statusIndex(box, next.listId, 0));
    expect(await repo.revoke(made[3]!.id, 'citizen', Date.now())).toBe(true);
    expect(await repo.revoke(made[3]!.id, 'citizen', Date.now())).toBe(false);
    const state = await repo.revokedIndices(made[3]!.listId);
    expect(state).toEqual({ size: STATUS_LIST_SIZE, revoked: [made[3]!.listIdx] });
    // Issued from a proofing no longer in force, though never marked revoked: revoked in the list.
    await db('verified_identities').where({ account_id: 'acc-4' }).update({ revoked_at: 2 });
    await db('verified_identities').where({ account_id: 'acc-5' }).update({ verified_at: 2 });
    await db('verified_identities').where({ account_id: 'acc-6' }).delete();
    const after = await repo.revokedIndices(made[3]!.listId);
    expect(after!.revoked.sort((x, y) => x - y)).toEqual([3, 4, 5, 6].map((i) => made[i]!.listIdx).sort((x, y) => x - y));
    expect(await repo.revokedIndices('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    // One entry by the same rule (Kapija's own wallet sign-in reads no whole list).
    for (const i of [0, 3, 4, 5, 6, 7]) expect(await repo.isRevoked(made[i]!.listId, made[i]!.listIdx)).toBe([3, 4, 5, 6].includes(i));
    const unused = [...Array(STATUS_LIST_SIZE).keys()].find((x) => !indices.includes(x))!;
    expect(await repo.isRevoked(listId, unused)).toBeUndefined();
  });

  test('a used proof is kept once, and forgotten after it expires', async () => {
    const repo = createWalletCredentialRepository(db, createSecretBox(randomBytes(32)));
    const now = Date.now();
    expect(await repo.useProof('h1', now + 1000, now)).toBe(true);
    expect(await repo.useProof('h1', now + 1000, now)).toBe(false);
    expect(await repo.useProof('h1', now + 5000, now + 2000)).toBe(true);
  });
});
