/**
 * The logger masks secrets and personal data before anything reaches the stream.
 */
import { createLogger } from '../../../src/security/redact.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (s: string) => void lines.push(s) });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const SECRETS = [
  'hunter2-password',
  'new-password-value',
  'otp-123456',
  'client-secret-xyz',
  'opaque-access-token',
  'refresh-token-value',
  'eyJhbGciOi.id.token',
  'Bearer abc.def',
  'sid=session-cookie',
  'kapija.csrf=csrf-cookie',
  'marko@example.rs',
  'jelena@example.rs',
  'marko.markovic',
  'Марко',
  'Марковић',
  '1990-05-17',
]

describe('createLogger redaction', () => {
  it('masks passwords, tokens, cookies and personal data at the top level and one level down', () => {
    const { logger, lines, records } = capture();
    logger.info(
      {
        password: 'hunter2-password',
        email: 'marko@example.rs',
        token: 'opaque-access-token',
        client_secret: 'client-secret-xyz',
        body: { newPassword: 'new-password-value', code: 'otp-123456', refresh_token: 'refresh-token-value' },
        tokens: { id_token: 'eyJhbGciOi.id.token', access_token: 'opaque-access-token' },
        user: { email: 'jelena@example.rs', username: 'marko.markovic' },
        given_name: 'Марко',
        claims: { given_name: 'Марко', family_name: 'Марковић', birthdate: '1990-05-17' },
        req: { method: 'POST', url: '/token', headers: { authorization: 'Bearer abc.def', cookie: 'sid=session-cookie' } },
        res: { headers: { 'set-cookie': 'kapija.csrf=csrf-cookie' } },
        clientId: 'rp-visible',
      },
      'request',
    );

    expect(lines).toHaveLength(1);
    for (const secret of SECRETS) expect(lines[0]).not.toContain(secret);

    const [record] = records();
    expect(record).toMatchObject({
      msg: 'request',
      service: 'kapija',
      clientId: 'rp-visible',
      password: '[redacted]',
      email: '[redacted]',
      token: '[redacted]',
      client_secret: '[redacted]',
      body: { newPassword: '[redacted]', code: '[redacted]', refresh_token: '[redacted]' },
      tokens: { id_token: '[redacted]', access_token: '[redacted]' },
      user: { email: '[redacted]', username: '[redacted]' },
      given_name: '[redacted]',
      claims: { given_name: '[redacted]', family_name: '[redacted]', birthdate: '[redacted]' },
      req: { method: 'POST', url: '/token', headers: { authorization: '[redacted]', cookie: '[redacted]' } },
      res: { headers: { 'set-cookie': '[redacted]' } },
    });
  });

  it('masks what certificate sign-in handles: the JMBG and names from the certificate, the proxy’s headers', () => {
    const { logger, lines, records } = capture();
    logger.info(
      {
        identity: { jmbg: '0101990710008', givenName: 'Петар', surname: 'Петровић', commonName: 'Петар Петровић', serial: 'ABC1' },
        req: { headers: { 'x-kapija-proxy-secret': 'the-proxy-secret', 'x-kapija-client-cert': '-----BEGIN%20CERTIFICATE-----' } },
      },
      'certificate',
    );
    for (const secret of ['0101990710008', 'Петар', 'Петровић', 'the-proxy-secret', 'BEGIN%20CERTIFICATE']) expect(lines[0]).not.toContain(secret);
    expect(records()[0]).toMatchObject({ identity: { jmbg: '[redacted]', serial: 'ABC1' }, req: { headers: { 'x-kapija-proxy-secret': '[redacted]' } } });
  });

  it('keeps fields that are not sensitive', () => {
    const { logger, records } = capture();
    logger.warn({ route: 'token', status: 400, error: 'invalid_grant' }, 'refused');
    expect(records()[0]).toMatchObject({ level: 40, route: 'token', status: 400, error: 'invalid_grant', msg: 'refused' });
  });

  it('serialises errors with their message and stack', () => {
    const { logger, records } = capture();
    logger.error({ err: new Error('boom') }, 'failed');
    expect(records()[0]).toMatchObject({ err: { type: 'Error', message: 'boom', stack: expect.stringContaining('Error: boom') } });
  });

  it('writes nothing below its level', () => {
    const { logger, lines } = capture('silent');
    logger.error({ password: 'x' }, 'never');
    expect(lines).toEqual([]);
    const warnOnly = capture('warn');
    warnOnly.logger.info('hidden');
    warnOnly.logger.warn('shown');
    expect(warnOnly.records().map((r) => r.msg)).toEqual(['shown']);
  });
});
