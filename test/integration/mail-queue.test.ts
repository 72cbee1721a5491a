/**
 * Mail outlasts a relay that is down (mail/queue.ts): every message is kept sealed in the database
 * before it is handed to the relay; what the relay does not take yet is tried again later, by any
 * instance; a permanent refusal is not repeated; nothing of the message is readable in the table
 * or the logs.
 */
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { startSmtp, type TestSmtp } from '../support/smtp.js';
import { createTestAccount, kapijaForSuite } from '../support/kapija.js';
import { stores } from '../support/databases.js';
import { createQueuedMailer, MAIL_RETRY_DELAYS_MS } from '../../src/mail/queue.js';
import { createMailQueueRepository } from '../../src/store/mail-queue.js';
import { createSecretBox } from '../../src/security/crypto.js';
import type { Mailer, OutgoingMail } from '../../src/mail/mailer.js';

const SUBJECT_SR = 'Лозинка вашег налога на Капији је промењена';

describe.each(stores())('on %s', (store) => {
  let smtp: TestSmtp;
  const logLines: string[] = [];
  beforeAll(async () => {
    smtp = await startSmtp();
  });
  const server = kapijaForSuite(() => {
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    return { store, env: { SMTP_URL: smtp.url }, options: { logger } };
  });
  afterAll(async () => {
    await smtp?.close();
  });
  beforeEach(async () => {
    smtp.refuse(undefined);
    await server.kapija.db('mail_queue').delete();
  });

  const rows = () => server.kapija.db('mail_queue').select('kind', 'message', 'attempts', 'next_at', 'last_error');
  const waitForRow = async (match: (r: { attempts: number }) => boolean) => {
    for (let i = 0; i < 100; i += 1) {
      const found = (await rows()).find((r) => match({ attempts: Number(r.attempts) }));
      if (found) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no such row in mail_queue');
  };
  const makeDue = () => server.kapija.db('mail_queue').update({ next_at: 0 });
  const notice = async () => {
    const citizen = await createTestAccount(server.kapija, { email: `red.${randomBytes(4).toString('hex')}@example.rs` });
    await server.kapija.events.emit('account.password_changed', { accountId: citizen.account.id, via: 'portal', ip: '127.0.0.1' });
    return citizen.account.email!;
  };

  test('a notice the relay refuses for now is kept sealed and sent once the relay takes it', async () => {
    smtp.refuse(451);
    const address = await notice();
    const kept = await waitForRow((r) => r.attempts === 1);
    expect(kept.kind).toBe('password_changed');
    expect(kept.last_error).toMatch(/451/);
    // Sealed: neither the address, nor the subject, nor the body is readable in the table.
    expect(kept.message).not.toContain(address);
    expect(kept.message).not.toContain('Лозинка');
    expect(kept.message).not.toMatch(/not-me/);
    expect(Number(kept.next_at)).toBeGreaterThan(Date.now() + MAIL_RETRY_DELAYS_MS[0]! - 5_000);
    expect(await server.kapija.metrics.registry.getSingleMetricAsString('kapija_retry_queue_pending')).toContain('kapija_retry_queue_pending{queue="mail"} 1');

    expect(await server.kapija.deliverMail()).toEqual({ sent: 0, rescheduled: 0, abandoned: 0 });
    await makeDue();
    expect(await server.kapija.deliverMail()).toEqual({ sent: 0, rescheduled: 1, abandoned: 0 });
    expect((await rows())[0]!.attempts).toBe(2);
    expect(smtp.to(address)).toHaveLength(0);

    smtp.refuse(undefined);
    await makeDue();
    expect(await server.kapija.deliverMail()).toEqual({ sent: 1, rescheduled: 0, abandoned: 0 });
    expect(await rows()).toEqual([]);
    expect(await server.kapija.metrics.registry.getSingleMetricAsString('kapija_retry_queue_pending')).toContain('kapija_retry_queue_pending{queue="mail"} 0');
    const mails = smtp.to(address);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toBe(SUBJECT_SR);
    expect(mails[0]!.text).toContain('/not-me?token=');
    // The logs name the kind and the SMTP status, never the address.
    const logged = logLines.filter((l) => l.includes('mail not sent'));
    expect(logged.length).toBeGreaterThanOrEqual(2);
    for (const l of logLines) expect(l).not.toContain(address);
  });

  test('a permanent refusal is not repeated', async () => {
    smtp.refuse(550);
    const address = await notice();
    for (let i = 0; i < 100 && !logLines.some((l) => l.includes('given up')); i += 1) await new Promise((r) => setTimeout(r, 50));
    expect(logLines.some((l) => l.includes('given up') && l.includes('550'))).toBe(true);
    expect(await rows()).toEqual([]);
    smtp.refuse(undefined);
    await makeDue();
    expect(await server.kapija.deliverMail()).toEqual({ sent: 0, rescheduled: 0, abandoned: 0 });
    expect(smtp.to(address)).toHaveLength(0);
  });

  test('what one instance kept, another sends; the last pause ends the attempts', async () => {
    const box = createSecretBox(randomBytes(32));
    const queue = createMailQueueRepository(server.kapija.db);
    const logger = pino({ level: 'silent' });
    const sent: OutgoingMail[] = [];
    let down = true;
    const relay: Mailer = {
      mode: 'smtp',
      close: () => undefined,
      async send(mail) {
        if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25'), { code: 'ESOCKET' });
        sent.push(mail);
      },
    };
    const first = createQueuedMailer({ mailer: relay, store: queue, box, logger });
    const mail = { to: 'a@example.rs', subject: 'S', text: 'T', html: '<p>T</p>', language: 'en', kind: 'new_device' };
    await first.send(mail);
    expect((await rows())[0]).toMatchObject({ kind: 'new_device', attempts: 1, last_error: 'ESOCKET' });
    // Another instance (same master key) after the relay came back.
    down = false;
    await makeDue();
    const second = createQueuedMailer({ mailer: relay, store: queue, box, logger });
    // Two timer ticks at once join one run: the message goes once.
    const [x, y] = await Promise.all([second.deliverDue(), second.deliverDue()]);
    expect(x).toBe(y);
    expect(x).toEqual({ sent: 1, rescheduled: 0, abandoned: 0 });
    expect(sent).toEqual([mail]);
    // Down again, at the last attempt: given up.
    down = true;
    await first.send(mail);
    await server.kapija.db('mail_queue').update({ attempts: MAIL_RETRY_DELAYS_MS.length, next_at: 0 });
    expect(await second.deliverDue()).toEqual({ sent: 0, rescheduled: 0, abandoned: 1 });
    expect(await rows()).toEqual([]);
    // Sealed under another master key: cannot be opened, so it is dropped rather than tried forever.
    await first.send(mail);
    await makeDue();
    const stranger = createQueuedMailer({ mailer: relay, store: queue, box: createSecretBox(randomBytes(32)), logger });
    down = false;
    expect(await stranger.deliverDue()).toEqual({ sent: 0, rescheduled: 0, abandoned: 1 });
    expect(sent).toHaveLength(1);
  });
});

test('with the database away a message is still tried once, and a kept-for-retry failure never escapes', async () => {
  const sent: OutgoingMail[] = [];
  const relay: Mailer = { mode: 'smtp', close: () => undefined, send: async (m) => void sent.push(m) };
  const away = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
  const store = { add: away, claimDue: away, retryAt: away, remove: away, removeForAccount: away };
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const queued = createQueuedMailer({ mailer: relay, store, box: createSecretBox(randomBytes(32)), logger });
  const mail = { to: 'b@example.rs', subject: 'S', text: 'T', html: '<p>T</p>', language: 'en', kind: 'reset_password' };
  await queued.send(mail);
  expect(sent).toEqual([mail]);
  expect(lines.join('')).toContain('mail not kept for retries');
  expect(lines.join('')).not.toContain('b@example.rs');
});

test('with mail switched off a notice keeps neither its message nor its link', async () => {
  const touched: string[] = [];
  const away = (name: string) => () => {
    touched.push(name);
    return Promise.reject(new Error('not expected'));
  };
  const store = { add: away('add'), claimDue: away('claimDue'), retryAt: away('retryAt'), remove: away('remove'), removeForAccount: away('removeForAccount') };
  const off: Mailer = { mode: 'disabled', close: () => undefined, send: async () => undefined };
  const queued = createQueuedMailer({ mailer: off, store, box: createSecretBox(randomBytes(32)), logger: pino({ level: 'silent' }) });
  const mail = { to: 'c@example.rs', subject: 'S', text: 'T', html: '<p>T</p>', language: 'en', kind: 'new_device' };
  const link = { id: 'l', account_id: 'a', purpose: 'not_me' as const, token_hash: 'h', data: null, created_at: 1, expires_at: 2, used_at: null };
  await (await queued.keepWithLink(mail, link))();
  expect(touched).toEqual([]);
});
