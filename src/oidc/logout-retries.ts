/**
 * Back-channel logout that outlasts a service being down. A delivery that fails while a session is
 * ended (by the citizen, an administrator, "this wasn't me", a password change or RP-initiated
 * logout) is kept in the database and tried again with growing pauses, by whichever instance comes
 * first, until the service answers 200/204 or about a day and a half has passed. Each attempt signs
 * a fresh logout token (new `jti`, `iat`), as a token's lifetime is short.
 */
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { EventBus } from '../events.js';
import type { LogoutDeliveryRepository } from '../store/logout-deliveries.js';

/** The pause after the 1st, 2nd, … failed attempt; after the last one Kapija gives up. */
export const LOGOUT_RETRY_DELAYS_MS: readonly number[] = [30_000, 2 * 60_000, 10 * 60_000, 60 * 60_000, 6 * 3_600_000, 24 * 3_600_000];
/** A claimed delivery is hidden from other instances this long (its attempt takes at most seconds). */
const LEASE_MS = 60_000;
const BATCH = 20;

type Client = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

/** Sends one logout token to the client's back-channel endpoint; throws unless it answers 200/204. */
export function sendBackchannelLogout(client: Client, accountId: string, sid: string): Promise<void> {
  // Client#backchannelLogout is what oidc-provider's own end_session uses; the typings omit it.
  return (client as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> }).backchannelLogout(accountId, sid);
}

export interface LogoutTarget {
  readonly clientId: string;
  readonly accountId: string;
  readonly sid: string;
}

export interface LogoutRetries {
  /** A delivery failed `attempts` times already: keep it and try again later. Never throws (a failure to keep it is logged). */
  later(target: LogoutTarget, attempts: number, error: unknown): Promise<void>;
  /** Tries every due delivery once; a call while a run is going joins it. */
  deliverDue(): Promise<{ delivered: number; rescheduled: number; abandoned: number }>;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** The message with its causes ("fetch failed: connect ECONNREFUSED …"), as fetch hides the reason in `cause`. */
const causeOf = (err: unknown): string => {
  const parts: string[] = [];
  for (let e: unknown = err, i = 0; e !== undefined && e !== null && i < 4; e = (e as { cause?: unknown }).cause, i += 1) parts.push(messageOf(e));
  return parts.join(': ');
};

export function createLogoutRetries(deps: { provider: Provider; store: LogoutDeliveryRepository; events: EventBus; logger: Logger; now?: () => number }): LogoutRetries {
  const { provider, store, events, logger } = deps;
  const now = deps.now ?? Date.now;
  let running: ReturnType<LogoutRetries['deliverDue']> | undefined;

  const giveUp = async (id: string, clientId: string, attempts: number, reason: string) => {
    await store.remove(id);
    // The service and the reason only: the account and the session are not logged.
    logger.warn({ clientId, attempts, reason }, 'back-channel logout abandoned');
    await events.emit('logout.delivery', { clientId, outcome: 'abandoned' });
  };

  /** One run over every due row. */
  const deliverAll = async () => {
    const tally = { delivered: 0, rescheduled: 0, abandoned: 0 };
    for (let round = 0; round < 10; round += 1) {
      const at = now();
      const due = await store.claimDue(at, at + LEASE_MS, BATCH);
      await Promise.all(
        due.map(async (d) => {
          const attempts = d.attempts + 1;
          const client = await provider.Client.find(d.clientId);
          if (!client?.backchannelLogoutUri) {
            tally.abandoned += 1;
            return giveUp(d.id, d.clientId, d.attempts, 'the service no longer has a back-channel logout URI');
          }
          try {
            await sendBackchannelLogout(client, d.accountId, d.sid);
          } catch (err) {
            const delay = LOGOUT_RETRY_DELAYS_MS[attempts - 1];
            if (delay === undefined) {
              tally.abandoned += 1;
              return giveUp(d.id, d.clientId, attempts, messageOf(err));
            }
            tally.rescheduled += 1;
            await store.retryAt(d.id, attempts, now() + delay, messageOf(err));
            await events.emit('logout.delivery', { clientId: d.clientId, outcome: 'retry' });
            return;
          }
          tally.delivered += 1;
          await store.remove(d.id);
          logger.info({ clientId: d.clientId, attempts }, 'back-channel logout delivered on retry');
          await events.emit('logout.delivery', { clientId: d.clientId, outcome: 'delivered' });
        }),
      );
      if (due.length < BATCH) break;
    }
    return tally;
  };

  return {
    async later(target, attempts, error) {
      const delay = LOGOUT_RETRY_DELAYS_MS[attempts - 1];
      if (delay === undefined) return;
      try {
        await store.add({ ...target, attempts, error: messageOf(error) }, now() + delay);
      } catch (err) {
        // The session is ended all the same; only the later attempt is lost.
        logger.warn({ clientId: target.clientId, err: { message: messageOf(err) } }, 'back-channel logout retry not kept');
        return;
      }
      // The cause (refused address, timeout, status) and the service: never the account or the session.
      logger.warn({ clientId: target.clientId, attempts, retryInSeconds: delay / 1000, reason: causeOf(error) }, 'back-channel logout failed: will retry');
      await events.emit('logout.delivery', { clientId: target.clientId, outcome: 'queued' });
    },

    deliverDue() {
      running ??= deliverAll().finally(() => {
        running = undefined;
      });
      return running;
    },
  };
}
