/**
 * The one guard for request bodies: a zod failure is a 400 naming the first wrong field; a page's
 * form field is its string, or '' when it is absent, repeated or not text.
 */
import { z } from 'zod';
import { KapijaError } from '../../../src/errors.js';
import { formString, parseWith } from '../../../src/http/guard.js';

test('a failure is request.invalid, 400, with the field at fault', () => {
  const schema = z.object({ client: z.object({ id: z.string().min(3) }) });
  let thrown: unknown;
  try {
    parseWith(schema, { client: { id: 'x' } });
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(KapijaError);
  expect(thrown).toMatchObject({ code: 'request.invalid', status: 400, details: { field: 'client.id' } });
  expect(parseWith(schema, { client: { id: 'abc' } })).toEqual({ client: { id: 'abc' } });
});

test("a form field is its string, else ''", () => {
  const form = z.object({ username: formString, token: formString });
  expect(parseWith(form, { username: 'ana', _csrf: 'kept out' })).toEqual({ username: 'ana', token: '' });
  expect(parseWith(form, { username: ['a', 'b'], token: { nested: 1 } })).toEqual({ username: '', token: '' });
});
