/**
 * The client-certificate middleware without a proxy in front (the nginx suite runs it behind a real
 * one): what it leaves in ctx.state, and that the proxy's headers are gone for everything after it.
 */
import Koa from 'koa';
import request from 'supertest';
import {
  CLIENT_CERT_HEADER,
  PROXY_SECRET_HEADER,
  createCertificateValidator,
  parseTrustAnchors,
  verifyCrl,
  type CertificateValidator,
} from '../../../src/factors/certificate/index.js';
import { clientCertificateMiddleware } from '../../../src/http/client-certificate.js';
import { makeTestEidPki, type TestEidPki } from '../../support/test-ca.js';

const SECRET = 'a-secret-the-proxy-and-kapija-share-000';
let pki: TestEidPki;
let validator: CertificateValidator;
let app: Koa;

beforeAll(async () => {
  pki = makeTestEidPki();
  const anchors = parseTrustAnchors(pki.anchorsPem);
  const crls = await Promise.all([pki.crls.intermediate, pki.crls.root].map((der) => verifyCrl(der, anchors, new Date())));
  validator = createCertificateValidator({ anchors, crls: { crlFor: async (a) => crls.find((c) => c.issuerFingerprint === a.fingerprint) } });
  app = new Koa();
  app.use(clientCertificateMiddleware({ proxySecret: SECRET, validator }));
  app.use((ctx) => {
    ctx.body = { state: ctx.state.clientCertificate as unknown, headersLeft: [CLIENT_CERT_HEADER, PROXY_SECRET_HEADER].filter((h) => h in ctx.headers) };
  });
});

test('with the proxy’s secret: the certificate is validated and the headers are removed', async () => {
  const res = await request(app.callback()).get('/').set(CLIENT_CERT_HEADER, encodeURIComponent(pki.citizen.pem)).set(PROXY_SECRET_HEADER, SECRET);
  expect(res.body).toMatchObject({ state: { presented: true, check: { ok: true, identity: { jmbg: pki.citizen.jmbg } } }, headersLeft: [] });
});

test('a refusal is left for the route to explain', async () => {
  const res = await request(app.callback()).get('/').set(CLIENT_CERT_HEADER, encodeURIComponent(pki.revoked.pem)).set(PROXY_SECRET_HEADER, SECRET);
  expect(res.body).toEqual({ state: { presented: true, check: { ok: false, reason: 'revoked' } }, headersLeft: [] });
});

test('without the secret: no certificate, marked forged, and the headers are removed', async () => {
  const res = await request(app.callback()).get('/').set(CLIENT_CERT_HEADER, encodeURIComponent(pki.citizen.pem));
  expect(res.body).toEqual({ state: { presented: false, forged: true }, headersLeft: [] });
});

test('nothing sent: no certificate, not forged', async () => {
  const res = await request(app.callback()).get('/');
  expect(res.body).toEqual({ state: { presented: false, forged: false }, headersLeft: [] });
});

test('a header that is not a certificate: malformed', async () => {
  const res = await request(app.callback()).get('/').set(CLIENT_CERT_HEADER, '-----BEGIN%20CERTIFICATE-----%0Agarbage').set(PROXY_SECRET_HEADER, SECRET);
  expect(res.body).toMatchObject({ state: { presented: true, check: { ok: false, reason: 'malformed' } } });
});

test('a short proxy secret is refused when the middleware is built', () => {
  expect(() => clientCertificateMiddleware({ proxySecret: 'short', validator })).toThrow(/at least 32/);
});
