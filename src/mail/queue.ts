/**
 * Mail that survives a relay being down or a process stopping. Each message is first kept in the
 * database, sealed with the master key (address, subject and body are personal data), then handed to
 * the relay; once the relay takes it the row goes. What the relay did not take (a connection error,
 * a temporary 4xx answer) is tried again by whichever instance comes first after 1 min, 5 min,
 * 30 min, 2 h and 12 h; a permanent refusal (5xx) is not repeated. Delivery is at least once: a
 * process stopped between the relay's answer and the row's removal sends that message again.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { SecretBox } from '../security/crypto.js';
import type { MailQueueRepository } from '../store/mail-queue.js';
import type { AccountTokenRow } from '../store/account-tokens.js';
import type { Mailer, OutgoingMail } from './mailer.js';

/** The pause after the 1st, 2nd, … failed attempt; after the last one Kapija gives up. */
export const MAIL_RETRY_DELAYS_MS: readonly number[] = [60_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 12 * 3_600_000];
const LEASE_MS = 5 * 60_000;
const BATCH = 20;

/** Keeping a message and the link it carries together: what the first attempt is, once both are stored. */
export interface LinkedMailer {
  /**
   * Keeps `mail` in the queue, written in one go with `link`, the single-use link it carries
   * (neither is ever stored without the other); resolves to its first attempt, for the caller to
   * make when it likes (after the response). With mail switched off neither is kept.
   * @throws when the database does not take them (then neither exists, and nothing is sent)
   */
  keepWithLink(mail: OutgoingMail, link: AccountTokenRow): Promise<() => Promise<void>>;
}

export interface QueuedMailer extends Mailer, LinkedMailer {
  /** Tries every due message once; a call while a run is going joins it (a slow relay never piles runs up). */
  deliverDue(): Promise<{ sent: number; rescheduled: number; abandoned: number }>;
  /** Drops every waiting message about an account (it was deleted); how many. */
  forget(accountId: string): Promise<number>;
}

/** What of an error may be kept and logged: its code and SMTP status, never its text (it may name the recipient). */
function describe(err: unknown): { code: string; permanent: boolean } {
  const e = err as { code?: unknown; responseCode?: unknown };
  const status = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const code = [typeof e.code === 'string' ? e.code : 'ERROR', status].filter(Boolean).join(' ');
  return { code, permanent: status !== undefined && status >= 500 && status < 600 };
}

export function createQueuedMailer(deps: { mailer: Mailer; store: MailQueueRepository; box: SecretBox; logger: Logger; now?: () => number }): QueuedMailer {
  const { mailer, store, box, logger } = deps;
  const now = deps.now ?? Date.now;
  const context = (id: string) => `mail:${id}`;
  let running: ReturnType<QueuedMailer['deliverDue']> | undefined;

  /** One attempt; on failure the row waits for the next, or goes if there is none. */
  const attempt = async (id: string, kind: string, mail: OutgoingMail, attempts: number): Promise<'sent' | 'rescheduled' | 'abandoned'> => {
    try {
      await mailer.send(mail);
    } catch (err) {
      const { code, permanent } = describe(err);
      const delay = permanent ? undefined : MAIL_RETRY_DELAYS_MS[attempts];
      if (delay === undefined) {
        await store.remove(id);
        logger.error({ kind, code, attempts: attempts + 1 }, 'mail not sent: given up');
        return 'abandoned';
      }
      await store.retryAt(id, attempts + 1, now() + delay, code);
      logger.warn({ kind, code, attempts: attempts + 1, retryInSeconds: delay / 1000 }, 'mail not sent: will retry');
      return 'rescheduled';
    }
    await store.remove(id);
    return 'sent';
  };

  /** One run over every due row. */
  const deliverAll = async () => {
    const tally = { sent: 0, rescheduled: 0, abandoned: 0 };
    for (let round = 0; round < 10; round += 1) {
      const at = now();
      const due = await store.claimDue(at, at + LEASE_MS, BATCH);
      for (const m of due) {
        let mail: OutgoingMail;
        try {
          mail = JSON.parse(box.openString(m.message, context(m.id))) as OutgoingMail;
        } catch {
          // Sealed under another master key, or altered: it cannot be sent.
          await store.remove(m.id);
          logger.error({ kind: m.kind }, 'queued mail could not be opened: dropped');
          tally.abandoned += 1;
          continue;
        }
        tally[await attempt(m.id, m.kind, mail, m.attempts)] += 1;
      }
      if (due.length < BATCH) break;
    }
    return tally;
  };

  return {
    mode: mailer.mode,
    close: () => mailer.close(),
    async send(mail) {
      if (mailer.mode === 'disabled') return;
      const id = randomUUID();
      const kind = mail.kind ?? 'mail';
      // Kept before the first attempt: a process that stops now leaves it for another instance.
      try {
        await store.add({ id, kind, accountId: mail.accountId, message: box.seal(JSON.stringify(mail), context(id)) }, now() + MAIL_RETRY_DELAYS_MS[0]!);
      } catch {
        // The database is away: one attempt without a second chance rather than none.
        logger.warn({ kind }, 'mail not kept for retries: sending it once');
        await mailer.send(mail);
        return;
      }
      await attempt(id, kind, mail, 0);
    },
    async keepWithLink(mail, link) {
      if (mailer.mode === 'disabled') return async () => {};
      const id = randomUUID();
      const kind = mail.kind ?? 'mail';
      await store.add({ id, kind, accountId: mail.accountId, message: box.seal(JSON.stringify(mail), context(id)) }, now() + MAIL_RETRY_DELAYS_MS[0]!, link);
      return async () => {
        await attempt(id, kind, mail, 0);
      };
    },
    forget: (accountId) => store.removeForAccount(accountId),
    deliverDue() {
      running ??= deliverAll().finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}
