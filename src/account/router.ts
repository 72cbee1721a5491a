/**
 * The citizen's account portal at /account, itself signed in through Kapija: profile, active
 * sessions (sign out one or all), connected services (what each receives, refuse or allow a claim,
 * withdraw a consent), second factors (add, remove, new recovery codes — each change needs both
 * factors proven in the last few minutes), data export and account deletion.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Client } from 'oidc-provider';
import { z } from 'zod';
import { KapijaError, assertThat } from '../errors.js';
import type { Renderer } from '../http/render.js';
import { isEmail } from '../http/validators.js';
import type { OwnSignIn, OwnSession } from '../http/own-sign-in.js';
import type { Translate, MessageKey, Locale } from '../i18n/index.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import { PASSWORD_MAX, PASSWORD_MIN, checkNewPassword } from '../factors/password/policy.js';
import { accountRecord, type AccountRepository, type Account } from '../store/accounts.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import type { SessionDeviceRepository } from '../store/session-devices.js';
import type { SessionService } from '../oidc/sessions.js';
import type { TotpFactor } from '../factors/totp/index.js';
import type { RecoveryFactor } from '../factors/recovery/index.js';
import type { WebAuthnFactor } from '../factors/webauthn/index.js';
import type { SecretBox } from '../security/crypto.js';
import type { EventBus } from '../events.js';
import type { AuditLog, AuditEntry } from '../store/audit.js';
import type { AuditCheckpoints } from '../audit/checkpoints.js';
import { Readable } from 'node:stream';
import { LEDGER_CSV_HEADER, ledgerChain, ledgerCsvRows, ledgerEntries, ledgerJson } from './ledger.js';
import { claimsOfScopes, receivableClaims } from '../oidc/claims-policy.js';
import type { ConsentRefusalRepository } from '../store/consent-refusals.js';
import { levelOfAcr, rank } from '../oidc/acr.js';
import { csvCell } from '../security/csv.js';
import type { AccountDeletion } from './deletion.js';
import { describeDevice } from '../notices/device.js';
import { serviceName } from '../i18n/service-name.js';

export interface AccountPortalDeps {
  provider: Provider;
  signIn: OwnSignIn;
  accounts: AccountRepository;
  credentials: CredentialRepository;
  payloads: OidcPayloadRepository;
  /** Claims the citizen refused to services (shown and changed on /account/services). */
  refusals: ConsentRefusalRepository;
  devices: SessionDeviceRepository;
  sessions: SessionService;
  totp: TotpFactor;
  recovery: RecoveryFactor;
  webauthn: WebAuthnFactor;
  box: SecretBox;
  events: EventBus;
  audit: AuditLog;
  /** Signs the head of the citizen's chain and their download. */
  checkpoints: AuditCheckpoints;
  /** Where the audit keys are published (in each download, for checking it offline). */
  auditKeysUrl: string;
  render: Renderer;
  passwords: PasswordHasher;
  /** Starts a verified e-mail change (a link to the new address). */
  requestEmailChange(accountId: string, newEmail: string, locale: Locale): Promise<void>;
  /** Deletes the account (account/deletion.ts, shared with the administration). */
  deletion: AccountDeletion;
  /** How recent the last proof of both factors must be for a change (seconds). */
  reauthSeconds: number;
  secureCookies: boolean;
}

const PENDING_TOTP = 'kapija.account.totp';

