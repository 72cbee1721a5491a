/**
 * Kapija's mails, rendered from `views/mail/{text,html}.eta` with the texts of the
 * citizen's language catalogue (`mail.*` keys): a plain-text part and a simple HTML part.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { translator, type Locale, type MessageKey } from '../i18n/index.js';

export type MailKind =
  | 'verify_email'
  | 'already_registered'
  | 'username_taken'
  | 'reset_password'
  | 'change_email'
  | 'new_device'
  | 'password_changed'
  | 'email_changed'
  | 'factor_changed'
  | 'factors_reset'
  | 'recovery_used'
  | 'account_secured'
  | 'ciba_request'
  | 'pid_issued';

export interface MailVars {
  /** The citizen's given name, when known. */
  readonly name?: string | null | undefined;
  /** The main link (verify, reset). */
  readonly link?: string;
  /** The "this wasn't me" link of a security notice. */
  readonly notMeLink?: string;
  /** Minutes the main link stays valid. */
  readonly minutes?: number;
  /** Other values the texts interpolate ({username}, {email}, {when}, {device}, {factor}). */
  readonly values?: Record<string, string>;
}

export interface RenderedMail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** Kinds whose main link has an action label (`mail.<kind>.action`). */
const WITH_ACTION: ReadonlySet<MailKind> = new Set(['verify_email', 'reset_password', 'change_email', 'already_registered', 'username_taken', 'account_secured', 'factors_reset', 'ciba_request', 'pid_issued']);

function findViewsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    const candidate = path.join(dir, 'views', 'mail');
    if (fs.existsSync(path.join(candidate, 'html.eta'))) return path.dirname(candidate);
    dir = path.dirname(dir);
  }
  throw new Error('views/mail not found');
}

export function createMailTemplates(opts: { viewsDir?: string } = {}) {
  const eta = new Eta({ views: opts.viewsDir ?? findViewsDir(), autoEscape: true, autoTrim: false, cache: true });
  return {
    render(kind: MailKind, locale: Locale, vars: MailVars = {}): RenderedMail {
      const t = translator(locale);
      const values = { ...vars.values, minutes: String(vars.minutes ?? '') };
      const key = (suffix: string) => `mail.${kind}.${suffix}` as MessageKey;
      const paragraphs = t(key('body'), values).split('\n\n');
      const data = {
        lang: locale,
        subject: t(key('subject'), values),
        greeting: vars.name ? t('mail.greeting', { name: vars.name }) : t('mail.greeting.anonymous'),
        paragraphs,
        action: vars.link ? { label: WITH_ACTION.has(kind) ? t(key('action')) : vars.link, url: vars.link } : undefined,
        expires: vars.link && vars.minutes ? t('mail.link_expires', values) : undefined,
        notMe: vars.notMeLink ? { text: t('mail.not_me'), label: t('mail.not_me.action'), url: vars.notMeLink } : undefined,
        signature: t('mail.signature'),
        footer: t('mail.footer'),
      };
      return {
        subject: data.subject,
        text: eta.render('mail/text', data).replace(/\n{3,}/g, '\n\n').trim() + '\n',
        html: eta.render('mail/html', data),
      };
    },
  };
}

export type MailTemplates = ReturnType<typeof createMailTemplates>;
