/**
 * Open data: daily counts from real events, published for completed days only, small counts
 * suppressed, and nothing that identifies a person in any file; the DCAT-AP catalog lists them all.
 */
import * as oidc from 'openid-client';
import { Agent } from '../support/browserless.js';
import { signIn } from '../support/sign-in.js';
import { stores } from '../support/databases.js';
import { createTestAccount, createTestClient, kapijaForSuite } from '../support/kapija.js';

const REDIRECT = 'http://127.0.0.1:9/cb';
const SUBSTANTIAL = 'http://eidas.europa.eu/LoA/substantial';

describe.each(stores())('open data on %s', (store) => {
  let clock = Date.now();

  const server = kapijaForSuite({ store, env: { OPEN_DATA_MIN_COUNT: '3' }, options: { now: () => clock } });

  const get = async (path: string) => {
    const res = await fetch(`${server.url}${path}`);
    expect(res.status).toBe(200);
    return { type: res.headers.get('content-type') ?? '', body: await res.text() };
  };

  test('publishes yesterday’s counts, suppresses small ones, and never a person', async () => {
    const citizens = [
      await createTestAccount(server.kapija, { givenName: 'Анђелија', familyName: 'Вукашиновић' }),
      await createTestAccount(server.kapija),
      await createTestAccount(server.kapija),
    ];
    const [ana] = citizens;
    const a = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });
    const b = await createTestClient(server.kapija, { redirect_uris: [REDIRECT] });

    // One real sign-in to service A, the rest as the events the sign-in pages emit.
    const config = await oidc.discovery(new URL(server.url), a.clientId, a.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    await signIn(new Agent(), url, REDIRECT, ana!);
    const person = { ip: '203.0.113.77', userAgent: 'Identifying-Agent/9.9' };
    for (const c of citizens.slice(1)) {
      await server.kapija.events.emit('signin.success', { accountId: c.account.id, clientId: a.clientId, acr: SUBSTANTIAL, amr: ['pwd', 'otp', 'mfa'], ...person });
    }
    await server.kapija.events.emit('signin.success', { accountId: ana!.account.id, clientId: b.clientId, acr: SUBSTANTIAL, amr: ['pwd', 'otp', 'mfa'], ...person });
    for (const c of citizens) await server.kapija.events.emit('factor.enrolled', { accountId: c.account.id, type: 'totp', ip: person.ip });
    await server.kapija.events.emit('factor.enrolled', { accountId: ana!.account.id, type: 'webauthn', ip: person.ip });

    // Today is not complete: nothing is published yet.
    expect(JSON.parse((await get('/open-data/signins-by-service.json')).body).rows).toEqual([]);

    clock += 24 * 3600 * 1000;
    const today = new Date(clock - 24 * 3600 * 1000).toISOString().slice(0, 10);
    const json = async (name: string) => JSON.parse((await get(`/open-data/${name}.json`)).body) as { license: string; rows: unknown[] };

    const services = await json('signins-by-service');
    expect(services.license).toBe('https://creativecommons.org/licenses/by/4.0/');
    expect(services.rows).toEqual(
      expect.arrayContaining([
        { date: today, service: a.clientId, count: 3, suppressed: false },
        { date: today, service: b.clientId, count: null, suppressed: true },
      ]),
    );
    expect((await json('signins-by-level')).rows).toEqual([{ date: today, assurance_level: 'substantial', count: 4, suppressed: false }]);
    expect((await json('second-factor-enrolments')).rows).toEqual([
      { date: today, factor: 'totp', count: 3, suppressed: false },
      { date: today, factor: 'webauthn', count: null, suppressed: true },
    ]);
    expect((await json('registrations')).rows).toEqual([{ date: today, scope: 'all', count: 3, suppressed: false }]);

    const csv = await get('/open-data/second-factor-enrolments.csv');
    expect(csv.type).toMatch(/^text\/csv/);
    expect(csv.body).toBe(`date,factor,count,suppressed\n${today},totp,3,false\n${today},webauthn,,true\n`);

    const catalog = await get('/open-data/catalog.jsonld');
    expect(catalog.type).toMatch(/^application\/ld\+json/);
    const dcat = JSON.parse(catalog.body) as { '@type': string; 'dcat:dataset': { 'dcat:distribution': { 'dcat:downloadURL': { '@id': string } }[] }[] };
    expect(dcat['@type']).toBe('dcat:Catalog');
    expect(dcat['dcat:dataset']).toHaveLength(4);
    const downloads = dcat['dcat:dataset'].flatMap((d) => d['dcat:distribution'].map((x) => x['dcat:downloadURL']['@id']));
    expect(downloads).toHaveLength(8);
    for (const href of downloads) expect((await fetch(href)).status).toBe(200);

    // No file says anything about a person.
    const everything = (
      await Promise.all(
        ['/open-data/', '/open-data/catalog.jsonld', ...downloads.map((d) => new URL(d).pathname)].map(async (p) => (await get(p)).body),
      )
    ).join('\n');
    const identifiers = citizens.flatMap((c) => [c.account.id, c.username, c.account.email!, c.password]);
    for (const value of [...identifiers, 'Анђелија', 'Вукашиновић', person.ip, person.userAgent]) {
      expect({ value, found: everything.includes(value) }).toEqual({ value, found: false });
    }
  });
});
