/**
 * Outgoing mail through nodemailer. With `SMTP_URL` every message goes to that relay. Without it,
 * in development and test, each message is written as an `.eml` file under `<DATA_DIR>/outbox/` and
 * only its path is logged (never the recipient or the content). In production without `SMTP_URL`
 * mail is switched off: the self-service pages that need it say so, and nothing is written to disk.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { Config } from '../config.js';

export interface OutgoingMail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** Content-Language of the message. */
  readonly language: string;
  /** What it is (`new_device`, `reset_password`, …), for logs; not sent. */
  readonly kind?: string;
  /** The account it is about, so that its deletion drops it from the queue; not sent. */
  readonly accountId?: string | undefined;
}

export interface Mailer {
  /** `smtp` (a relay), `outbox` (.eml files, development and test) or `disabled` (production without SMTP_URL). */
  readonly mode: 'smtp' | 'outbox' | 'disabled';
  /** Sends one message. @throws when the relay refuses it or the outbox cannot be written. */
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

export function createMailer(deps: { config: Pick<Config, 'mail' | 'env' | 'dataDir'>; logger: Logger }): Mailer {
  const { config, logger } = deps;
  const { smtpUrl, from } = config.mail;
  const mode: Mailer['mode'] = smtpUrl ? 'smtp' : config.env === 'production' ? 'disabled' : 'outbox';
  if (mode === 'disabled') logger.warn('SMTP_URL is not set: Kapija sends no mail, so registration, password reset and security notices are off');
  const transport = smtpUrl
    ? nodemailer.createTransport(smtpUrl)
    : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  const outbox = path.join(config.dataDir, 'outbox');

  return {
    mode,
    async send(mail) {
      if (mode === 'disabled') return;
      const message = {
        from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        headers: { 'Content-Language': mail.language, 'Auto-Submitted': 'auto-generated' },
      };
      if (mode === 'smtp') {
        await transport.sendMail(message);
        return;
      }
      const info = (await transport.sendMail(message)) as { message: Buffer };
      await fs.mkdir(outbox, { recursive: true, mode: 0o700 });
      const file = path.join(outbox, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`);
      await fs.writeFile(file, info.message, { mode: 0o600 });
      logger.info({ path: file }, 'mail written to the development outbox');
    },
    close() {
      transport.close();
    },
  };
}
