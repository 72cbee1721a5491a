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

/** A pending (never verified) registration frees its username after this long. */
const STALE_PENDING_MS = TTL.verifyEmail * 1000;

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
}

export interface SelfServiceDeps {
  config: Pick<Config, 'issuer' | 'defaultLocale'>;
  accounts: AccountRepository;
  tokens: AccountTokenRepository;
  devices: KnownDeviceRepository;
  payloads: OidcPayloadRepository;
  passwords: PasswordHasher;
  sessions: SessionService;
  box: SecretBox;
  mailer: Mailer;
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
  const { config, accounts, tokens, devices, payloads, passwords, sessions, box, mailer, templates, events, logger } = deps;
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

  /** Sends now; failures are logged without the address or the content. */
  const send = async (to: string, kind: MailKind, locale: Locale, vars: Parameters<MailTemplates['render']>[2]) => {
    try {
      const mail = templates.render(kind, locale, vars);
      await mailer.send({ to, language: locale, kind, ...mail });
    } catch (err) {
      logger.error({ kind, code: (err as { code?: unknown }).code, err: { message: 'mail delivery failed' } }, 'mail not sent');
    }
  };
  /** Sends after the request has been answered (same answer and timing whatever the mail is). */
  const sendLater = (...args: Parameters<typeof send>) => {
    setImmediate(() => void send(...args));
  };

  /** Ends every session and deletes every remaining grant (with its tokens) of an account. */
  const endEverything = async (accountId: string): Promise<SecureReceipt> => {
    const ended = await sessions.endAllForAccount(accountId);
    const grants = new Set([...ended.flatMap((e) => e.grantsRevoked), ...(await payloads.revokeGrants(accountId))]);
    return { sessions: ended.length, grants: grants.size, deliveries: ended.flatMap((e) => e.deliveries) };
  };

  /** A security notice to the account's verified address, with a "this wasn't me" link. */
  const notify = async (accountId: string, kind: MailKind, values: (locale: Locale) => Record<string, string>, to?: string) => {
    const account = await accounts.findById(accountId);
    const address = to ?? (account?.emailVerified ? account.email : null);
    if (!account || !address) return;
    const locale = localeOf(account);
    const notMe = await issue(account.id, 'not_me', TTL.notMe);
    sendLater(address, kind, locale, { name: account.givenName, notMeLink: link('/not-me', notMe), values: values(locale) });
  };

