/**
 * Error classification: database-unreachable errors become 503 (retryable), everything else does not.
 */
import { KapijaError, assertThat, isUnavailableError } from '../../src/errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isUnavailableError', () => {
  it.each([
    ['connection refused', withCode('ECONNREFUSED')],
    ['connection reset', withCode('ECONNRESET')],
    ['timeout', withCode('ETIMEDOUT')],
    ['DNS failure', withCode('ENOTFOUND')],
    ['PostgreSQL admin shutdown', withCode('57P01')],
    ['PostgreSQL starting up', withCode('57P03')],
    ['too many connections', withCode('53300')],
    ['connection failure class 08', withCode('08006')],
    ['SQLite busy', withCode('SQLITE_BUSY')],
    ['knex pool timeout', Object.assign(new Error('Knex: Timeout acquiring a connection'), { name: 'KnexTimeoutError' })],
    ['pg connection terminated', new Error('Connection terminated unexpectedly')],
    ['pg client connection error', new Error('Client has encountered a connection error and is not queryable')],
    ['a wrapped cause', new Error('query failed', { cause: withCode('ECONNREFUSED') })],
    ['a doubly wrapped cause', new Error('a', { cause: new Error('b', { cause: withCode('57P01') }) })],
  ])('true for %s', (_name, err) => {
    expect(isUnavailableError(err)).toBe(true);
  });

  it.each([
    ['a plain error', new Error('boom')],
    ['a unique violation', withCode('23505')],
    ['a syntax error', withCode('42601')],
    ['SQLite constraint', withCode('SQLITE_CONSTRAINT_UNIQUE')],
    ['a KapijaError', new KapijaError('request.invalid')],
    ['undefined', undefined],
    ['null', null],
    ['a string', 'ECONNREFUSED'],
    ['a numeric code', { code: 57 }],
  ])('false for %s', (_name, err) => {
    expect(isUnavailableError(err)).toBe(false);
  });
});

describe('KapijaError', () => {
  it('carries its code, status and exposure', () => {
    const cause = new Error('inner');
    const err = new KapijaError('login.invalid_credentials', 401, { cause, details: { attempts: 3 } });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('KapijaError');
    expect(err.message).toBe('login.invalid_credentials');
    expect(err.code).toBe('login.invalid_credentials');
    expect(err.status).toBe(401);
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({ attempts: 3 });
    expect(err.expose).toBe(true);
    expect(new KapijaError('server.internal', 500).expose).toBe(false);
    expect(new KapijaError('request.invalid').status).toBe(400);
  });

  it('assertThat throws the code unless the value is truthy', () => {
    expect(() => assertThat({}, 'request.not_found', 404)).not.toThrow();
    expect(() => assertThat(undefined, 'request.not_found', 404)).toThrow(
      expect.objectContaining({ code: 'request.not_found', status: 404 }),
    );
    expect(() => assertThat(0, 'request.invalid')).toThrow(expect.objectContaining({ status: 400 }));
  });
});
