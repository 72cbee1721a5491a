/**
 * Registration, e-mail verification and change, password reset, security notices and
 * "this wasn't me". Every link sent by mail carries a random token whose keyed hash
 * (SecretBox.mac) is all that is stored; each link works once and expires.
 *
 * Enumeration: registration and reset requests give the same answer whether or not the username or
 * address exists; what differs is only the mail, which goes to the address's owner (an address
 * already in use gets "someone tried to register with your address", a taken username gets
 * "choose another username"). Mails are sent after the answer, so timing does not tell either.
 */
import type { Logger } from 'pino';
import type { Config, Locale } from '../config.js';
import type { AccountRepository, Account } from '../store/accounts.js';
import type { AccountTokenRepository, TokenPurpose } from '../store/account-tokens.js';
import type { CredentialRepository, CredentialType } from '../store/credentials.js';
import type { KnownDeviceRepository } from '../store/known-devices.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import type { SessionService, LogoutDelivery } from '../oidc/sessions.js';
import type { SecretBox } from '../security/crypto.js';
import { randomToken } from '../security/crypto.js';
import type { EventBus } from '../events.js';
import type { Mailer } from '../mail/mailer.js';
import type { MailKind, MailTemplates } from '../mail/templates.js';
import { translator, matchLocale, type MessageKey } from '../i18n/index.js';

export const TTL = {
  verifyEmail: 24 * 3600,
  changeEmail: 24 * 3600,
  resetPassword: 30 * 60,
  notMe: 7 * 24 * 3600,
  reenrolFactor: 72 * 3600,
} as const;

/** A pending (never verified) registration frees its username and address after this long. */
const STALE_PENDING_MS = TTL.verifyEmail * 1000;

/**
 * "This wasn't me" treats as suspect whatever was added from this long before the event its notice
 * was about (the lifetime of a sign-in interaction: a factor enrolled during the sign-in that a
 * new-device notice reports was added up to that long before the sign-in finished).
 */
export const SUSPECT_MARGIN_MS = 30 * 60 * 1000;

export interface RegistrationInput {
  username: string;
  email: string;
  givenName: string;
  familyName: string;
  password: string;
}

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

/** A queued-mail store that can drop an account's messages (mail/queue.ts). */
export interface ForgettingMailer extends Mailer {
  forget(accountId: string): Promise<number>;
}

export interface SelfServiceDeps {
  config: Pick<Config, 'issuer' | 'defaultLocale'>;
  accounts: AccountRepository;
  tokens: AccountTokenRepository;
  credentials: CredentialRepository;
  devices: KnownDeviceRepository;
  payloads: OidcPayloadRepository;
  passwords: PasswordHasher;
  sessions: SessionService;
  box: SecretBox;
  mailer: ForgettingMailer;
  templates: MailTemplates;
  events: EventBus;
  logger: Logger;
}

const LOCALE_TAG: Record<Locale, string> = { en: 'en-GB', 'sr-Latn': 'sr-Latn-RS', 'sr-Cyrl': 'sr-Cyrl-RS' };

/** "Firefox on Windows": enough for a citizen to recognise a device, nothing more. */
export function describeDevice(userAgent: string): string {
  const browser = /Edg\//.test(userAgent)
    ? 'Edge'
    : /OPR\//.test(userAgent)
      ? 'Opera'
      : /Firefox\//.test(userAgent)
        ? 'Firefox'
        : /Chrom(e|ium)\//.test(userAgent)
          ? 'Chrome'
          : /Safari\//.test(userAgent)
            ? 'Safari'
            : undefined;
  const os = /Android/.test(userAgent)
    ? 'Android'
    : /iPhone|iPad/.test(userAgent)
      ? 'iOS'
      : /Windows/.test(userAgent)
        ? 'Windows'
        : /Mac OS X|Macintosh/.test(userAgent)
          ? 'macOS'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : undefined;
  if (browser && os) return `${browser}, ${os}`;
  return browser ?? os ?? (userAgent.slice(0, 80) || '?');
}

