/**
 * Every mail in all three languages: a subject and text from the citizen's catalogue, a plain-text
 * part with the link on a line of its own, and an HTML part in that language with the link escaped.
 */
import { createMailTemplates, type MailKind } from '../../../src/mail/templates.js';
import type { Locale } from '../../../src/config.js';

const templates = createMailTemplates();
const KINDS: MailKind[] = ['verify_email', 'already_registered', 'username_taken', 'reset_password', 'change_email', 'new_device', 'password_changed', 'email_changed', 'factor_changed', 'recovery_used'];
const LOCALES: Locale[] = ['sr-Cyrl', 'sr-Latn', 'en'];
const values = { username: 'ana', when: '27. 11. 2026.', device: 'Firefox, Linux', ip: '192.0.2.1', factor: 'TOTP', change: 'x', sessions: 'x', count: '9', email: 'a@b.rs' };

describe.each(LOCALES)('%s', (locale) => {
  it.each(KINDS)('renders %s with no unfilled placeholder or raw key', (kind) => {
    const mail = templates.render(kind, locale, { name: 'Ana', link: 'https://kapija.test/l?token=a&b=1', notMeLink: 'https://kapija.test/not-me?token=z', minutes: 30, values });
    expect(mail.subject.length).toBeGreaterThan(5);
    for (const part of [mail.subject, mail.text, mail.html]) {
      expect(part).not.toMatch(/\{\w+\}/);
      expect(part).not.toMatch(/mail\.\w+\./);
    }
    expect(mail.text).toMatch(/^https:\/\/kapija\.test\/l\?token=a&b=1$/m);
    expect(mail.text).toMatch(/^https:\/\/kapija\.test\/not-me\?token=z$/m);
    expect(mail.html).toContain(`<html lang="${locale}">`);
    expect(mail.html).toContain('href="https://kapija.test/l?token=a&amp;b=1"');
    expect(mail.html).not.toContain('<script');
  });
});

it('writes each language in its own script', () => {
  const subjects = LOCALES.map((l) => templates.render('reset_password', l, {}).subject);
  expect(subjects[0]).toMatch(/^[\u0400-\u04ff\s]+$/);
  expect(subjects[1]).toMatch(/Kapij/);
  expect(subjects[2]).toBe('A new password for Kapija');
});

it('escapes what a citizen typed in the HTML part', () => {
  const mail = templates.render('reset_password', 'en', { name: '<b>Ana</b>', link: 'https://kapija.test/recover/reset', values: { username: '<img src=x>' } });
  expect(mail.html).not.toContain('<img src=x>');
  expect(mail.html).toContain('&lt;img src=x&gt;');
  expect(mail.html).toContain('&lt;b&gt;Ana&lt;/b&gt;');
});