export function createAccountRouter(d: AccountPortalDeps): Router {
  const router = new Router({ prefix: '/account' });
  const t = (ctx: Context) => ctx.state.t as Translate;
  /** A service's name in the page's language. */
  const localName = async (ctx: Context, clientId: string) => {
    const client = await d.provider.Client.find(clientId);
    return client ? serviceName(client.metadata() as Record<string, unknown>, ctx.state.locale as Locale, client.clientName ?? clientId) : clientId;
  };
  const body = (ctx: Context) => ((ctx.request as { body?: unknown }).body ?? {}) as Record<string, unknown>;
  const fmt = (ctx: Context, date: Date | undefined) =>
    date ? new Intl.DateTimeFormat(String(ctx.state.locale), { dateStyle: 'medium', timeStyle: 'short' }).format(date) : '—';

  /** The signed-in citizen, or a redirect to sign in. */
  const who = async (ctx: Context): Promise<{ session: OwnSession; account: Account } | undefined> => {
    const session = await d.signIn.current(ctx);
    const account = session ? await d.accounts.findById(session.accountId) : undefined;
    if (!session || !account || account.status !== 'active') {
      d.signIn.login(ctx, { returnTo: ctx.method === 'GET' ? ctx.originalUrl : '/account' });
      return undefined;
    }
    return { session, account };
  };

  /** Changes need both factors proven recently; otherwise the citizen signs in again first. */
  const recent = (ctx: Context, session: OwnSession, returnTo: string): boolean => {
    const fresh = Math.floor(Date.now() / 1000) - session.authTime <= d.reauthSeconds;
    const strong = rank(levelOfAcr(session.acr) ?? 'low') >= rank('substantial');
    if (fresh && strong) return true;
    d.signIn.login(ctx, { returnTo, reauthenticate: true });
    return false;
  };

  const page = (ctx: Context, view: string, title: MessageKey, data: Record<string, unknown>) =>
    d.render(ctx, view, { title: t(ctx)(title), nav: ctx.path, canonicalUrl: ctx.path, ...data });

  router.get('/callback', async (ctx) => {
    const to = await d.signIn.callback(ctx);
    ctx.status = 303;
    ctx.redirect(to);
  });

  router.get('/', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    page(ctx, 'account/overview', 'account.title', { account: me.account, since: fmt(ctx, me.account.createdAt) });
  });

  // ------------------------------------------------------------ profile: password and e-mail

  router.get('/profile', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    page(ctx, 'account/profile', 'account.profile', { account: me.account, passwordMin: PASSWORD_MIN, passwordMax: PASSWORD_MAX, done: ctx.query.done });
  });

  router.post('/password', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/profile')) return;
    const b = body(ctx);
    const current = typeof b.current_password === 'string' ? b.current_password.slice(0, 1024) : '';
    const next = typeof b.new_password === 'string' ? b.new_password : '';
    const tr = t(ctx);
    const creds = await d.accounts.findCredentialsByUsername(me.account.username);
    let error: string | undefined;
    if (!(await d.passwords.verify(creds?.passwordHash, current))) error = tr('account.password.wrong');
    else if (next !== b.new_password_confirm) error = tr('error.password.mismatch');
    else {
      const problem = checkNewPassword(next, { username: me.account.username });
      if (problem) error = tr(`error.password.${problem}` as MessageKey, { min: PASSWORD_MIN, max: PASSWORD_MAX });
    }
    if (error) {
      ctx.status = 400;
      return page(ctx, 'account/profile', 'account.profile', { account: me.account, passwordMin: PASSWORD_MIN, passwordMax: PASSWORD_MAX, passwordError: error });
    }
    await d.accounts.setPasswordHash(me.account.id, await d.passwords.hash(next));
    // Whoever is signed in elsewhere with the old password is signed out, their services told by
    // back-channel logout and their tokens revoked, as on the sessions page; this browser stays.
    const others = (await d.sessions.listForAccount(me.account.id)).filter((s) => s.uid !== me.session.sessionUid);
    for (const s of others) await d.sessions.end(s.id, { accountId: me.account.id });
    await d.events.emit('account.password_changed', { accountId: me.account.id, via: 'portal', ip: ctx.ip });
    ctx.status = 303;
    ctx.redirect('/account/profile?done=password');
  });

  router.post('/email', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/profile')) return;
    const email = typeof body(ctx).email === 'string' ? String(body(ctx).email).trim() : '';
    // At most 254 characters (RFC 5321), the length the column holds.
    if (!isEmail(email)) {
      ctx.status = 400;
      return page(ctx, 'account/profile', 'account.profile', { account: me.account, passwordMin: PASSWORD_MIN, passwordMax: PASSWORD_MAX, emailError: t(ctx)('account.email.invalid') });
    }
    await d.requestEmailChange(me.account.id, email, ctx.state.locale as Locale);
    ctx.status = 303;
    ctx.redirect('/account/profile?done=email');
  });

  // ------------------------------------------------------------ sessions

  router.get('/sessions', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const [sessions, devices] = await Promise.all([d.sessions.listForAccount(me.account.id), d.devices.listForAccount(me.account.id)]);
    const byUid = new Map(devices.map((x) => [x.sessionUid, x]));
    const names = new Map<string, string>();
    for (const s of sessions) {
      for (const c of s.clients) {
        if (!names.has(c.clientId)) names.set(c.clientId, await localName(ctx, c.clientId));
      }
    }
    page(ctx, 'account/sessions', 'account.sessions.title', {
      sessions: sessions.map((s) => {
        const device = s.uid ? byUid.get(s.uid) : undefined;
        return {
          uid: s.uid,
          current: s.uid === me.session.sessionUid,
          started: fmt(ctx, device?.createdAt ?? s.loginAt),
          lastSeen: fmt(ctx, device?.lastSeenAt ?? s.loginAt),
          device: describeDevice(device?.userAgent ?? null),
          ip: device?.ip ?? '—',
          services: s.clients.map((c) => names.get(c.clientId) ?? c.clientId),
        };
      }),
    });
  });

  router.post('/sessions/end', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const uid = body(ctx).uid;
    const all = body(ctx).all === 'yes';
    const sessions = await d.sessions.listForAccount(me.account.id);
    const targets = all ? sessions : sessions.filter((s) => s.uid === uid);
    assertThat(targets.length > 0, 'request.not_found', 404);
    for (const s of targets) await d.sessions.end(s.id, { accountId: me.account.id });
    if (targets.some((s) => s.uid === me.session.sessionUid)) {
      d.signIn.clear(ctx);
      ctx.status = 303;
      ctx.redirect('/account/signed-out');
      return;
    }
    ctx.status = 303;
    ctx.redirect('/account/sessions');
  });

  router.get('/signed-out', async (ctx) => {
    page(ctx, 'account/signed-out', 'logout.done.title', {});
  });

  // ------------------------------------------------------------ connected services

  /**
   * The services an account is connected to: through a live grant, or through claims refused to
   * them. `choosable`: the claims the citizen decides (those the service may receive, but `sub`).
   */
  const servicesOf = async (accountId: string) => {
    const [grants, refusedBy] = await Promise.all([d.payloads.listByAccount(accountId, 'Grant'), d.refusals.listByAccount(accountId)]);
    const byClient = new Map<string, { client: Client; scopes: Set<string>; asked: Set<string>; grantIds: string[]; since: number }>();
    const entry = async (clientId: string) => {
      const known = byClient.get(clientId);
      if (known) return known;
      const client = clientId ? await d.provider.Client.find(clientId) : undefined;
      if (!client || client.metadata()['kapija_first_party'] === true) return undefined;
      const created = { client, scopes: new Set<string>(), asked: new Set<string>(), grantIds: [] as string[], since: Infinity };
      byClient.set(clientId, created);
      return created;
    };
    for (const g of grants) {
      const e = await entry(String(g.payload.clientId ?? ''));
      if (!e) continue;
      const openid = (g.payload.openid ?? {}) as { scope?: string; claims?: string[] };
      const rejected = ((g.payload.rejected ?? {}) as { openid?: { claims?: string[] } }).openid?.claims ?? [];
      for (const s of (openid.scope ?? '').split(' ').filter(Boolean)) e.scopes.add(s);
      for (const c of [...(openid.claims ?? []), ...rejected]) e.asked.add(c);
      e.grantIds.push(g.id);
      e.since = Math.min(e.since, Number(g.payload.iat ?? Infinity));
    }
    for (const [clientId, claims] of refusedBy) {
      const e = await entry(clientId);
      if (e) for (const c of claims) e.asked.add(c);
    }
    return new Map(
      [...byClient.entries()].map(([clientId, e]) => {
        const receivable = receivableClaims(e.client);
        const choosable = new Set([...claimsOfScopes(e.scopes), ...e.asked].filter((c) => c !== 'sub' && receivable.has(c)));
        return [clientId, { ...e, choosable, refused: refusedBy.get(clientId) ?? new Set<string>() }];
      }),
    );
  };

  router.get('/services', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const tr = t(ctx);
    const label = (c: string) => {
      const key = `consent.claim.${c}` as MessageKey;
      return tr(key) === key ? tr('consent.claim.other', { claim: c }) : tr(key);
    };
    const services = [...(await servicesOf(me.account.id)).entries()].map(([clientId, e]) => ({
      clientId,
      name: serviceName(e.client.metadata() as Record<string, unknown>, ctx.state.locale as Locale, e.client.clientName ?? clientId),
      fixed: [...(e.scopes.has('openid') ? [label('sub')] : []), ...(e.scopes.has('offline_access') ? [tr('consent.scope.offline_access')] : [])],
      claims: [...e.choosable].map((claim) => ({ claim, label: label(claim), allowed: !e.refused.has(claim) })),
      since: fmt(ctx, Number.isFinite(e.since) ? new Date(e.since * 1000) : undefined),
    }));
    page(ctx, 'account/services', 'account.services.title', { services, done: ctx.query.done === 'claims' });
  });

  /**
   * The citizen changes what a service receives: an unticked claim is refused (not released to it
   * from now on, in any session); a ticked one is allowed again, in the live grants as well.
   */
  router.post('/services/claims', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const clientId = String(body(ctx).client_id ?? '');
    const service = (await servicesOf(me.account.id)).get(clientId);
    assertThat(service, 'request.not_found', 404);
    const raw = body(ctx).claims;
    const ticked = new Set((Array.isArray(raw) ? raw : [raw]).filter((x): x is string => typeof x === 'string'));
    const refused = [...service.choosable].filter((c) => !ticked.has(c));
    const allowed = [...service.choosable].filter((c) => ticked.has(c));
    await d.refusals.refuse(me.account.id, clientId, refused);
    await d.refusals.allow(me.account.id, clientId, allowed);
    const reopened = allowed.filter((c) => service.refused.has(c));
    if (reopened.length) {
      for (const id of service.grantIds) {
        const grant = await d.provider.Grant.find(id);
        const rejected = (grant as unknown as { rejected?: { openid?: { claims?: string[] } } } | undefined)?.rejected?.openid;
        if (!grant || !rejected?.claims?.some((c) => reopened.includes(c))) continue;
        rejected.claims = rejected.claims.filter((c) => !reopened.includes(c));
        grant.addOIDCClaims(reopened);
        await grant.save();
      }
    }
    await d.events.emit('consent.given', { accountId: me.account.id, clientId, scopes: [], claims: allowed, refused });
    ctx.status = 303;
    ctx.redirect('/account/services?done=claims');
  });

  router.post('/services/revoke', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const clientId = String(body(ctx).client_id ?? '');
    const revoked = await d.payloads.revokeGrants(me.account.id, clientId);
    // Withdrawn consent starts over: the next sign-in to the service asks about every claim again.
    const forgotten = await d.refusals.forget(me.account.id, clientId);
    assertThat(revoked.length > 0 || forgotten > 0, 'request.not_found', 404);
    await d.events.emit('consent.revoked', { accountId: me.account.id, clientId });
    ctx.status = 303;
    ctx.redirect('/account/services');
  });

  // ------------------------------------------------------------ second factors

  const securityPage = async (ctx: Context, me: { account: Account }, extra: Record<string, unknown> = {}) => {
    const creds = await d.credentials.list(me.account.id);
    page(ctx, 'account/security', 'account.security.title', {
      factors: creds
        .filter((c) => c.type !== 'recovery')
        .map((c) => ({ id: c.id, type: c.type, name: c.name ?? c.type, added: fmt(ctx, c.createdAt), lastUsed: fmt(ctx, c.lastUsedAt ?? undefined) })),
      recoveryRemaining: await d.recovery.remaining(me.account.id),
      ...extra,
    });
  };

  router.get('/security', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    await securityPage(ctx, me);
  });

  router.post('/security/remove', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/security')) return;
    const id = String(body(ctx).id ?? '');
    const creds = await d.credentials.list(me.account.id);
    const target = creds.find((c) => c.id === id && c.type !== 'recovery');
    assertThat(target, 'request.not_found', 404);
    const others = creds.filter((c) => c.id !== id && (c.type === 'totp' || c.type === 'webauthn'));
    if (others.length === 0) {
      ctx.status = 409;
      return securityPage(ctx, me, { error: t(ctx)('error.factor.last_one') });
    }
    await d.credentials.remove(me.account.id, id);
    await d.events.emit('factor.removed', { accountId: me.account.id, type: target.type, ip: ctx.ip });
    ctx.status = 303;
    ctx.redirect('/account/security');
  });

  router.post('/security/recovery-codes', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/security')) return;
    const codes = await d.recovery.issue(me.account.id);
    await d.events.emit('factor.enrolled', { accountId: me.account.id, type: 'recovery', ip: ctx.ip });
    page(ctx, 'account/recovery-codes', 'codes.title', { codes });
  });

  // WebAuthn (JSON, from static/webauthn.js): the challenge waits in a sealed, short-lived cookie and
  // is cleared on every verification attempt.
  const CHALLENGE = 'kapija.account.webauthn';
  const challengeCookie = { httpOnly: true, sameSite: 'strict' as const, secure: d.secureCookies, path: '/account/security', overwrite: true };

  router.post('/security/webauthn/options', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    if (!recent(ctx, me.session, '/account/security')) {
      ctx.status = 401;
      ctx.body = { error: 'reauthentication_required', location: '/account/login?return=/account/security' };
      return;
    }
    const options = await d.webauthn.registrationOptions(me.account.id, me.account.username);
    ctx.cookies.set(CHALLENGE, d.box.seal(options.challenge, `${CHALLENGE}:${me.account.id}`), { ...challengeCookie, maxAge: 5 * 60 * 1000 });
    ctx.body = options;
  });

  router.post('/security/webauthn', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/security')) return;
    const sealed = ctx.cookies.get(CHALLENGE);
    ctx.cookies.set(CHALLENGE, null, challengeCookie);
    let challenge: string | undefined;
    try {
      challenge = sealed ? d.box.openString(sealed, `${CHALLENGE}:${me.account.id}`) : undefined;
    } catch {
      challenge = undefined;
    }
    const b = body(ctx);
    if (!challenge || !b.response || typeof b.response !== 'object') throw new KapijaError('factor.webauthn.failed', 401);
    await d.webauthn.register(me.account.id, challenge, b.response, String(b.name ?? '').slice(0, 100) || 'Security key');
    await d.events.emit('factor.enrolled', { accountId: me.account.id, type: 'webauthn', ip: ctx.ip });
    ctx.body = { location: '/account/security' };
  });

  router.get('/security/totp', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/security/totp')) return;
    const enrolment = await d.totp.begin(me.account.username);
    ctx.cookies.set(PENDING_TOTP, d.totp.sealSecret(enrolment.secret, me.account.id), {
      httpOnly: true,
      sameSite: 'lax',
      secure: d.secureCookies,
      path: '/account/security',
      maxAge: 15 * 60 * 1000,
      overwrite: true,
    });
    page(ctx, 'account/totp', 'enrol.title', {
      secret: enrolment.secret.replace(/(.{4})/g, '$1 ').trim(),
      qrDataUri: `data:image/svg+xml;base64,${Buffer.from(enrolment.qrSvg).toString('base64')}`,
    });
  });

  router.post('/security/totp', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/security/totp')) return;
    const sealed = ctx.cookies.get(PENDING_TOTP);
    assertThat(sealed, 'interaction.expired');
    const secret = d.totp.openSecret(sealed, me.account.id);
    const parsed = z.object({ code: z.string().max(16) }).safeParse(body(ctx));
    try {
      await d.totp.finish(me.account.id, secret, parsed.success ? parsed.data.code : '', String(body(ctx).name ?? '').slice(0, 100) || undefined);
    } catch (err) {
      if (!(err instanceof KapijaError)) throw err;
      ctx.status = 401;
      const enrolment = await d.totp.view(secret, me.account.username);
      return page(ctx, 'account/totp', 'enrol.title', {
        secret: enrolment.secret.replace(/(.{4})/g, '$1 ').trim(),
        qrDataUri: `data:image/svg+xml;base64,${Buffer.from(enrolment.qrSvg).toString('base64')}`,
        error: t(ctx)('error.factor.totp.invalid_code'),
      });
    }
    ctx.cookies.set(PENDING_TOTP, null, { path: '/account/security' });
    await d.events.emit('factor.enrolled', { accountId: me.account.id, type: 'totp', ip: ctx.ip });
    ctx.status = 303;
    ctx.redirect('/account/security');
  });

  // ------------------------------------------------------------ activity: the ledger

  const PAGE = 20;
  const clientNames = async (ctx: Context, entries: AuditEntry[]) => {
    const names = new Map<string, string>();
    for (const e of entries) {
      if (e.clientId && !names.has(e.clientId)) names.set(e.clientId, await localName(ctx, e.clientId));
    }
    return names;
  };
  const describe = (ctx: Context, e: AuditEntry, names: Map<string, string>) => {
    const tr = t(ctx);
    const claims = Array.isArray(e.details.claims)
      ? (e.details.claims as string[]).map((c) => {
          const key = `consent.claim.${c}` as MessageKey;
          return tr(key) === key ? c : tr(key);
        })
      : [];
    const action = (e.action.startsWith('admin.') ? 'ledger.admin_read' : e.action) as MessageKey;
    return {
      at: fmt(ctx, e.at),
      iso: e.at.toISOString(),
      what: tr(action) === action ? e.action : tr(action),
      service: e.clientId ? (names.get(e.clientId) ?? e.clientId) : '—',
      channel: typeof e.details.channel === 'string' ? tr(`ledger.channel.${e.details.channel}` as MessageKey) : '',
      claims,
    };
  };

  router.get('/activity', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const pageNo = Math.max(1, Math.min(10_000, Number.parseInt(String(ctx.query.page ?? '1'), 10) || 1));
    const { entries, total } = await ledgerEntries(d.audit, me.account.id, { limit: PAGE, offset: (pageNo - 1) * PAGE });
    const names = await clientNames(ctx, entries);
    const verified = await d.audit.verify(ledgerChain(me.account.id));
    page(ctx, 'account/activity', 'account.activity.title', {
      entries: entries.map((e) => describe(ctx, e, names)),
      page: pageNo,
      pages: Math.max(1, Math.ceil(total / PAGE)),
      verified: verified.ok,
      keysUrl: d.auditKeysUrl,
    });
  });

  router.get('/activity/export', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const names = new Map<string, string>();
    const serviceName = async (clientId: string) => {
      if (!names.has(clientId)) names.set(clientId, (await d.provider.Client.find(clientId))?.clientName ?? clientId);
      return names.get(clientId) ?? null;
    };
    const deps = { audit: d.audit, checkpoints: d.checkpoints, serviceName, keysUrl: d.auditKeysUrl };
    ctx.set('cache-control', 'no-store');
    // Written as read, page by page: a ledger of any length downloads whole.
    if (ctx.query.format === 'csv') {
      const cell = (v: unknown) => csvCell(v, { quote: 'always' });
      ctx.type = 'text/csv; charset=utf-8';
      ctx.set('content-disposition', 'attachment; filename="kapija-activity.csv"');
      ctx.body = Readable.from(
        (async function* () {
          yield LEDGER_CSV_HEADER;
          for await (const row of ledgerCsvRows(deps, me.account.id)) yield `\r\n${row.map(cell).join(',')}`;
        })(),
      );
      return;
    }
    ctx.type = 'application/json; charset=utf-8';
    ctx.set('content-disposition', 'attachment; filename="kapija-activity.json"');
    ctx.body = Readable.from(ledgerJson(deps, me.account.id));
  });

  // ------------------------------------------------------------ your data

  router.get('/data', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    page(ctx, 'account/data', 'account.data.title', { username: me.account.username });
  });

  router.get('/data/export.json', async (ctx) => {
    const me = await who(ctx);
    if (!me) return;
    const a = me.account;
    const [creds, sessions, grants, devices, refused] = await Promise.all([
      d.credentials.list(a.id),
      d.sessions.listForAccount(a.id),
      d.payloads.listByAccount(a.id, 'Grant'),
      d.devices.listForAccount(a.id),
      d.refusals.listByAccount(a.id),
    ]);
    ctx.set('content-disposition', 'attachment; filename="kapija-export.json"');
    ctx.set('cache-control', 'no-store');
    ctx.body = {
      exported_at: new Date().toISOString(),
      account: { ...accountRecord(a), updated_at: a.updatedAt.toISOString() },
      // Secrets (password hash, TOTP keys, recovery codes, public keys) are never exported.
      factors: creds.map((c) => ({ type: c.type, name: c.name, created_at: c.createdAt.toISOString(), last_used_at: c.lastUsedAt?.toISOString() ?? null, used_at: c.usedAt?.toISOString() ?? null })),
      sessions: sessions.map((s) => ({ started_at: s.loginAt?.toISOString() ?? null, expires_at: s.expiresAt?.toISOString() ?? null, acr: s.acr, amr: s.amr, services: s.clients.map((c) => c.clientId) })),
      devices: devices.map((x) => ({ ip: x.ip, user_agent: x.userAgent, first_seen_at: x.createdAt.toISOString(), last_seen_at: x.lastSeenAt.toISOString() })),
      consents: grants.map((g) => ({ service: g.payload.clientId, granted: g.payload.openid ?? {}, expires_at: g.expiresAt ? new Date(g.expiresAt).toISOString() : null })),
      refused_claims: [...refused].map(([service, claims]) => ({ service, claims: [...claims].sort() })),
    };
  });

  router.post('/delete', async (ctx) => {
    const me = await who(ctx);
    if (!me || !recent(ctx, me.session, '/account/data')) return;
    if (String(body(ctx).confirm ?? '').trim().toLowerCase() !== me.account.username) {
      ctx.status = 400;
      return page(ctx, 'account/data', 'account.data.title', { username: me.account.username, error: t(ctx)('account.delete.mismatch') });
    }
    await d.deletion.delete(me.account.id);
    d.signIn.clear(ctx);
    ctx.status = 303;
    ctx.redirect('/account/deleted');
  });

  router.get('/deleted', async (ctx) => {
    page(ctx, 'account/deleted', 'account.deleted.title', {});
  });

  router.get('/login', async (ctx) => {
    d.signIn.login(ctx, { returnTo: typeof ctx.query.return === 'string' ? ctx.query.return : '/account' });
  });

  return router;
}
