/**
 * Client-credentials tokens issued at once are written together (oidc/adapter.ts, createSaveBatcher):
 * every service gets a token that is stored and introspects as active; when the write fails, none
 * of the services in it gets a token, and the answer is a clear 503.
 */
import { jest } from '@jest/globals';
import { kapijaForSuite, testService } from '../../support/kapija.js';
import { stores } from '../../support/databases.js';

describe.each(stores())('on %s', (store) => {
  const server = kapijaForSuite({ store });

  test('sixteen services at once: sixteen stored tokens, each active', async () => {
    const { kapija, token, post } = await testService(server, { grant_types: ['client_credentials'], response_types: [] });
    const upserts = jest.spyOn(kapija.payloads, 'upsert');
    const saveAlls = jest.spyOn(kapija.payloads, 'saveAll');
    try {
      const answers = await Promise.all(Array.from({ length: 16 }, () => token({ grant_type: 'client_credentials' })));
      expect(answers.map((a) => a.status)).toEqual(Array(16).fill(200));
      const values = answers.map((a) => a.body.access_token!);
      expect(new Set(values).size).toBe(16);
      // Each token written exactly once, alone or with others.
      const written = [
        ...upserts.mock.calls.filter((c) => c[0] === 'ClientCredentials').map((c) => c[1]),
        ...saveAlls.mock.calls.flatMap((c) => c[0].filter((s) => s.model === 'ClientCredentials').map((s) => s.id)),
      ];
      expect(written.sort()).toEqual([...values].sort());
      for (const v of values) expect((await post('/token/introspection', { token: v })).body.active).toBe(true);
    } finally {
      upserts.mockRestore();
      saveAlls.mockRestore();
    }
  });

  test('a write that fails fails every request in it with 503, and no token is valid', async () => {
    const { kapija, token } = await testService(server, { grant_types: ['client_credentials'], response_types: [] });
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
    const upserts = jest.spyOn(kapija.payloads, 'upsert').mockRejectedValue(lost);
    const saveAlls = jest.spyOn(kapija.payloads, 'saveAll').mockRejectedValue(lost);
    let answers;
    try {
      answers = await Promise.all(Array.from({ length: 4 }, () => token({ grant_type: 'client_credentials' })));
    } finally {
      upserts.mockRestore();
      saveAlls.mockRestore();
    }
    expect(answers.map((a) => a.status)).toEqual([503, 503, 503, 503]);
    for (const a of answers) expect(a.body.access_token).toBeUndefined();
    // And the next request is served as usual.
    expect((await token({ grant_type: 'client_credentials' })).status).toBe(200);
  });
});
