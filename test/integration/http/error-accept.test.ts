/**
 * One Accept rule for every error, oidc-provider's (lib/shared/error_handler.js,
 * `ctx.accepts('json', 'html') === 'html'`): JSON unless the client prefers HTML. A program that
 * sends `*\/*` or no Accept header gets JSON; a browser, which asks for text/html, gets the page.
 * The admin API answers JSON whatever is asked.
 */
import request from 'supertest';
import { kapijaForSuite } from '../../support/kapija.js';

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
/** Accept header sent → whether the answer is the HTML page. */
const CASES: [string, string | undefined, boolean][] = [
  ['*/*', '*/*', false],
  ['text/html', 'text/html', true],
  ["a browser's Accept", BROWSER, true],
  ['application/json', 'application/json', false],
  ['no Accept header', undefined, false],
];

describe('errors answer by the Accept rule', () => {
  const server = kapijaForSuite();
  const get = (path: string, accept: string | undefined) => {
    const req = request(server.url).get(path);
    return accept === undefined ? req.unset('accept') : req.set('accept', accept);
  };
  const expectAnswer = (res: request.Response, html: boolean) => {
    const where = `${res.status} ${res.headers['content-type']}: ${res.text.slice(0, 200)}`;
    if (html) {
      expect({ where, type: res.headers['content-type'] }).toEqual({ where, type: expect.stringMatching(/^text\/html/) });
      expect(res.text).toContain('<main');
    } else {
      expect({ where, type: res.headers['content-type'] }).toEqual({ where, type: expect.stringMatching(/^application\/json/) });
      expect(typeof res.body.error).toBe('string');
      expect(typeof res.body.error_description).toBe('string');
    }
  };

  test.each(CASES)("a page route (Kapija's own pages), %s", async (_name, accept, html) => {
    const res = await get('/nothing/here', accept);
    expect(res.status).toBe(404);
    expectAnswer(res, html);
    if (!html) expect(res.body.error).toBe('request.not_found');
  });

  test.each(CASES)('a form post without its CSRF token (a page route that throws), %s', async (_name, accept, html) => {
    const res = await request(server.url).post('/interaction/unknown-uid/abort').set(accept === undefined ? {} : { accept }).type('form').send({});
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expectAnswer(res, html);
  });

  test.each(CASES)('the admin API answers JSON whatever is asked, %s', async (_name, accept) => {
    const res = await get('/admin/api/clients', accept);
    expect(res.status).toBe(401);
    expectAnswer(res, false);
  });

  test.each(CASES)("an engine route (the engine's own error), %s", async (_name, accept, html) => {
    const res = await get('/auth?client_id=no-such-client&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb', accept);
    expect(res.status).toBe(400);
    expectAnswer(res, html);
    if (!html) expect(res.body.error).toBe('invalid_client');
  });
});
