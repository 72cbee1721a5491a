/**
 * Recovery: a new password by a mailed link, a new second factor after an administrator's reset,
 * and "this wasn't me" (from a security notice), which ends every session, removes what was added
 * in the suspect window and asks for a new password.
 *
 * Enumeration: a reset request gives the same answer whether or not the name or address exists;
 * the mail goes after the answer, so timing does not tell either.
 */
import type { Account } from '../store/accounts.js';
import type { CredentialType } from '../store/credentials.js';
import type { LogoutDelivery } from '../oidc/sessions.js';
import type { Locale } from '../config.js';
import { translator, type MessageKey } from '../i18n/index.js';
import { TTL, type AccountLinks, type RegistrationAndRecoveryDeps } from '../registration/links.js';

export interface SecureReceipt {
  readonly sessions: number;
  readonly grants: number;
  readonly deliveries: LogoutDelivery[];
  /** Second factors removed (added in the suspect window), by type; recovery codes counted one each. */
  readonly removed: { type: CredentialType; name: string | null }[];
  /** Start of the suspect window. */
  readonly since: Date;
  /** The address the link for a new password went to (none when the account has no address). */
  readonly resetSent: boolean;
}

export function createRecoveryService(links: AccountLinks, deps: RegistrationAndRecoveryDeps) {
  const { accounts, tokens, credentials, passwords, events } = deps;
  const { hash, link, localeOf, when, issue, sendLater, endEverything, holders, usable, suspectFactors } = links;
  const recovery = {
    /** Mails a reset link when `identifier` (username or e-mail) names an account with an address. Same outcome either way. */
    async requestPasswordReset(identifier: string, opts: { locale: Locale; returnUid?: string | undefined }): Promise<void> {
      const id = identifier.trim();
      const candidates = id.includes('@') ? await holders(id) : [];
      const account = candidates.length === 1 ? candidates[0] : await accounts.findByUsername(id);
      // Only for a usable account (a pending one registers again: its address was never verified).
      if (!account?.email || account.status !== 'active') return;
      await tokens.revokeAll(account.id, 'reset_password');
      const data: Record<string, string> = {};
      if (opts.returnUid) data.returnUid = opts.returnUid;
      const token = await issue(account.id, 'reset_password', TTL.resetPassword, data);
      sendLater(account.email, 'reset_password', localeOf(account, opts.locale), {
        name: account.givenName,
        link: link('/recover/reset', token),
        minutes: TTL.resetPassword / 60,
        values: { username: account.username },
      }, account.id);
    },

    /** The account a live reset link is for (GET shows the form), or undefined. */
    async resetTarget(token: string): Promise<Account | undefined> {
      const live = await tokens.peek(hash(token), 'reset_password');
      return live ? usable(await accounts.findById(live.accountId), 'active') : undefined;
    },

    /**
     * Sets a new password through a reset link, then ends every session and grant.
     * The caller has checked the password against the policy.
     */
    async resetPassword(token: string, password: string, ip: string): Promise<{ returnUid?: string | undefined } | undefined> {
      const used = await tokens.consume(hash(token), 'reset_password');
      if (!used) return undefined;
      await accounts.setPasswordHash(used.accountId, await passwords.hash(password));
      await tokens.revokeAll(used.accountId, 'reset_password');
      await endEverything(used.accountId);
      await events.emit('account.password_changed', { accountId: used.accountId, via: 'reset', ip });
      return { returnUid: used.data.returnUid };
    },

    /**
     * After an administrator removed the second factors: mails the citizen, in the account's
     * language, the single-use link to enrol a new one (earlier such links stop working).
     */
    async sendReenrolLink(accountId: string): Promise<void> {
      const account = await accounts.findById(accountId);
      if (!account?.email || !account.emailVerified) return;
      await tokens.revokeAll(account.id, 'reenrol_factor');
      const token = await issue(account.id, 'reenrol_factor', TTL.reenrolFactor);
      sendLater(account.email, 'factors_reset', localeOf(account), {
        name: account.givenName,
        link: link('/enrol-factor', token),
        values: { username: account.username, hours: String(TTL.reenrolFactor / 3600) },
      });
    },

    /** A sign-in waiting for re-enrolment: a new link only when no live one is out (an expired link). */
    async ensureReenrolLink(accountId: string): Promise<void> {
      if (!(await tokens.hasLive(accountId, 'reenrol_factor'))) await recovery.sendReenrolLink(accountId);
    },

    /** Whether a re-enrolment link is live, without using it. */
    async reenrolLinkLive(token: string): Promise<boolean> {
      return Boolean(await tokens.peek(hash(token), 'reenrol_factor'));
    },

    /** Uses the re-enrolment link this browser followed, for the account that just gave its password. */
    async useReenrolLink(token: string, accountId: string): Promise<boolean> {
      const live = await tokens.peek(hash(token), 'reenrol_factor');
      if (!live || live.accountId !== accountId) return false;
      return Boolean(await tokens.consume(hash(token), 'reenrol_factor'));
    },

    /** The account a live "this wasn't me" link is for, or undefined. */
    async notMeTarget(token: string): Promise<{ account: Account; since: Date; suspect: { type: CredentialType; name: string | null }[] } | undefined> {
      const live = await tokens.peek(hash(token), 'not_me');
      const account = live ? usable(await accounts.findById(live.accountId), 'active') : undefined;
      if (!live || !account) return undefined;
      const since = Number(live.data.since ?? 0);
      return { account, since: new Date(since), suspect: (await suspectFactors(account.id, since)).map((c) => ({ type: c.type, name: c.name })) };
    },

    /**
     * Uses a "this wasn't me" link (after the caller verified a second factor): ends every session
     * and grant, removes every second factor and recovery code added in the suspect window (from
     * the notice's event, less SUSPECT_MARGIN_MS in registration/links.ts), puts the address the notice went to back
     * if it was changed, switches the password off and mails a link for a new one, with a summary.
     */
    async secure(token: string, ip: string): Promise<SecureReceipt | undefined> {
      const used = await tokens.consume(hash(token), 'not_me');
      if (!used) return undefined;
      const accountId = used.accountId;
      const since = Number(used.data.since ?? 0);
      await tokens.revokeAll(accountId, 'not_me');
      const suspect = await suspectFactors(accountId, since);
      for (const c of suspect) await credentials.remove(accountId, c.id);
      for (const purpose of ['reset_password', 'change_email'] as const) await tokens.revokeAll(accountId, purpose);
      let account = await accounts.findById(accountId);
      if (used.data.to && account && account.email?.toLowerCase() !== used.data.to.toLowerCase() && (await holders(used.data.to)).length === 0) {
        await accounts.setVerifiedEmail(accountId, used.data.to);
        account = await accounts.findById(accountId);
      }
      // Whoever saw the notice's event may know the password: it no longer signs in, until reset.
      await accounts.clearPassword(accountId);
      const receipt = await endEverything(accountId);
      let resetSent = false;
      if (account?.email && account.emailVerified) {
        const locale = localeOf(account);
        const t = translator(locale);
        const reset = await issue(accountId, 'reset_password', TTL.resetPassword);
        const types = [...new Set(suspect.map((c) => c.type))];
        const removed = types.length ? types.map((type) => t(`notice.factor.${type}` as MessageKey)).join(', ') : t('notme.mail.none');
        sendLater(account.email, 'account_secured', locale, {
          name: account.givenName,
          link: link('/recover/reset', reset),
          minutes: TTL.resetPassword / 60,
          values: { when: when(locale), since: when(locale, new Date(since)), sessions: String(receipt.sessions), grants: String(receipt.grants), removed },
        }, accountId);
        resetSent = true;
      }
      await events.emit('account.secured', { accountId, sessions: receipt.sessions, grants: receipt.grants, ip });
      return { ...receipt, removed: suspect.map((c) => ({ type: c.type, name: c.name })), since: new Date(since), resetSent };
    },

  };
  return recovery;
}
