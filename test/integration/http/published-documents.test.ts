/**
 * Discovery and JWKS are kept per engine: the kept answer must be the engine's own (body, type,
 * CORS), and a browser's cross-origin request still gets the engine's answer for its origin.
 */
import { kapijaForSuite } from '../../support/kapija.js';

const server = kapijaForSuite();

test.each([
  ['/.well-known/openid-configuration', 'application/json; charset=utf-8'],
  ['/jwks', 'application/jwk-set+json; charset=utf-8'],
])('%s: the kept answer is the engine’s, and an Origin gets its own CORS answer', async (path, type) => {
  const first = await fetch(`${server.url}${path}`);
  const kept = await fetch(`${server.url}${path}`);
  const firstBody = await first.text();
  const keptBody = await kept.text();
  expect(JSON.parse(firstBody)).toHaveProperty(path === '/jwks' ? 'keys' : 'issuer');
  expect(keptBody).toBe(firstBody);
  for (const res of [first, kept]) {
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(type);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('vary')).toMatch(/Origin/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  }
  const cors = await fetch(`${server.url}${path}`, { headers: { origin: 'https://portal.example.rs' } });
  expect(cors.headers.get('access-control-allow-origin')).toBe('https://portal.example.rs');
  expect(await cors.text()).toBe(firstBody);
});