export function createSelfService(deps: SelfServiceDeps) {
  const { config, accounts, tokens, credentials, devices, payloads, passwords, sessions, box, mailer, templates, events, logger } = deps;
  const hash = (token: string) => box.mac('account-token', token);
  const link = (path: string, token?: string) => `${config.issuer}${path}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  const localeOf = (account: Pick<Account, 'locale'> | undefined, fallback?: Locale): Locale =>
    matchLocale(account?.locale) ?? fallback ?? config.defaultLocale;
  const when = (locale: Locale, at = new Date()) =>
    new Intl.DateTimeFormat(LOCALE_TAG[locale], { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Belgrade' }).format(at);

  const issue = async (accountId: string, purpose: TokenPurpose, ttlSeconds: number, data?: Record<string, string>) => {
    const token = randomToken(32);
    await tokens.create({ accountId, purpose, tokenHash: hash(token), ttlSeconds, data });
    return token;
  };

  /** Sends now; failures are logged without the address or the content. `accountId`: whose mail it is (dropped with the account). */
  const send = async (to: string, kind: MailKind, locale: Locale, vars: Parameters<MailTemplates['render']>[2], accountId?: string) => {
    try {
      const mail = templates.render(kind, locale, vars);
      await mailer.send({ to, language: locale, kind, accountId, ...mail });
    } catch (err) {
      logger.error({ kind, code: (err as { code?: unknown }).code, err: { message: 'mail delivery failed' } }, 'mail not sent');
    }
  };
  /** Sends after the request has been answered (same answer and timing whatever the mail is). */
  const sendLater = (...args: Parameters<typeof send>) => {
    setImmediate(() => void send(...args));
  };

  /** Ends every session and deletes every remaining grant (with its tokens) of an account. */
  const endEverything = async (accountId: string): Promise<Pick<SecureReceipt, 'sessions' | 'grants' | 'deliveries'>> => {
    const ended = await sessions.endAllForAccount(accountId);
    const grants = new Set([...ended.flatMap((e) => e.grantsRevoked), ...(await payloads.revokeGrants(accountId))]);
    return { sessions: ended.length, grants: grants.size, deliveries: ended.flatMap((e) => e.deliveries) };
  };

  /**
   * A security notice to the account's verified address (or `to`, the previous one), with a "this
   * wasn't me" link that remembers when what it reports happened (`at`) and where the notice went.
   */
  const notify = async (accountId: string, kind: MailKind, values: (locale: Locale) => Record<string, string>, at: Date, to?: string) => {
    const account = await accounts.findById(accountId);
    const address = to ?? (account?.emailVerified ? account.email : null);
    if (!account || !address) return;
    const locale = localeOf(account);
    const data: Record<string, string> = { since: String(at.getTime() - SUSPECT_MARGIN_MS) };
    if (to) data.to = to;
    const notMe = await issue(account.id, 'not_me', TTL.notMe, data);
    sendLater(address, kind, locale, { name: account.givenName, notMeLink: link('/not-me', notMe), values: values(locale) }, account.id);
  };

  /** Accounts holding the address `email`: every one but a pending registration, which holds no address until verified. */
  const holders = async (email: string) => (await accounts.findByEmail(email)).filter((a) => a.status !== 'pending');
  /** Links work only for an account that can still use them: never for a deleted, locked or disabled one. */
  const usable = (account: Account | undefined, ...statuses: Account['status'][]) =>
    account && statuses.includes(account.status) ? account : undefined;

  /** What "this wasn't me" would remove: factors and recovery codes added since `since`. */
  const suspectFactors = async (accountId: string, since: number) =>
    (await credentials.list(accountId)).filter((c) => c.createdAt.getTime() >= since);

  const service = {
    mailAvailable: () => mailer.mode !== 'disabled',

    /** A moment as the citizen reads it (Belgrade time, their language). */
    formatWhen: (locale: Locale, at: Date) => when(locale, at),

    /** Deletes expired link hashes (with the other expired rows, by Kapija's purge job). */
    purgeExpired: async () => (await tokens.purgeExpired()) + (await accounts.purgeStalePending(Date.now() - STALE_PENDING_MS)),

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
      if (!(await tokens.hasLive(accountId, 'reenrol_factor'))) await service.sendReenrolLink(accountId);
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
     * the notice's event, less {@link SUSPECT_MARGIN_MS}), puts the address the notice went to back
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

    /**
     * Makes every link of an account useless and drops its queued mail (account deletion): a link
     * followed afterwards does nothing, and no message about the account goes out any more.
     */
    async forget(accountId: string): Promise<void> {
      await tokens.revokeAllOfAccount(accountId);
      await mailer.forget(accountId);
    },

    /** Subscribes the security notices to the event bus. */
    listen(): void {
      events.on('signin.success', async (e) => {
        if (!e.deviceId) return;
        const seen = await devices.remember(e.accountId, e.deviceId);
        // The very first sign-in of an account is not news to its owner.
        if (!seen.isNew || !seen.hadOthers) return;
        await notify(e.accountId, 'new_device', (l) => ({ when: when(l, e.at), device: describeDevice(e.userAgent), ip: e.ip }), e.at);
      });
      events.on('account.password_changed', async (e) => {
        await notify(e.accountId, 'password_changed', (l) => ({ when: when(l, e.at), sessions: translator(l)(`notice.password.${e.via}`) }), e.at);
      });
      const factorNotice = (change: 'added' | 'removed') => async (e: { accountId: string; type: string; at: Date }) => {
        // Enrolment during the first sign-in (before any device is known) is part of registering.
        if (change === 'added' && (await devices.count(e.accountId)) === 0) return;
        await notify(e.accountId, 'factor_changed', (l) => {
          const t = translator(l);
          return { when: when(l, e.at), factor: t(`notice.factor.${e.type}` as MessageKey), change: t(`notice.factor.${change}`) };
        }, e.at);
      };
      // A recovery code stands in for the second factor: its owner hears of every use.
      events.on('factor.recovery_used', async (e) => {
        await notify(e.accountId, 'recovery_used', (l) => ({ when: when(l, e.at), ip: e.ip, count: String(e.remaining) }), e.at);
      });
      events.on('factor.enrolled', factorNotice('added'));
      events.on('factor.removed', factorNotice('removed'));
    },
  };
  return service;
}

export type SelfService = ReturnType<typeof createSelfService>;
