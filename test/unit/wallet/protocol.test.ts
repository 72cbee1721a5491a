/**
 * The OpenID4VP protocol of wallet sign-in on its own (src/wallet/verifier/protocol.ts): the DCQL
 * query, the signed request object, and the answers the library parses with Kapija's callbacks —
 * hand-made here with jose, without the test wallet (which also changes the libraries' global
 * configuration), so the https rule and its development exception are seen as they are.
 */
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { CompactEncrypt, SignJWT, compactVerify, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, importX509, type CryptoKey, type JWK } from 'jose';
import { DcqlQuery } from 'dcql';
import { PID_QUERY, PID_QUERY_ID, allowHttpIssuer, parseAnswer, requestedClaimNames, signedRequestObject, type RequestParams } from '../../../src/wallet/verifier/protocol.js';
import type { RequestSigningKey } from '../../../src/wallet/verifier/keys.js';

const STATE = randomBytes(24).toString('base64url');
const sameState = (s: unknown) => s === STATE;

async function params(responseUri = 'https://kapija.test/wallet/response/r1'): Promise<RequestParams & { publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ECDH-ES', { crv: 'P-256', extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'abcdefgh-enc' };
  return { id: 'abcdefgh'.repeat(4), clientId: 'x509_san_dns:kapija.test', nonce: 'the-nonce', state: STATE, responseUri, responseKey: await exportJWK(privateKey), publicJwk };
}

async function signingKey(): Promise<RequestSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: 'CN=kapija.test',
      keys: { privateKey: privateKey as unknown as webcrypto.CryptoKey, publicKey: publicKey as unknown as webcrypto.CryptoKey },
      signingAlgorithm: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'kapija.test' }])],
    },
    webcrypto as never,
  );
  return { kid: 'k1', privateKey: privateKey as CryptoKey, x5c: [Buffer.from(cert.rawData).toString('base64')], clientId: 'x509_san_dns:kapija.test' };
}

const encrypt = async (to: JWK, payload: unknown, alg = 'ECDH-ES') =>
  new CompactEncrypt(new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload))).setProtectedHeader({ alg, enc: 'A256GCM', kid: to.kid! }).encrypt(await importJWK({ ...to, alg }, alg));

test('the DCQL query is one dc+sd-jwt PID asking for the JMBG alone, valid for dcql', () => {
  expect(() => DcqlQuery.validate(DcqlQuery.parse(PID_QUERY as DcqlQuery.Input))).not.toThrow();
  expect(PID_QUERY.credentials).toHaveLength(1);
  expect(PID_QUERY.credentials[0]).toMatchObject({ id: PID_QUERY_ID, format: 'dc+sd-jwt', meta: { vct_values: ['urn:eudi:pid:1'] }, require_cryptographic_holder_binding: true, multiple: false });
  expect(requestedClaimNames(PID_QUERY, PID_QUERY_ID)).toEqual(['personal_administrative_number']);
  expect(() => requestedClaimNames(PID_QUERY, 'other')).toThrow();
});