  const service = {
    mailAvailable: () => mailer.mode !== 'disabled',

    /** Deletes expired link hashes (with the other expired rows, by Kapija's purge job). */
    purgeExpired: () => tokens.purgeExpired(),

    /** Creates a pending account (or mails the owner of a taken username or address). Same outcome for the caller either way. */
    async register(input: RegistrationInput, opts: { locale: Locale; returnUid?: string | undefined }): Promise<void> {
      const passwordHash = await passwords.hash(input.password);
      const email = input.email.trim();
      if ((await accounts.findByEmail(email)).length > 0) {
        sendLater(email, 'already_registered', opts.locale, { link: link('/recover') });
        return;
      }
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
      if (!account) {
        sendLater(email, 'username_taken', opts.locale, { link: link('/register'), values: { username: input.username } });
        return;
      }
      const data: Record<string, string> = { email };
      if (opts.returnUid) data.returnUid = opts.returnUid;
      const token = await issue(account.id, 'verify_email', TTL.verifyEmail, data);
      sendLater(email, 'verify_email', opts.locale, {
        name: account.givenName,
        link: link('/verify-email', token),
        values: { username: account.username },
      });
    },

    /**
     * Starts a change of e-mail address: the new address gets a verification link; the old one stays
     * until the link is followed (then it gets a notice). For the account portal (`/account/email`).
     */
    async requestEmailChange(accountId: string, newEmail: string, locale: Locale): Promise<void> {
      const account = await accounts.findById(accountId);
      if (!account) return;
      const email = newEmail.trim();
      const others = (await accounts.findByEmail(email)).filter((a) => a.id !== accountId);
      if (others.length > 0) {
        sendLater(email, 'already_registered', locale, { link: link('/recover') });
        return;
      }
      await tokens.revokeAll(accountId, 'change_email');
      const token = await issue(accountId, 'change_email', TTL.changeEmail, { email });
      sendLater(email, 'change_email', locale, {
        name: account.givenName,
        link: link('/verify-email', token),
        values: { username: account.username },
      });
    },

    /** Whether a verification link is live, without using it (GET shows a button; POST uses it). */
    async verificationPending(token: string): Promise<boolean> {
      return Boolean((await tokens.peek(hash(token), 'verify_email')) ?? (await tokens.peek(hash(token), 'change_email')));
    },

    /**
     * Completes a registration or an e-mail change.
     * @returns what was verified, or undefined for a used, expired or unknown link.
     */
    async verifyEmail(token: string, ip: string): Promise<{ kind: 'registration' | 'change'; returnUid?: string | undefined } | undefined> {
      const registration = await tokens.consume(hash(token), 'verify_email');
      if (registration) {
        const account = await accounts.findById(registration.accountId);
        if (!account || !registration.data.email) return undefined;
        await accounts.setVerifiedEmail(account.id, registration.data.email);
        await events.emit('account.registered', { accountId: account.id, ip });
        return { kind: 'registration', returnUid: registration.data.returnUid };
      }
      const change = await tokens.consume(hash(token), 'change_email');
      if (!change?.data.email) return undefined;
      const account = await accounts.findById(change.accountId);
      if (!account) return undefined;
      if ((await accounts.findByEmail(change.data.email)).some((a) => a.id !== account.id)) return undefined;
      const previous = account.emailVerified ? account.email : null;
      await accounts.setVerifiedEmail(account.id, change.data.email);
      await events.emit('account.email_changed', { accountId: account.id, ip });
      if (previous && previous.toLowerCase() !== change.data.email.toLowerCase()) {
        await notify(account.id, 'email_changed', (l) => ({ when: when(l) }), previous);
      }
      return { kind: 'change' };
    },

    /** Mails a reset link when `identifier` (username or e-mail) names an account with an address. Same outcome either way. */
    async requestPasswordReset(identifier: string, opts: { locale: Locale; returnUid?: string | undefined }): Promise<void> {
      const id = identifier.trim();
      const candidates = id.includes('@') ? await accounts.findByEmail(id) : [];
      const account = candidates.length === 1 ? candidates[0] : await accounts.findByUsername(id);
      if (!account?.email || account.status === 'locked' || account.status === 'disabled') return;
      await tokens.revokeAll(account.id, 'reset_password');
      const data: Record<string, string> = {};
      if (opts.returnUid) data.returnUid = opts.returnUid;
      const token = await issue(account.id, 'reset_password', TTL.resetPassword, data);
      sendLater(account.email, 'reset_password', localeOf(account, opts.locale), {
        name: account.givenName,
        link: link('/recover/reset', token),
        minutes: TTL.resetPassword / 60,
        values: { username: account.username },
      });
    },

    /** The account a live reset link is for (GET shows the form), or undefined. */
    async resetTarget(token: string): Promise<Account | undefined> {
      const live = await tokens.peek(hash(token), 'reset_password');
      return live ? accounts.findById(live.accountId) : undefined;
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
    async notMeTarget(token: string): Promise<Account | undefined> {
      const live = await tokens.peek(hash(token), 'not_me');
      return live ? accounts.findById(live.accountId) : undefined;
    },

    /** Uses a "this wasn't me" link (after the caller verified a second factor): ends everything. */
    async secure(token: string, ip: string): Promise<SecureReceipt | undefined> {
      const used = await tokens.consume(hash(token), 'not_me');
      if (!used) return undefined;
      await tokens.revokeAll(used.accountId, 'not_me');
      const receipt = await endEverything(used.accountId);
      await events.emit('account.secured', { accountId: used.accountId, sessions: receipt.sessions, grants: receipt.grants, ip });
      return receipt;
    },

    /** Subscribes the security notices to the event bus. */
    listen(): void {
      events.on('signin.success', async (e) => {
        if (!e.deviceId) return;
        const seen = await devices.remember(e.accountId, e.deviceId);
        // The very first sign-in of an account is not news to its owner.
        if (!seen.isNew || !seen.hadOthers) return;
        await notify(e.accountId, 'new_device', (l) => ({ when: when(l, e.at), device: describeDevice(e.userAgent), ip: e.ip }));
      });
      events.on('account.password_changed', async (e) => {
        await notify(e.accountId, 'password_changed', (l) => ({ when: when(l, e.at), sessions: translator(l)(`notice.password.${e.via}`) }));
      });
      const factorNotice = (change: 'added' | 'removed') => async (e: { accountId: string; type: string; at: Date }) => {
        // Enrolment during the first sign-in (before any device is known) is part of registering.
        if (change === 'added' && (await devices.count(e.accountId)) === 0) return;
        await notify(e.accountId, 'factor_changed', (l) => {
          const t = translator(l);
          return { when: when(l, e.at), factor: t(`notice.factor.${e.type}` as MessageKey), change: t(`notice.factor.${change}`) };
        });
      };
      // A recovery code stands in for the second factor: its owner hears of every use.
      events.on('factor.recovery_used', async (e) => {
        await notify(e.accountId, 'recovery_used', (l) => ({ when: when(l, e.at), ip: e.ip, count: String(e.remaining) }));
      });
      events.on('factor.enrolled', factorNotice('added'));
      events.on('factor.removed', factorNotice('removed'));
    },
  };
  return service;
}

export type SelfService = ReturnType<typeof createSelfService>;
