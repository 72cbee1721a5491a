/**
 * Identity proofing on every store (identity/service.ts over store/identities.ts and
 * store/activation-codes.ts), with two instances on one database: two proofings of the same JMBG
 * at the same moment leave one identity in force; an activation code is redeemed once; codes are
 * withdrawn with the identity they would restore and with their registrar's role.
 */
import { randomBytes } from 'node:crypto';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createRepositories } from '../../../src/store/index.js';
import { createSecretBox } from '../../../src/security/crypto.js';
import { createIdentityService, type IdentityService, type ProofingInput } from '../../../src/identity/service.js';
import { createRegistrarRoles } from '../../../src/identity/registrar.js';
import { createTestDatabase, stores, type TestDatabase } from '../../support/databases.js';
import { uniqueJmbg } from '../../support/kapija.js';

function check(verifier: string, jmbg = uniqueJmbg()): ProofingInput {
  return {
    method: 'in_person',
    level: 'high',
    verifier,
    office: 'Test office',
    evidence: { type: 'document', documentType: 'idcard', issuingCountry: 'RS', documentNumber: `00${jmbg.slice(7)}` },
    attributes: { givenNameLatn: 'Jelena', familyNameLatn: 'Jović', jmbg },
  };
}

describe.each(stores())('identity proofing across instances (%s)', (store) => {
  let testDb: TestDatabase;
  let db: Db;
  let one: IdentityService;
  let two: IdentityService;
  let repos: ReturnType<typeof createRepositories>;

  const account = async () => (await repos.accounts.create({ username: `c${randomBytes(6).toString('hex')}`, status: 'active' }, null)).id;

  beforeAll(async () => {
    testDb = await createTestDatabase(store);
    db = openStore(testDb.database);
    await migrate(db);
    const key = randomBytes(32);
    repos = createRepositories(db, createSecretBox(key));
    one = createIdentityService({ repos, box: createSecretBox(key) });
    two = createIdentityService({ repos: createRepositories(db, createSecretBox(key)), box: createSecretBox(key) });
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  it('two proofings of one JMBG on two accounts at the same moment: exactly one is in force, the other is refused', async () => {
    const jmbg = uniqueJmbg();
    const [a, b] = [await account(), await account()];
    const results = await Promise.allSettled([one.recordProofing(a, check('officer-1', jmbg), { actor: 'officer-1' }), two.recordProofing(b, check('officer-2', jmbg), { actor: 'officer-2' })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((refused.reason as { code?: string }).code).toBe('identity.duplicate_jmbg');
    const holder = await one.findAccountByVerifiedJmbg(jmbg);
    expect([a, b]).toContain(holder);
    expect(await one.levelOf(holder === a ? b : a)).toBe('none');
  });

  it('an account read with its identity: the identity as find opens it, a revocation by the other instance seen by the next read', async () => {
    const citizen = await account();
    expect(await repos.accounts.findByIdWithIdentity(citizen)).toEqual({ account: await repos.accounts.findById(citizen), identityRow: null });
    expect(await repos.accounts.findByIdWithIdentity('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    await one.recordProofing(citizen, check('officer-1'), { actor: 'officer-1' });
    const read = await repos.accounts.findByIdWithIdentity(citizen);
    expect(read?.account).toEqual(await repos.accounts.findById(citizen));
    expect(repos.identities.fromRow(read!.identityRow)).toEqual(await one.find(citizen));
    expect(repos.identities.fromRow(read!.identityRow).level).toBe('high');
    await two.revoke(citizen, { actor: 'officer-2' }, 'fraud');
    expect(repos.identities.fromRow((await repos.accounts.findByIdWithIdentity(citizen))!.identityRow)).toMatchObject({ level: 'none', revokedReason: 'fraud' });
  });

  it('one activation code redeemed by two instances at the same moment: exactly one succeeds', async () => {
    const citizen = await account();
    const { code } = await one.issueActivationCode(check('officer-1'), { actor: 'officer-1' }, { accountId: citizen });
    const results = await Promise.allSettled([one.redeemActivationCode(citizen, code), two.redeemActivationCode(citizen, code)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('revoking an identity withdraws the unused codes for its account and its JMBG, and no others', async () => {
    const citizen = await account();
    const input = check('officer-1');
    const loose = await one.issueActivationCode(input, { actor: 'officer-1' });
    const bound = await one.issueActivationCode(input, { actor: 'officer-1' }, { accountId: citizen });
    const unrelated = await one.issueActivationCode(check('officer-1'), { actor: 'officer-1' });
    await one.recordProofing(citizen, input, { actor: 'officer-1' });
    expect(await two.revoke(citizen, { actor: 'officer-2' }, 'fraud')).toBe(true);
    const elsewhere = await account();
    await expect(one.redeemActivationCode(elsewhere, loose.code)).rejects.toMatchObject({ code: 'identity.activation_invalid' });
    await expect(one.redeemActivationCode(citizen, bound.code)).rejects.toMatchObject({ code: 'identity.activation_invalid' });
    expect((await one.redeemActivationCode(elsewhere, unrelated.code)).level).toBe('high');
  });

  it('revoking the registrar role withdraws the codes that registrar issued and nobody used, and no others', async () => {
    const officer = await account();
    const colleague = await account();
    const roles = createRegistrarRoles(repos);
    await roles.grant(officer, 'admin');
    const mine = await one.issueActivationCode(check(officer), { actor: officer });
    const theirs = await one.issueActivationCode(check(colleague), { actor: colleague });
    expect(await roles.revoke(officer, 'admin')).toBe(true);
    const citizen = await account();
    await expect(two.redeemActivationCode(citizen, mine.code)).rejects.toMatchObject({ code: 'identity.activation_invalid' });
    expect((await two.redeemActivationCode(citizen, theirs.code)).level).toBe('high');
    const [entry] = await repos.audit.list({ chain: 'admin', action: 'admin.role.revoked', subject: officer });
    expect(entry?.details).toMatchObject({ role: 'registrar', activation_codes_withdrawn: 1 });
  });
});
