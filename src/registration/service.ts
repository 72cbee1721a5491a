/**
 * Registration, e-mail verification and change; with recovery (recovery/service.ts) and the
 * security notices (notices/) it makes the service the portal and the sign-in pages use.
 *
 * Enumeration: registration requests give the same answer whether or not the username or address
 * exists; what differs is only the mail, which goes to the address's owner (an address already in
 * use gets "someone tried to register with your address", a taken username gets "choose another
 * username"). Mails are sent after the answer, so timing does not tell either.
 */
import type { Locale } from '../config.js';
import type { Account } from '../store/accounts.js';
import { listenForNotices } from '../notices/index.js';
import { createRecoveryService } from '../recovery/service.js';
import { STALE_PENDING_MS, TTL, createAccountLinks, type AccountLinks, type RegistrationAndRecoveryDeps } from './links.js';

export { SUSPECT_MARGIN_MS, TTL, type ForgettingMailer, type RegistrationAndRecoveryDeps } from './links.js';
export type { SecureReceipt } from '../recovery/service.js';

export interface RegistrationInput {
  username: string;
  email: string;
  givenName: string;
  familyName: string;
  password: string;
}

export function createRegistrationService(links: AccountLinks, deps: RegistrationAndRecoveryDeps) {
  const { accounts, tokens, passwords, events } = deps;
  const { hash, link, when, issue, sendLater, notify, holders, usable } = links;
  return {
    /** Creates a pending account (or mails the owner of a taken username or address). Same outcome for the caller either way. */
    async register(input: RegistrationInput, opts: { locale: Locale; returnUid?: string | undefined }): Promise<void> {
      const passwordHash = await passwords.hash(input.password);
      const email = input.email.trim();
      if ((await holders(email)).length > 0) {
        sendLater(email, 'already_registered', opts.locale, { link: link('/recover') });
        return;
      }
      // An unverified registration holds its username only for a while (and its address not at all).
      await accounts.deleteStalePending(input.username, Date.now() - STALE_PENDING_MS);
      let account: Account | undefined;
      if (!(await accounts.findByUsername(input.username))) {
        try {
          account = await accounts.create(
            { username: input.username, email, emailVerified: false, givenName: input.givenName, familyName: input.familyName, locale: opts.locale, status: 'pending' },
            passwordHash,
          );
        } catch {
          account = undefined; // taken a moment ago: the unique key decided
        }
      }
      // The address is not verified yet: no text chosen by whoever registered (name, username) goes into its mail.
      if (!account) {
        sendLater(email, 'username_taken', opts.locale, { link: link('/register') });
        return;
      }
      const data: Record<string, string> = { email };
      if (opts.returnUid) data.returnUid = opts.returnUid;
      const token = await issue(account.id, 'verify_email', TTL.verifyEmail, data);
      sendLater(email, 'verify_email', opts.locale, { link: link('/verify-email', token) }, account.id);
    },

    /**
     * Starts a change of e-mail address: the new address gets a verification link; the old one stays
     * until the link is followed (then it gets a notice). For the account portal (`/account/email`).
     */
    async requestEmailChange(accountId: string, newEmail: string, locale: Locale): Promise<void> {
      const account = usable(await accounts.findById(accountId), 'active');
      if (!account) return;
      const email = newEmail.trim();
      const others = (await holders(email)).filter((a) => a.id !== accountId);
      if (others.length > 0) {
        sendLater(email, 'already_registered', locale, { link: link('/recover') });
        return;
      }
      await tokens.revokeAll(accountId, 'change_email');
      const token = await issue(accountId, 'change_email', TTL.changeEmail, { email });
      // Not verified yet: the account's own texts (name, username) stay out of this mail.
      sendLater(email, 'change_email', locale, { link: link('/verify-email', token) }, accountId);
    },

    /** Whether a verification link is live, without using it (GET shows a button; POST uses it). */
    async verificationPending(token: string): Promise<boolean> {
      const live = (await tokens.peek(hash(token), 'verify_email')) ?? (await tokens.peek(hash(token), 'change_email'));
      if (!live) return false;
      return Boolean(usable(await accounts.findById(live.accountId), live.purpose === 'verify_email' ? 'pending' : 'active'));
    },

    /**
     * Completes a registration or an e-mail change.
     * @returns what was verified, or undefined for a used, expired or unknown link.
     */
    async verifyEmail(token: string, ip: string): Promise<{ kind: 'registration' | 'change'; returnUid?: string | undefined } | undefined> {
      const registration = await tokens.consume(hash(token), 'verify_email');
      if (registration) {
        const account = usable(await accounts.findById(registration.accountId), 'pending');
        if (!account || !registration.data.email) return undefined;
        if ((await holders(registration.data.email)).some((a) => a.id !== account.id)) return undefined;
        await accounts.setVerifiedEmail(account.id, registration.data.email);
        await events.emit('account.registered', { accountId: account.id, ip });
        return { kind: 'registration', returnUid: registration.data.returnUid };
      }
      const change = await tokens.consume(hash(token), 'change_email');
      if (!change?.data.email) return undefined;
      // A deleted, locked or disabled account takes no address, whatever link is followed.
      const account = usable(await accounts.findById(change.accountId), 'active');
      if (!account) return undefined;
      if ((await holders(change.data.email)).some((a) => a.id !== account.id)) return undefined;
      const previous = account.emailVerified ? account.email : null;
      await accounts.setVerifiedEmail(account.id, change.data.email);
      await events.emit('account.email_changed', { accountId: account.id, ip });
      if (previous && previous.toLowerCase() !== change.data.email.toLowerCase()) {
        await notify(account.id, 'email_changed', (l) => ({ when: when(l) }), new Date(), previous);
      }
      return { kind: 'change' };
    },

  };
}

export function createRegistrationAndRecovery(deps: RegistrationAndRecoveryDeps) {
  const { accounts, tokens, mailer } = deps;
  const links = createAccountLinks(deps);
  return {
    mailAvailable: () => mailer.mode !== 'disabled',

    /** A moment as the citizen reads it (Belgrade time, their language). */
    formatWhen: (locale: Locale, at: Date) => links.when(locale, at),

    /** Deletes expired link hashes (with the other expired rows, by Kapija's purge job). */
    purgeExpired: async () => (await tokens.purgeExpired()) + (await accounts.purgeStalePending(Date.now() - STALE_PENDING_MS)),

    ...createRegistrationService(links, deps),
    ...createRecoveryService(links, deps),

    /**
     * Makes every link of an account useless and drops its queued mail (account deletion): a link
     * followed afterwards does nothing, and no message about the account goes out any more.
     */
    async forget(accountId: string): Promise<void> {
      await tokens.revokeAllOfAccount(accountId);
      await mailer.forget(accountId);
    },

    /** Subscribes the security notices to the event bus. */
    listen: () => listenForNotices(links, deps),
  };
}

export type RegistrationAndRecovery = ReturnType<typeof createRegistrationAndRecovery>;