test('the request object: signed with the x5c key, Kapija\'s clock for iat and exp, the query, the per-request encryption key without its private part', async () => {
  const p = await params();
  const key = await signingKey();
  const at = new Date('2026-01-02T03:04:05Z');
  const jar = await signedRequestObject(p, key, 'https://kapija.test/wallet/request/r1', at, 300);
  expect(decodeProtectedHeader(jar)).toMatchObject({ alg: 'ES256', typ: 'oauth-authz-req+jwt', x5c: key.x5c });
  await compactVerify(jar, await importX509(`-----BEGIN CERTIFICATE-----\n${key.x5c[0]!}\n-----END CERTIFICATE-----`, 'ES256'));
  const claims = decodeJwt(jar) as Record<string, unknown> & { client_metadata: { jwks: { keys: JWK[] } } };
  expect(claims).toMatchObject({ iss: key.clientId, aud: 'https://self-issued.me/v2', client_id: key.clientId, response_type: 'vp_token', response_mode: 'direct_post.jwt', response_uri: p.responseUri, nonce: 'the-nonce', state: STATE });
  expect(claims.iat).toBe(at.getTime() / 1000);
  expect(claims.exp).toBe(at.getTime() / 1000 + 300);
  expect(claims.dcql_query).toEqual(JSON.parse(JSON.stringify(PID_QUERY)));
  expect(claims.client_metadata.jwks.keys).toHaveLength(1);
  expect(claims.client_metadata.jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', x: p.publicJwk.x, use: 'enc', alg: 'ECDH-ES' });
  expect(claims.client_metadata.jwks.keys[0]).not.toHaveProperty('d');
});

describe('answers', () => {
  test('encrypted to the request\'s key with its state: the presentations by query id', async () => {
    const p = await params();
    const answer = await parseAnswer(p, await encrypt(p.publicJwk, { vp_token: { pid: ['a~b~c'] }, state: STATE }), sameState);
    expect(answer).toEqual({ kind: 'presentations', presentations: { pid: ['a~b~c'] } });
  });

  test('decrypted with the request\'s key only: an answer encrypted to another key under this request\'s kid is not read', async () => {
    const p = await params();
    const other = await params();
    const answer = await parseAnswer(p, await encrypt({ ...other.publicJwk, kid: p.publicJwk.kid }, { vp_token: { pid: ['x'] }, state: STATE }), sameState);
    expect(answer).toEqual({ kind: 'unreadable', why: 'not_encrypted' });
  });

  test('not encrypted (signed, or plain), or with key wrapping Kapija did not offer: not read', async () => {
    const p = await params();
    const signer = await generateKeyPair('ES256');
    const signed = await new SignJWT({ vp_token: { pid: ['x'] }, state: STATE, iss: 'w', aud: p.clientId, exp: Math.floor(Date.now() / 1000) + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'w' }).sign(signer.privateKey);
    for (const response of [signed, 'not-a-jwe', await encrypt(p.publicJwk, { vp_token: { pid: ['x'] }, state: STATE }, 'ECDH-ES+A128KW')]) {
      expect(await parseAnswer(p, response, sameState)).toEqual({ kind: 'unreadable', why: 'not_encrypted' });
    }
  });

  test('the state is checked by Kapija: missing or another is not read, for presentations and for error responses', async () => {
    const p = await params();
    for (const body of [{ vp_token: { pid: ['x'] } }, { vp_token: { pid: ['x'] }, state: 'other' }, { error: 'access_denied' }, { error: 'access_denied', state: 'other' }]) {
      expect(await parseAnswer(p, await encrypt(p.publicJwk, body), sameState)).toEqual({ kind: 'unreadable', why: 'state' });
    }
  });

  test('the wallet\'s error response with this state is an error, also beside a vp_token', async () => {
    const p = await params();
    expect(await parseAnswer(p, await encrypt(p.publicJwk, { error: 'access_denied', state: STATE }), sameState)).toEqual({ kind: 'error' });
    expect(await parseAnswer(p, await encrypt(p.publicJwk, { error: 'access_denied', vp_token: { pid: ['x'] }, state: STATE }), sameState)).toEqual({ kind: 'error' });
  });

  test('decrypted but not an authorization response: not read', async () => {
    const p = await params();
    for (const body of ['not json', { state: STATE }, { vp_token: 42, state: STATE }]) {
      expect(await parseAnswer(p, await encrypt(p.publicJwk, body), sameState)).toEqual({ kind: 'unreadable', why: 'not_a_response' });
    }
  });
});

test('a request object with an http response URI is refused by the library, and made once the issuer is http (development, tests)', async () => {
  const p = await params('http://127.0.0.1:3000/wallet/response/r1');
  const key = await signingKey();
  const sign = () => signedRequestObject(p, key, 'http://127.0.0.1:3000/wallet/request/r1', new Date(), 300);
  await expect(sign()).rejects.toThrow(/https/);
  allowHttpIssuer('https://kapija.test');
  await expect(sign()).rejects.toThrow(/https/);
  allowHttpIssuer('http://127.0.0.1:3000');
  expect(decodeJwt(await sign()).response_uri).toBe(p.responseUri);
});
