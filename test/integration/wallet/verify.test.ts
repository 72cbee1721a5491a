/**
 * verifyPid (src/wallet/verifier/verify.ts) on its own, with the test PID issuer: what the e2e suite
 * cannot reach through a wallet — production's https-only status lists, and an answer without a
 * key-binding JWT.
 */
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';
import { ES256, digest, generateSalt } from '@sd-jwt/crypto-nodejs';
import { PresentationRefused, verifyPid, type VerifyInput } from '../../../src/wallet/verifier/verify.js';
import { DcqlPresentationResult, DcqlQuery } from 'dcql';
import { PID_QUERY, PID_QUERY_ID } from '../../../src/wallet/verifier/protocol.js';
import { configuredIssuer } from '../../../src/wallet/verifier/trusted-issuers.js';
import { holderKeyPair, startTestPidIssuer, type TestPidIssuer } from '../../support/wallet/test-issuer.js';

const CLIENT_ID = 'x509_san_dns:kapija.test';
const NONCE = 'the-request-nonce';

let pid: TestPidIssuer;
beforeAll(async () => {
  pid = await startTestPidIssuer();
});
afterAll(async () => {
  await pid?.stop();
});

async function presentation(kb = true): Promise<string> {
  const holder = await holderKeyPair();
  const { credential } = await pid.issue({ pan: '0101990710008', holder: holder.publicJwk });
  const sdjwt = new SDJwtVcInstance({ hasher: digest, saltGenerator: generateSalt, kbSigner: await ES256.getSigner(holder.privateJwk), kbSignAlg: 'ES256' });
  return sdjwt.present(credential, { personal_administrative_number: true } as never, kb ? { kb: { payload: { iat: Math.floor(Date.now() / 1000), aud: CLIENT_ID, nonce: NONCE } as never } } : undefined);
}

const input = (p: string, extra: Partial<VerifyInput> = {}): VerifyInput => ({
  presentation: p,
  nonce: NONCE,
  clientId: CLIENT_ID,
  query: PID_QUERY,
  credentialQueryId: PID_QUERY_ID,
  issuers: new Map([[pid.issuer, configuredIssuer({ issuer: pid.issuer, level: 'high', jwks: pid.jwks }, fetch)]]),
  fetch: (url, init) => fetch(url, init),
  allowHttp: true,
  ...extra,
});

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PresentationRefused);
    return (err as PresentationRefused).reason;
  }
  throw new Error('the presentation was accepted');
};

test('a good presentation: the requested claim, from the trusted issuer', async () => {
  const verified = await verifyPid(input(await presentation()));
  expect(verified.claims).toEqual({ personal_administrative_number: '0101990710008' });
  expect(verified.issuer.level).toBe('high');
});

test('in production a status list over plain http is refused, and not fetched', async () => {
  const before = pid.statusFetches();
  expect(await refusal(verifyPid(input(await presentation(), { allowHttp: false })))).toBe('invalid');
  expect(pid.statusFetches()).toBe(before);
});

test('a presentation without a key-binding JWT is refused', async () => {
  expect(await refusal(verifyPid(input(await presentation(false))))).toBe('binding');
});

test('garbage is refused as invalid, not thrown as another error', async () => {
  for (const junk of ['', '~~', 'a.b.c~x~y', `${'x'.repeat(10)}~`]) {
    expect(['invalid', 'binding']).toContain(await refusal(verifyPid(input(junk))));
  }
});

/** A DCQL query built and validated by dcql, as Kapija's own is. */
const queryFor = (credential: Record<string, unknown>) => {
  const q = DcqlQuery.parse({ credentials: [{ id: 'pid', format: 'dc+sd-jwt', ...credential }] } as DcqlQuery.Input);
  DcqlQuery.validate(q);
  return q;
};

test('the presentation is checked against the query by dcql: a PID missing a claim the query asks for is refused', async () => {
  const query = queryFor({ meta: { vct_values: ['urn:eudi:pid:1'] }, claims: [{ path: ['personal_administrative_number'] }, { path: ['family_name'] }] });
  // The wallet disclosed only the JMBG: no over-disclosure, but the query's family_name is missing.
  expect(await refusal(verifyPid(input(await presentation(), { query })))).toBe('invalid');
});

test('a credential of another type than the query\'s vct_values is refused by dcql', async () => {
  const query = queryFor({ meta: { vct_values: ['urn:example:not-a-pid'] }, claims: [{ path: ['personal_administrative_number'] }] });
  expect(await refusal(verifyPid(input(await presentation(), { query })))).toBe('invalid');
});

test('dcql does not refuse a disclosure beyond the query; Kapija does', async () => {
  const holder = await holderKeyPair();
  const { credential } = await pid.issue({ pan: '0101990710008', holder: holder.publicJwk });
  const sdjwt = new SDJwtVcInstance({ hasher: digest, saltGenerator: generateSalt, kbSigner: await ES256.getSigner(holder.privateJwk), kbSignAlg: 'ES256' });
  const kb = { payload: { iat: Math.floor(Date.now() / 1000), aud: CLIENT_ID, nonce: NONCE } as never };
  const more = await sdjwt.present(credential, { personal_administrative_number: true, given_name: true } as never, { kb });
  // The claims dcql sees do satisfy the query...
  const claims = (await sdjwt.getClaims(more)) as Record<string, unknown>;
  const result = DcqlPresentationResult.fromDcqlPresentation({ pid: [{ credential_format: 'dc+sd-jwt', vct: claims.vct as string, claims: claims as never, cryptographic_holder_binding: true }] }, { dcqlQuery: PID_QUERY });
  expect(result.can_be_satisfied).toBe(true);
  // ...but Kapija refuses the presentation that disclosed the given name.
  expect(await refusal(verifyPid(input(more)))).toBe('disclosure');
});
