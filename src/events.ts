/**
 * Kapija's domain events: what happened, for whoever records it (the citizen's ledger, the audit
 * trail, metrics, open-data statistics). Emitters do not know their listeners; a listener's failure
 * is logged and never breaks the request that emitted.
 */
import type { Logger } from 'pino';
import type { Locale } from './config.js';

export interface KapijaEvents {
  /** A citizen finished signing in to a service (login handed to the engine). */
  'signin.success': {
    accountId: string; clientId: string; acr: string; amr: readonly string[]; ip: string; userAgent: string;
    /** Keyed hash of the browser's long-lived `kapija.device` cookie (never the cookie itself). */
    deviceId?: string;
  };
  /** The password was changed: by a reset link (every session was ended) or in the account portal (every other one was). */
  'account.password_changed': { accountId: string; via: 'reset' | 'portal'; ip: string };
  /** A new e-mail address was verified and replaced the old one. */
  'account.email_changed': { accountId: string; ip: string };
  /** A self-registered account verified its e-mail address and became active. */
  'account.registered': { accountId: string; ip: string };
  /** "This wasn't me": every session, grant and token of the account was ended. */
  'account.secured': { accountId: string; sessions: number; grants: number; ip: string };
  /**
   * A sign-in step failed. `factor` is the step: a registered factor's id (factors/registry.ts), or
   * `passkey` for a passkey offered on the sign-in page; no secret is ever carried.
   */
  'signin.failure': { accountId?: string; clientId: string; factor: string; reason: string; ip: string };
  /** A second factor (its registered id: totp, webauthn, recovery, …) was added to an account. */
  'factor.enrolled': { accountId: string; type: string; ip: string };
  /** A recovery code was used. */
  'factor.recovery_used': { accountId: string; remaining: number; ip: string };
  /** Personal data left Kapija for a service: which claims, through which channel. */
  'data.released': {
    accountId: string; clientId: string; claims: readonly string[]; channel: 'id_token' | 'userinfo' | 'introspection';
    /** Already in the citizen's ledger: written in one step with the tokens that carried it. */
    recorded?: boolean;
  };
  /** A second factor was removed from an account. */
  'factor.removed': { accountId: string; type: string; ip: string };
  /** The citizen withdrew a service's consent (its grants and tokens are gone). */
  'consent.revoked': { accountId: string; clientId: string };
  /** A back-channel logout that failed was kept for later (`queued`), tried again and failed (`retry`), got through (`delivered`) or was given up (`abandoned`). */
  'logout.delivery': { clientId: string; outcome: 'queued' | 'retry' | 'delivered' | 'abandoned' };
  /** The account was deleted: personal data erased, sessions and grants ended. */
  'account.deleted': { accountId: string };
  /** A service asked the citizen to confirm it is them (CIBA); the request waits in the portal. */
  'ciba.requested': { accountId: string; clientId: string; serviceNames: Readonly<Record<Locale, string>> };
  /** Kapija's PID was issued to a wallet (`portal` or `desk`); the citizen is told by mail. */
  'wallet.pid_issued': { accountId: string; clientId: string; channel: 'portal' | 'desk'; walletNames: Readonly<Record<Locale, string>> };
  /** The citizen allowed a service scopes and claims (`refused`: the claims refused to it). */
  'consent.given': { accountId: string; clientId: string; scopes: readonly string[]; claims: readonly string[]; refused?: readonly string[] };
}

export type EventName = keyof KapijaEvents;
type Listener<E extends EventName> = (payload: KapijaEvents[E] & { at: Date }) => unknown;

export interface EventBus {
  emit<E extends EventName>(name: E, payload: KapijaEvents[E]): Promise<void>;
  on<E extends EventName>(name: E, listener: Listener<E>): void;
}

export function createEventBus(logger: Logger): EventBus {
  const listeners = new Map<EventName, Listener<never>[]>();
  return {
    on(name, listener) {
      listeners.set(name, [...(listeners.get(name) ?? []), listener as Listener<never>]);
    },
    async emit(name, payload) {
      const at = new Date();
      await Promise.all(
        (listeners.get(name) ?? []).map(async (l) => {
          try {
            await (l as Listener<typeof name>)({ ...payload, at });
          } catch (err) {
            logger.error({ err, event: name }, 'event listener failed');
          }
        }),
      );
    },
  };
}
