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

test.each(['/.well-known/openid-configuration', '/jwks'])(
  '%s: a strong ETag and public caching; If-None-Match gets 304, and the ETag follows the keys',
  async (path) => {
    const first = await fetch(`${server.url}${path}`);
    const body = await first.text();
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/); // strong: no W/ prefix
    expect(first.headers.get('cache-control')).toBe('public, max-age=300');
    const again = await fetch(`${server.url}${path}`);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe(body);

    const notModified = await fetch(`${server.url}${path}`, { headers: { 'if-none-match': etag! } });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe('');
    expect(notModified.headers.get('etag')).toBe(etag);
    expect(notModified.headers.get('cache-control')).toBe('public, max-age=300');
    // A tag among others, or its weak form, matches too (If-None-Match compares weakly).
    expect((await fetch(`${server.url}${path}`, { headers: { 'if-none-match': `"other", W/${etag}` } })).status).toBe(304);
    const other = await fetch(`${server.url}${path}`, { headers: { 'if-none-match': '"other"' } });
    expect(other.status).toBe(200);
    expect(await other.text()).toBe(body);

    await server.kapija.keys.rotateSigning();
    expect(await server.kapija.refreshKeys()).toBe(true);
    const rotated = await fetch(`${server.url}${path}`);
    const rotatedBody = await rotated.text();
    const rotatedEtag = rotated.headers.get('etag');
    expect(rotatedEtag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    // JWKS changes with the keys, so its ETag does: a client's cached copy gets the new document.
    // Discovery names no key, so its ETag stays exactly as long as its bytes do.
    if (path === '/jwks') expect(rotatedBody).not.toBe(body);
    expect(rotatedEtag === etag).toBe(rotatedBody === body);
    const withOldTag = await fetch(`${server.url}${path}`, { headers: { 'if-none-match': etag! } });
    expect(withOldTag.status).toBe(rotatedBody === body ? 304 : 200);
    if (rotatedBody !== body) expect(await withOldTag.text()).toBe(rotatedBody);
    expect((await fetch(`${server.url}${path}`, { headers: { 'if-none-match': rotatedEtag! } })).status).toBe(304);
  },
);
