/**
 * Mailed single-use links and the mail around them, shared by registration, recovery and the
 * security notices. Every link carries a random token whose keyed hash (SecretBox.mac) is all that
 * is stored; each link works once and expires.
 */
import type { Logger } from 'pino';
import type { Config, Locale } from '../config.js';
import type { AccountRepository, Account } from '../store/accounts.js';
import type { AccountTokenRepository, TokenPurpose } from '../store/account-tokens.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { KnownDeviceRepository } from '../store/known-devices.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import type { SessionService, LogoutDelivery } from '../oidc/sessions.js';
import type { SecretBox } from '../security/crypto.js';
import { randomToken } from '../security/crypto.js';
import type { EventBus } from '../events.js';
import type { Mailer } from '../mail/mailer.js';
import type { LinkedMailer } from '../mail/queue.js';
import type { MailKind, MailTemplates } from '../mail/templates.js';
import { matchLocale } from '../i18n/index.js';

export const TTL = {
  verifyEmail: 24 * 3600,
  changeEmail: 24 * 3600,
  resetPassword: 30 * 60,
  notMe: 7 * 24 * 3600,
  reenrolFactor: 72 * 3600,
} as const;

/** A pending (never verified) registration frees its username and address after this long. */
export const STALE_PENDING_MS = TTL.verifyEmail * 1000;

/**
 * "This wasn't me" treats as suspect whatever was added from this long before the event its notice
 * was about (the lifetime of a sign-in interaction: a factor enrolled during the sign-in that a
 * new-device notice reports was added up to that long before the sign-in finished).
 */
export const SUSPECT_MARGIN_MS = 30 * 60 * 1000;

/** A queued-mail store that keeps a message with its link and can drop an account's messages (mail/queue.ts). */
export interface ForgettingMailer extends Mailer, LinkedMailer {
  forget(accountId: string): Promise<number>;
}

export interface RegistrationAndRecoveryDeps {
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


/** What ending every session of an account amounts to. */
export interface EndedEverything {
  readonly sessions: number;
  readonly grants: number;
  readonly deliveries: LogoutDelivery[];
}

export function createAccountLinks(deps: RegistrationAndRecoveryDeps) {
  const { config, accounts, tokens, credentials, payloads, sessions, box, mailer, templates, logger } = deps;
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
  const endEverything = async (accountId: string): Promise<EndedEverything> => {
    const ended = await sessions.endAllForAccount(accountId);
    const grants = new Set([...ended.flatMap((e) => e.grantsRevoked), ...(await payloads.revokeGrants(accountId))]);
    return { sessions: ended.length, grants: grants.size, deliveries: ended.flatMap((e) => e.deliveries) };
  };

  /**
   * A security notice to the account's verified address (or `to`, the previous one), with a "this
   * wasn't me" link that remembers when what it reports happened (`at`) and where the notice went.
   * `about`: the account's id, or its row when the caller read it in this request. The link and the
   * queued message are written together (neither exists without the other); the first attempt at
   * delivery is made after the request has been answered.
   */
  const notify = async (about: string | Account, kind: MailKind, values: (locale: Locale) => Record<string, string>, at: Date, to?: string) => {
    const account = typeof about === 'string' ? await accounts.findById(about) : about;
    const address = to ?? (account?.emailVerified ? account.email : null);
    if (!account || !address) return;
    const locale = localeOf(account);
    const data: Record<string, string> = { since: String(at.getTime() - SUSPECT_MARGIN_MS) };
    if (to) data.to = to;
    const notMe = randomToken(32);
    const rendered = templates.render(kind, locale, { name: account.givenName, notMeLink: link('/not-me', notMe), values: values(locale) });
    const mail = { to: address, language: locale, kind, accountId: account.id, ...rendered };
    const deliver = await mailer.keepWithLink(mail, tokens.row({ accountId: account.id, purpose: 'not_me', tokenHash: hash(notMe), ttlSeconds: TTL.notMe, data }));
    setImmediate(() => {
      deliver().catch((err: unknown) => logger.error({ kind, code: (err as { code?: unknown }).code, err: { message: 'mail delivery failed' } }, 'mail not sent'));
    });
  };

  /** Accounts holding the address `email`: every one but a pending registration, which holds no address until verified. */
  const holders = async (email: string) => (await accounts.findByEmail(email)).filter((a) => a.status !== 'pending');
  /** Links work only for an account that can still use them: never for a deleted, locked or disabled one. */
  const usable = (account: Account | undefined, ...statuses: Account['status'][]) =>
    account && statuses.includes(account.status) ? account : undefined;

  /** What "this wasn't me" would remove: factors and recovery codes added since `since`. */
  const suspectFactors = async (accountId: string, since: number) =>
    (await credentials.list(accountId)).filter((c) => c.createdAt.getTime() >= since);

  return { hash, link, localeOf, when, issue, send, sendLater, endEverything, notify, holders, usable, suspectFactors };
}

export type AccountLinks = ReturnType<typeof createAccountLinks>;
