/**
 * The development outbox: with no SMTP_URL outside production, each mail becomes an .eml file in
 * <DATA_DIR>/outbox and the log line carries its path and nothing personal. In production without
 * SMTP_URL, nothing is written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/security/redact.js';
import { createMailer } from '../../../src/mail/mailer.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: createLogger('info', stream as never) };
}

const mail = { to: 'ana.jovanovic@example.rs', subject: 'Потврдите адресу', text: 'Здраво Ана\nhttps://kapija.test/verify-email?token=secret-token', html: '<p>Здраво</p>', language: 'sr-Cyrl' };

it('writes an .eml file to the outbox and logs only its path', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-outbox-'));
  const { lines, logger } = capture();
  const mailer = createMailer({ config: { env: 'development', dataDir, mail: { smtpUrl: undefined, from: 'Kapija <no-reply@kapija.test>' } }, logger });
  expect(mailer.mode).toBe('outbox');
  await mailer.send(mail);
  const files = fs.readdirSync(path.join(dataDir, 'outbox'));
  expect(files).toHaveLength(1);
  expect(files[0]).toMatch(/\.eml$/);
  const eml = fs.readFileSync(path.join(dataDir, 'outbox', files[0]!), 'utf8');
  expect(eml).toMatch(/^To: ana\.jovanovic@example\.rs$/m);
  expect(eml).toMatch(/^Content-Language: sr-Cyrl$/m);
  expect(eml).toMatch(/^From: Kapija <no-reply@kapija\.test>$/m);
  const log = lines.join('');
  expect(log).toContain(path.join(dataDir, 'outbox', files[0]!));
  expect(log).not.toMatch(/ana\.jovanovic|secret-token|Ана|Потврдите/);
  mailer.close();
});

it('writes nothing in production without SMTP_URL', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kapija-outbox-'));
  const { logger } = capture();
  const mailer = createMailer({ config: { env: 'production', dataDir, mail: { smtpUrl: undefined, from: 'x <x@x.rs>' } }, logger });
  expect(mailer.mode).toBe('disabled');
  await mailer.send(mail);
  expect(fs.existsSync(path.join(dataDir, 'outbox'))).toBe(false);
});
