/**
 * Security notices: a mail to the citizen's verified address when something about the account
 * changes (a new device, the password, a factor added or removed, a recovery code used), each with
 * a "this wasn't me" link (recovery/).
 */
import { translator, type MessageKey } from '../i18n/index.js';
import type { AccountLinks, RegistrationAndRecoveryDeps } from '../registration/links.js';
import { describeDevice } from './device.js';

/** Subscribes the security notices to the event bus. */
export function listenForNotices(links: AccountLinks, deps: Pick<RegistrationAndRecoveryDeps, 'events' | 'devices' | 'accounts'>): void {
  const { events, devices, accounts } = deps;
  const { notify, when } = links;
  events.on('signin.success', async (e) => {
    if (!e.deviceId) return;
    const seen = await devices.remember(e.accountId, e.deviceId);
    // The very first sign-in of an account is not news to its owner.
    if (!seen.isNew || !seen.hadOthers) return;
    // Addressed with the account's row the device statement read along (no second read of it).
    await notify(seen.account ?? e.accountId, 'new_device', (l) => ({ when: when(l, e.at), device: describeDevice(e.userAgent, '?'), ip: e.ip }), e.at);
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
  // A service asks the citizen to confirm it is them (CIBA): the service's name and a link to the
  // portal's requests page, where the citizen approves or denies. No "this wasn't me" link: denying
  // the request is the answer, and nothing about the account changed.
  events.on('ciba.requested', async (e) => {
    const account = await accounts.findById(e.accountId);
    if (!account?.emailVerified || !account.email || account.status !== 'active') return;
    const locale = links.localeOf(account);
    links.sendLater(account.email, 'ciba_request', locale, { name: account.givenName, link: links.link('/account/requests'), values: { service: e.serviceNames[locale], when: when(locale, e.at) } }, account.id);
  });
  // Kapija's PID went into a wallet: the citizen hears of every issuance, with the portal page that
  // revokes it (a desk offer redeemed by someone other than the citizen does not go unseen).
  events.on('wallet.pid_issued', async (e) => {
    const account = await accounts.findById(e.accountId);
    if (!account?.emailVerified || !account.email || account.status !== 'active') return;
    const locale = links.localeOf(account);
    const channel = translator(locale)(`wallet.issue.channel.${e.channel}`);
    links.sendLater(account.email, 'pid_issued', locale, { name: account.givenName, link: links.link('/account/wallet'), values: { wallet: e.walletNames[locale], channel, when: when(locale, e.at) } }, account.id);
  });
  events.on('factor.enrolled', factorNotice('added'));
  events.on('factor.removed', factorNotice('removed'));
}
