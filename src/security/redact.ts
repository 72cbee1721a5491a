/**
 * The logger, with secrets and personal data masked before anything is written (Logto's
 * `utils/sensitive-data.ts` idea, done by pino's redaction).
 */
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'password', '*.password', 'newPassword', '*.newPassword',
  'code', '*.code', 'otp', '*.otp', 'secret', '*.secret', 'client_secret', '*.client_secret',
  'token', '*.token', 'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'id_token', '*.id_token',
  'authorization', '*.authorization', 'cookie', '*.cookie', 'set-cookie', '*["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
  'res.headers["set-cookie"]',
  'email', '*.email', 'username', '*.username',
  'given_name', '*.given_name', 'family_name', '*.family_name', 'birthdate', '*.birthdate',
  // Certificate sign-in: the citizen's number and names from the eID certificate, and the TLS proxy's secret.
  'jmbg', '*.jmbg', 'givenName', '*.givenName', 'surname', '*.surname', 'commonName', '*.commonName',
  'headers["x-kapija-proxy-secret"]', 'req.headers["x-kapija-proxy-secret"]',
  'headers["x-kapija-client-cert"]', 'req.headers["x-kapija-client-cert"]',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'kapija' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
