/**
 * What every page of the account portal shares: its dependencies, the citizen signed in
 * (`requireCitizen`, which sends anyone else to sign in first) and the rule that a change needs both
 * factors proven in the last few minutes (`requireRecentAuth`), and how a page is rendered.
 */
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { CardLink } from '../factors/certificate/link.js';
import type Provider from 'oidc-provider';
import type { Renderer } from '../http/render.js';
import type { OwnSignIn, OwnSession } from '../http/own-sign-in.js';
import type { Translate, MessageKey, Locale } from '../i18n/index.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { TotpFactor } from '../factors/totp/index.js';
import type { WebAuthnFactor } from '../factors/webauthn/index.js';
import type { AccountRepository, Account } from '../store/accounts.js';
import type { CredentialRepository } from '../store/credentials.js';
import type { OidcPayloadRepository } from '../store/oidc-payloads.js';
import type { SessionDeviceRepository } from '../store/session-devices.js';
import type { TrustedBrowserRepository } from '../store/trusted-browsers.js';
import type { ConsentRefusalRepository } from '../store/consent-refusals.js';
import type { AuditLog } from '../store/audit.js';
import type { SessionService } from '../oidc/sessions.js';
import type { AuditCheckpoints } from '../audit/checkpoints.js';
import type { SecretBox } from '../security/crypto.js';
import type { EventBus } from '../events.js';
import { REMEMBERED_BROWSER, completeAmr, levelFor, levelOfAcr, rank } from '../assurance/levels.js';
import type { VerifiedIdentity } from '../store/identities.js';
import type { ClientRepository } from '../store/clients.js';
import type { MandateService } from '../mandates/service.js';
import type { AccountDeletion } from './deletion.js';
import { serviceName } from '../i18n/service-name.js';
import type { CibaRequests } from '../ciba/service.js';
import type { Throttle } from '../security/rate-limit.js';

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
  /** The registered factors: which credentials are second factors, what they are called, which may stand alone. */
  factors: FactorRegistry;
  totp: TotpFactor;
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
  /** The citizen's verified identity, shown on the overview and in the export (identity/service.ts). */
  identity?: { find(accountId: string): Promise<VerifiedIdentity | undefined> };
  /** Linking the ID card to this account (factors/certificate/link.ts); absent when certificate sign-in is not configured. */
  cardLink?: CardLink;
  /** Browsers remembered after a two-factor sign-in: listed and forgotten on the sessions page. */
  trustedBrowsers?: TrustedBrowserRepository;
  /** Mandates given and held (/account/mandates); absent, the page is not offered. */
  mandates?: MandateService;
  /** The registered services, for naming those that accept representation in a mandate. */
  clients?: ClientRepository;
  /** Kapija's PID in the citizen's wallet (/account/wallet); absent, the page is not offered. */
  wallet?: PortalWallet;
  secureCookies: boolean;
  /** Requests from services (CIBA) waiting for the citizen's answer (/account/requests); absent, the page is not offered. */
  ciba?: CibaRequests;
  /** The sign-in's second-factor throttle, which an approval's factor counts under too. */
  secondFactorThrottle?: Throttle;
}


/** What the wallet page needs of the PID issuer (wallet/issuer/). */
export interface PortalWallet {
  eligibility(accountId: string): Promise<{ ok: true } | { ok: false; reason: string }>;
  list(accountId: string): Promise<readonly { id: string; clientId: string; level: string; channel: string; issuedAt: Date; expiresAt: Date; revokedAt: Date | null }[]>;
  revokeOwn(accountId: string, credentialId: string): Promise<void>;
  /** The portal's credential offer: a deep link and its QR code. */
  offer(): Promise<{ uri: string; qrDataUri: string }>;
}

/** The citizen a page is for: set by {@link PortalKit.requireCitizen}. */
export interface Citizen {
  session: OwnSession;
  account: Account;
}

export type PortalKit = ReturnType<typeof createPortalKit>;

/** A page of the portal: adds its routes to the router. */
export type PortalPage = (router: Router, p: PortalKit) => void;

export function createPortalKit(d: AccountPortalDeps) {
  const t = (ctx: Context) => ctx.state.t as Translate;
  /** A service's name in the page's language. */
  const localName = async (ctx: Context, clientId: string) => {
    const client = await d.provider.Client.find(clientId);
    return client ? serviceName(client.metadata() as Record<string, unknown>, ctx.state.locale as Locale, client.clientName ?? clientId) : clientId;
  };
  const body = (ctx: Context) => ((ctx.request as { body?: unknown }).body ?? {}) as Record<string, unknown>;
  const fmt = (ctx: Context, date: Date | undefined) =>
    date ? new Intl.DateTimeFormat(String(ctx.state.locale), { dateStyle: 'medium', timeStyle: 'short' }).format(date) : '—';

  /** Changes need both factors proven recently; otherwise the citizen signs in again first. */
  /** Both factors proven within the reauthentication window. */
  const isRecent = (session: OwnSession): boolean => {
    const fresh = Math.floor(Date.now() / 1000) - session.authTime <= d.reauthSeconds;
    // The factors proven (amr) decide, not the asserted acr, which an unverified identity holds at low.
    // A remembered browser never stands for the second factor here (the portal's sign-in never uses one).
    const remembered = session.amr.includes(REMEMBERED_BROWSER);
    const strong = !remembered && (rank(levelOfAcr(session.acr) ?? 'low') >= rank('substantial') || rank(levelFor(completeAmr(session.amr))) >= rank('substantial'));
    return fresh && strong;
  };
  const recent = (ctx: Context, session: OwnSession, returnTo: string): boolean => {
    if (isRecent(session)) return true;
    d.signIn.login(ctx, { returnTo, reauthenticate: true });
    return false;
  };

  return {
    d,
    t,
    localName,
    body,
    fmt,
    recent,
    /** The signed-in citizen; only on routes behind requireCitizen. */
    citizen: (ctx: Context): Citizen => ctx.state.me as Citizen,
    /** The signed-in, active citizen goes on (as `ctx.state.me`); anyone else is sent to sign in. */
    async requireCitizen(ctx: Context, next: Next) {
      const session = await d.signIn.current(ctx);
      const account = session ? await d.accounts.findById(session.accountId) : undefined;
      if (!session || !account || account.status !== 'active') {
        d.signIn.login(ctx, { returnTo: ctx.method === 'GET' ? ctx.originalUrl : '/account' });
        return;
      }
      ctx.state.me = { session, account } satisfies Citizen;
      await next();
    },
    /** A change: both factors proven in the last few minutes, or the citizen signs in again and comes back to `returnTo`. */
    isRecent,
    requireRecentAuth: (returnTo: string) => async (ctx: Context, next: Next) => {
      if (!recent(ctx, (ctx.state.me as Citizen).session, returnTo)) return;
      await next();
    },
    page: (ctx: Context, view: string, title: MessageKey, data: Record<string, unknown>) =>
      d.render(ctx, view, { title: t(ctx)(title), nav: ctx.path, canonicalUrl: ctx.path, ...data }),
  };
}
