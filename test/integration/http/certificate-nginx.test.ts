/**
 * Certificate sign-in through a real nginx configured from the documented server block
 * (docs/nginx/kapija-eid.conf, quoted in the README): node's https client presents the test eID
 * certificates, nginx forwards them with the shared secret, and a small Koa app runs Kapija's own
 * middleware and validator (CRLs stored in the database as `kapija certs refresh` stores them) and
 * answers with the outcome and the citizen's message. A header forged directly to the app's port,
 * or through nginx, is ignored.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Koa from 'koa';
import {
  CLIENT_CERT_HEADER,
  PROXY_SECRET_HEADER,
  createCertificateSignIn,
  refusalMessageKey,
  verifyCrl,
  type CertificateSignIn,
} from '../../../src/factors/certificate/index.js';
import { clientCertificateMiddleware, type ClientCertificateState } from '../../../src/http/client-certificate.js';
import { createCertificateCrlRepository } from '../../../src/store/certificate-crls.js';
import { translator } from '../../../src/i18n/index.js';
import { loadConfig } from '../../../src/config.js';
import { migrate, openStore, type Db } from '../../../src/store/db.js';
import { createSqliteDatabase, type TestDatabase } from '../../support/databases.js';
import { TEST_ENV } from '../../support/kapija.js';
import { NGINX_TEMPLATE, describeNginx, startNginx, type RunningNginx } from '../../support/nginx.js';
import { makeTestEidPki, type LeafFiles, type TestEidPki } from '../../support/test-ca.js';

const SECRET = 'the-proxy-secret-shared-with-nginx-0123456789';
const t = translator('en');

interface Answer {
  status: number;
  body: { jmbg?: string; givenName?: string; refused?: string; forged?: boolean; message?: string };
}

test('the README quotes the server block the tests run nginx with', () => {
  const readme = fs.readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  expect(readme).toContain(fs.readFileSync(NGINX_TEMPLATE, 'utf8').trimEnd());
});

describeNginx('certificate sign-in through nginx', () => {
  let pki: TestEidPki;
  let testDb: TestDatabase;
  let db: Db;
  let signIn: CertificateSignIn;
  let app: http.Server;
  let appPort: number;
  let nginx: RunningNginx;

  beforeAll(async () => {
    pki = makeTestEidPki();
    const anchorsFile = path.join(pki.dir, 'anchors.pem');
    fs.writeFileSync(anchorsFile, pki.anchorsPem);
    testDb = createSqliteDatabase();
    const config = loadConfig({ ...TEST_ENV, ...testDb.env, CERT_TRUST_ANCHORS: anchorsFile, CERT_PROXY_SECRET: SECRET });
    db = openStore(config.database);
    await migrate(db);
    const crls = createCertificateCrlRepository(db);
    signIn = createCertificateSignIn(config, crls)!;
    for (const der of [pki.crls.intermediate, pki.crls.root]) {
      const crl = await verifyCrl(der, signIn.anchors, new Date());
      await crls.put({ ...crl, revokedCount: crl.revoked.size, source: 'test' });
    }
    const koa = new Koa();
    koa.use(clientCertificateMiddleware(signIn));
    koa.use((ctx) => {
      const state = ctx.state.clientCertificate as ClientCertificateState;
      if (state.presented && state.check.ok) {
        ctx.body = { jmbg: state.check.identity.jmbg, givenName: state.check.identity.givenName };
        return;
      }
      const refused = state.presented && !state.check.ok ? state.check.reason : 'none';
      ctx.status = 403;
      ctx.body = { refused, forged: !state.presented && state.forged, message: t(refusalMessageKey(refused)) };
    });
    app = http.createServer(koa.callback());
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appPort = (app.address() as AddressInfo).port;
    nginx = await startNginx({ upstream: `http://127.0.0.1:${appPort}`, proxySecret: SECRET, certFile: pki.server.certFile, keyFile: pki.server.keyFile });
  });
  afterAll(async () => {
    await nginx?.stop();
    await new Promise((resolve) => app?.close(resolve));
    await db?.destroy();
    await testDb?.drop();
  });

  /** A request through nginx over TLS, presenting `client` when given. */
  function viaNginx(client?: LeafFiles, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: nginx.port,
          servername: 'localhost',
          path: '/signin/certificate',
          ca: fs.readFileSync(pki.server.caFile),
          ...(client ? { cert: client.pem, key: client.key } : {}),
          headers,
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  function direct(headers: Record<string, string>): Promise<Answer> {
    return new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: appPort, path: '/signin/certificate', headers }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
        })
        .on('error', reject);
    });
  }

  test('the citizen’s certificate signs in with the JMBG and names from its subject', async () => {
    expect(await viaNginx(pki.citizen)).toEqual({ status: 200, body: { jmbg: pki.citizen.jmbg, givenName: 'Петар' } });
  });

  test.each([
    ['revoked', 'revoked', /revoked/],
    ['expired', 'expired', /expired/],
    ['notYetValid', 'not_yet_valid', /not valid yet/],
    ['foreign', 'untrusted', /not issued for a Serbian ID card/],
    ['wrongKeyUsage', 'wrong_key_usage', /cannot be used to sign in/],
    ['noJmbg', 'no_jmbg', /JMBG/],
  ] as const)('%s: refused as %s, with the citizen’s explanation', async (which, reason, message) => {
    const answer = await viaNginx(pki[which]);
    expect(answer).toMatchObject({ status: 403, body: { refused: reason, forged: false } });
    expect(answer.body.message).toMatch(message);
  });

  test('no certificate: nothing to sign in with', async () => {
    expect(await viaNginx()).toMatchObject({ status: 403, body: { refused: 'none', forged: false } });
  });

  test('a certificate header forged through nginx without a certificate is replaced by nginx’s empty value', async () => {
    const forged = { [CLIENT_CERT_HEADER]: encodeURIComponent(pki.citizen.pem), [PROXY_SECRET_HEADER]: 'guess' };
    expect(await viaNginx(undefined, forged)).toMatchObject({ status: 403, body: { refused: 'none' } });
  });

  test('a certificate header forged through nginx with another certificate: nginx’s value wins', async () => {
    const forged = { [CLIENT_CERT_HEADER]: encodeURIComponent(pki.citizen.pem) };
    expect(await viaNginx(pki.revoked, forged)).toMatchObject({ status: 403, body: { refused: 'revoked' } });
  });

  test('a certificate header sent directly to Kapija’s port, without or with a wrong secret, is ignored', async () => {
    const cert = encodeURIComponent(pki.citizen.pem);
    expect(await direct({ [CLIENT_CERT_HEADER]: cert })).toEqual({ status: 403, body: { refused: 'none', forged: true, message: t('certificate.refused.none') } });
    expect(await direct({ [CLIENT_CERT_HEADER]: cert, [PROXY_SECRET_HEADER]: SECRET.slice(0, -1) })).toMatchObject({ status: 403, body: { refused: 'none', forged: true } });
  });
});
