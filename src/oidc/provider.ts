/**
 * The OpenID Connect engine: oidc-provider configured for Kapija. Protocol decisions live here;
 * pages live in `interactions/`, which the provider knows only by URL.
 */
import type { Context } from 'koa';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Config, Locale } from '../config.js';
import { serviceName } from '../i18n/service-name.js';
import { LOCALES, LOCALE_COOKIE } from '../i18n/index.js';
import { isUnavailableError } from '../errors.js';
import type { AdapterConstructor, AdapterWithHeldWrites } from './adapter.js';
import type { AuditEntryInput } from '../store/audit.js';
import { SCOPE_CLAIMS } from './accounts.js';
import { receivableClaims } from './claims-policy.js';
import type { KeySet } from './keys.js';
import { ACR, levelOfAcr, rank, requiredLevel } from './acr.js';
import { EXTRA_CLIENT_PROPERTIES, validateExtraClientProperty } from './client-metadata.js';
import { allowFormActionTo } from '../http/headers.js';
import { hostCookie } from '../http/cookie-names.js';
import { IDENTITY_ASSURANCE_DISCOVERY } from '../identity/verified-claims.js';
import { honestLevel, type IdentityLevel } from '../identity/levels.js';

export interface ProviderPages {
  /** Answers a protocol error the engine renders: Kapija's error page, or its JSON for a program. */
  error(ctx: Context, message: { error: string; error_description?: string | undefined }, err: unknown): void;
  logout(ctx: Context, form: string): void;
  logoutDone(ctx: Context, clientName: string | undefined): void;
  /** The device authorization grant's pages (interactions/device.ts); without them the grant is off. */
  device?: DevicePages;
}

/** The browser pages of the device authorization grant (RFC 8628), as Kapija renders them. */
export interface DevicePages {
  /** The code entry, first or again after an error (`err` from the engine: wrong, expired, used, aborted). */
  input(ctx: KoaContextWithOIDC, err: unknown): Promise<void>;
  /** "Does your device show this code?", before the sign-in starts. */
  confirm(ctx: KoaContextWithOIDC, userCode: string): Promise<void>;
  /** The device is signed in. */
  success(ctx: KoaContextWithOIDC): Promise<void>;
}

/**
 * Kapija's part of Client-Initiated Backchannel Authentication (OpenID Connect CIBA Core 1.0): who
 * a `login_hint` names, and what happens once the engine has saved a request (the citizen's ledger).
 * The citizen answers in the account portal (ciba/service.ts); without these hooks CIBA is off.
 */
export interface CibaHooks {
  /** The account a `login_hint` names for this client, or undefined (the engine answers `unknown_user_id`). */
  accountOfHint(hint: string, client: { clientId: string; metadata(): Record<string, unknown> }): Promise<string | undefined>;
  /** A request was saved for an account: record it. A failure withdraws the request (the client gets an error). */
  requested(request: { id: string; accountId: string; clientId: string; scope: string; claims: Record<string, unknown> }, client: { clientName?: string | undefined; metadata(): Record<string, unknown> }): Promise<void>;
}

/** A service that named too many unknown citizens waits (CibaHooks.accountOfHint throws it). */
export class TooManyUnknownHints extends Error {
  constructor(readonly retryAfter: number) {
    super('too many unknown login hints');
  }
}

/**
 * The longest binding_message Kapija accepts, in characters: a short code the citizen compares
 * between the service's screen and the account portal (CIBA Core §7.1 asks for "relatively small").
 */
export const BINDING_MESSAGE_MAX = 64;
/**
 * Letters (any script), marks, digits, punctuation, symbols and spaces. Control and format
 * characters (bidirectional overrides among them, which could make the portal show a message other
 * than the service's) are refused. Markup is allowed and shown escaped, as text.
 */
const BINDING_MESSAGE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]+$/u;

/**
 * User codes are nine digits (`123-456-789`): a television remote or a numeric keypad can type
 * them, and a citizen on a Cyrillic keyboard never has to switch scripts. About 30 bits (RFC 8628
 * §6.1), against guessing held back by the per-address throttle on the code page.
 */
export const USER_CODE = { charset: 'digits', mask: '***-***-***' } as const;

/** A release of personal data to a service: which claims, through which channel. */
export interface Release { accountId: string; clientId: string; claims: string[]; channel: 'id_token' | 'userinfo' | 'introspection' }

export interface ProviderDeps {
  config: Config;
  adapter: AdapterConstructor | AdapterWithHeldWrites;
  keys: KeySet;
  findAccount: Configuration['findAccount'];
  pages: ProviderPages;
  logger: Logger;
  /**
   * Called for every release of personal data to a service (the citizen's ledger records it);
   * `recorded` when its ledger entry was already written with the tokens (see releaseRecord). When
   * it was not, a failure here withholds the response (503): nothing leaves without its entry.
   */
  onRelease?(release: Release & { recorded: boolean }): Promise<void>;
  /**
   * The ledger entry of a token response's release, written in one step with the tokens it carries
   * (the adapter's held writes), so no token leaves without its entry.
   */
  releaseRecord?(release: Release): AuditEntryInput;
  /** The pairwise subject of an account within a sector (see createPairwiseSubject). */
  pairwiseSubject(sector: string, accountId: string): string;
  /**
   * The account's newest live grant for a client, from any earlier session: its id and stored
   * payload, with the claims the citizen refused to the service (store/consent-refusals.ts).
   */
  findGrant(accountId: string, clientId: string): Promise<{ id: string; payload: Record<string, unknown>; refused: ReadonlySet<string> } | undefined>;
  /** The identity level in force for an account (identity/service.ts), which caps what a session may assert. */
  identityLevel?(accountId: string): Promise<IdentityLevel>;
  /** Introspection of a token the client may see: false answers inactive; it may add to the token's `extra` (mandates). */
  introspecting?(ctx: KoaContextWithOIDC, token: { grantId?: string; clientId?: string; accountId?: string; extra?: Record<string, unknown> }): Promise<boolean>;
  /** Whether a grant was made under a mandate (mandates/service.ts): the next authorization signs in again. */
  representationGrant?(grantId: string, clientId: string): Promise<boolean>;
  /** The PID issuer's engine configuration (wallet/issuer/engine.ts); without it OpenID4VCI is off. */
  wallet?: {
    features: Pick<NonNullable<Configuration['features']>, 'openid4vci' | 'resourceIndicators'>;
    tokenClaims(ctx: KoaContextWithOIDC | undefined, token: unknown): Record<string, unknown> | undefined;
    ttl: { PreAuthorizedCode: number };
  };
  /** CIBA (poll and ping): off without it. */
  ciba?: CibaHooks;
}

/**
 * oidc-provider's default prompts, plus a login check that asks for more when the session's level
 * is below what the client requires (its registered minimum or `acr_values`): the interaction then
 * steps the citizen up with the missing factor instead of refusing.
 */
export function createPolicy(checks: { identityLevel?: (accountId: string) => Promise<IdentityLevel>; representationGrant?: ProviderDeps['representationGrant'] } = {}): interactionPolicy.Prompt[] {
  const { identityLevel, representationGrant } = checks;
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  // A session signed in above what the identity now supports (its proofing expired since it began;
  // a revocation ends such sessions at once) is not reused: the citizen signs in again and the
  // sign-in is asserted at the level the identity supports.
  if (identityLevel) {
    login.checks.add(
      new interactionPolicy.Check('kapija_identity', 'the identity no longer supports the session’s level of assurance', 'login_required', async (ctx) => {
        const { oidc } = ctx;
        const at = levelOfAcr(oidc.session?.acr);
        if (!oidc.session?.accountId || !at || at === 'low') return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const ceiling = honestLevel('high', await identityLevel(oidc.session.accountId));
        return rank(at) > rank(ceiling) ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
      }),
    );
  }
  // A session that last acted for someone at this service (its grant was made under a mandate)
  // signs in again, so that each authorization asks anew for whom the citizen acts.
  if (representationGrant) {
    login.checks.add(
      new interactionPolicy.Check('kapija_represent', 'the choice of whom to act for is made at each sign-in', async (ctx) => {
        const { oidc } = ctx;
        const clientId = oidc.client?.clientId;
        if (!oidc.session?.accountId || !clientId || oidc.result?.login || oidc.result?.consent) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const grantId = oidc.session.grantIdFor(clientId);
        return grantId && (await representationGrant(grantId, clientId)) ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
      }),
    );
  }
  login.checks.add(
    new interactionPolicy.Check('kapija_acr', 'a higher level of assurance is required', (ctx) => {
      const { oidc } = ctx;
      if (!oidc.session?.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const required = requiredLevel({
        acrValues: oidc.params?.acr_values,
        clientMinimum: oidc.client?.metadata()['kapija_min_acr'],
      });
      const current = levelOfAcr(oidc.session.acr) ?? 'low';
      return rank(current) < rank(required) ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}

/** A client's own token lifetime, when the administrators set one. */
function clientTtl(client: { metadata(): Record<string, unknown> } | undefined, key: string): number | undefined {
  const v = client?.metadata()[key];
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

export function createProvider({ config, adapter, keys, findAccount, pages, logger, findGrant, onRelease, releaseRecord, pairwiseSubject, identityLevel, representationGrant, introspecting, wallet, ciba }: ProviderDeps): Provider {
  const configuration: Configuration = {
    adapter,
    findAccount,
    jwks: keys.jwks as Configuration['jwks'],
    cookies: {
      keys: keys.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
      names: { session: hostCookie('kapija.session', config.issuer.startsWith('https://')), interaction: 'kapija.interaction', resume: 'kapija.resume' },
    },
    // How the citizen signed in (acr, amr, auth_time) is part of every ID token, not a personal claim.
    claims: {
      ...SCOPE_CLAIMS,
      // act, mandate_id, mandate_purposes: only in tokens made under a mandate (mandates/represented-account.ts).
      openid: [...SCOPE_CLAIMS.openid, 'acr', 'amr', 'auth_time', 'act', 'mandate_id', 'mandate_purposes'],
      sid: null,
      // OpenID Connect for Identity Assurance: asked for in the claims parameter only (identity/verified-claims.ts).
      verified_claims: null,
    } as unknown as Configuration['claims'],
    // kapija:admin: the admin API (src/admin/), granted only to clients that list it and to accounts with a role.
    scopes: ['openid', 'offline_access', 'profile', 'email', 'jmbg', 'kapija:admin'],
    // An admin API token carries how and when its holder signed in (the grant's acr and auth_time,
    // RFC 9068 §2.2.1), so the API holds it to the console's level and freshness (admin/auth.ts).
    extraTokenClaims: (ctx, token) => {
      if (!String((token as { scope?: string }).scope ?? '').split(' ').includes('kapija:admin')) return wallet?.tokenClaims(ctx as KoaContextWithOIDC | undefined, token);
      const entities = (ctx as KoaContextWithOIDC | undefined)?.oidc?.entities;
      if (!entities) return (token as { extra?: Record<string, unknown> }).extra;
      const source = (entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode ?? entities.BackchannelAuthenticationRequest) as { acr?: string; authTime?: number } | undefined;
      return { acr: source?.acr ?? null, auth_time: source?.authTime ?? null };
    },
    acrValues: [ACR.low, ACR.substantial, ACR.high],
    discovery: { claim_types_supported: ['normal'], ...IDENTITY_ASSURANCE_DISCOVERY },
    extraClientMetadata: {
      properties: EXTRA_CLIENT_PROPERTIES,
      validator(_ctx, key, value) {
        validateExtraClientProperty(key, value);
      },
    },
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      // Privacy by default: each sector (a service's host, or the sector an administrator groups
      // services under) sees its own identifier, so two services cannot link a citizen.
      subject_type: 'pairwise',
    },
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: async (_ctx, accountId, client) =>
      pairwiseSubject(String(client.metadata()['kapija_sector'] ?? client.sectorIdentifier ?? client.clientId), accountId),
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    pkce: {
      // S256 only, and required of every client, confidential ones too (RFC 9700 §2.1.1, OAuth 2.1):
      // a client secret does not stop a stolen or injected code from being redeemed by its client.
      required: () => true,
    },
    // Cross-origin token and userinfo calls: only from an origin of one of the client's redirect URIs,
    // for public clients (and userinfo); never from the opaque origin "null" (sandboxes, file:, data:).
    clientBasedCORS: (ctx, origin, client) =>
      origin !== 'null' &&
      (ctx.oidc.route === 'userinfo' || client.clientAuthMethod === 'none') &&
      (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin),
    features: { ...engineFeatures(pages, introspecting, ciba), ...wallet?.features } as Configuration['features'],
    // Consent is remembered per citizen and service, not per browser session: what was granted in an
    // earlier session is copied into a grant of this session's own, so ending one session (which
    // revokes its grants and their tokens) never reaches into another. So are the claims the citizen
    // refused to the service: they stay refused, and are not asked again, in every later session.
    // Claims the service asks for (`claims` parameter) outside its registered scopes are marked not
    // granted, so no consent page asks for them; they are never released (claims-policy.ts).
    loadExistingGrant: existingGrantLoader(findGrant),
    // A used refresh token is always exchanged for a new one; presenting the old one again revokes the grant.
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: { ...ttlPolicy(config), ...wallet?.ttl },
    // A path, never a host: the browser stays on the origin it reached Kapija at (see http/origin.ts).
    interactions: {
      // Resumed after a step (the login), the next page (consent) keeps the language of the pages
      // before it, which every one of them remembered (lang= on Kapija's links and redirects).
      url: (ctx, interaction) => {
        const kept = ctx.oidc.result ? LOCALES.find((l) => l === ctx.cookies.get(hostCookie(LOCALE_COOKIE, config.issuer.startsWith('https://')))) : undefined;
        return `/interaction/${interaction.uid}${kept ? `?lang=${kept}` : ''}`;
      },
      policy: createPolicy({ identityLevel, representationGrant }),
    },
    renderError: async (ctx, out, err) => {
      // oidc-provider's shared error handler renders before it emits `server_error`, so the outage
      // flag set by the listener below would come too late for the page: decide here as well.
      if (isUnavailableError(err)) ctx.state.kapijaUnavailable = true;
      // The authorization endpoint renders even for a client that asked for JSON: the page answers
      // by the same Accept rule as every other error (http/error-handler.ts).
      pages.error(ctx as unknown as Context, out, err);
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
      userinfoSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
      introspectionSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      dPoPSigningAlgValues: ['ES256', 'EdDSA'],
    },
    // oidc-provider refuses outgoing requests to loopback and private addresses (SSRF protection).
    // Only tests and local development may lift that, and config.ts refuses it in production.
    fetch: config.allowPrivateNetworkFetch
      ? (url, options) => {
          const { dispatcher: _ssrfGuard, ...rest } = options as RequestInit & { dispatcher?: unknown };
          return globalThis.fetch(url, rest);
        }
      : (url, options) => {
          // oidc-provider only warns and sends unguarded when it cannot build its SSRF-checking
          // dispatcher (lib/helpers/fetch_request.js, e.g. inside a vm context); Kapija fails closed.
          if (!(options as { dispatcher?: unknown }).dispatcher) {
            return Promise.reject(new Error('outgoing request refused: SSRF protection is unavailable'));
          }
          return globalThis.fetch(url, options);
        },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  provider.maxIpsCount = config.trustProxy ? config.trustProxyHops : 0;
  hookEngine(provider, { config, logger, adapter, onRelease, releaseRecord });
  return provider;
}

/** oidc-provider's loadExistingGrant: consent carried over from an earlier session (see the comment at its use). */
function existingGrantLoader(findGrant: ProviderDeps['findGrant']): NonNullable<Configuration['loadExistingGrant']> {
  return async (ctx) => {
    const { Grant } = ctx.oidc.provider;
    const clientId = ctx.oidc.client!.clientId;
    const withholdUnregistered = <G extends InstanceType<typeof Grant> | undefined>(grant: G): G => {
      const receivable = receivableClaims(ctx.oidc.client);
      const outside = [...ctx.oidc.requestParamClaims].filter((c) => !receivable.has(c) && !PROTOCOL_CLAIMS.has(c));
      if (grant && outside.length) grant.rejectOIDCClaims(outside);
      return grant;
    };
    const current = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(clientId);
    if (current) return withholdUnregistered(await Grant.find(current));
    const accountId = ctx.oidc.session!.accountId;
    // Kapija's own pages (account portal, administration) need no consent to know who signed in.
    if (accountId && ctx.oidc.client!.metadata()['kapija_first_party'] === true) {
      const own = new Grant({ accountId, clientId });
      own.addOIDCScope('openid');
      await own.save();
      return own;
    }
    // A wallet asks anew for every credential: nothing is carried over from an earlier session.
    if (ctx.oidc.client!.metadata()['kapija_wallet'] === true) return undefined;
    // The earlier grant as it was listed (live, this account's, this client's): read once, not again
    // by id, with the claims refused to the client (read in the same statement).
    const stored = accountId ? await findGrant(accountId, clientId) : undefined;
    const earlier = stored ? new Grant({ ...stored.payload, jti: stored.id } as ConstructorParameters<typeof Grant>[0]) : undefined;
    if (!stored || !earlier || !accountId) return undefined;
    const grant = new Grant({ accountId, clientId });
    const scope = earlier.getOIDCScope();
    if (scope) grant.addOIDCScope(scope);
    const claims = earlier.getOIDCClaims();
    if (claims.length) grant.addOIDCClaims(claims);
    if (stored.refused.size) grant.rejectOIDCClaims([...stored.refused]);
    for (const [indicator, value] of Object.entries((earlier as unknown as { resources?: Record<string, string> }).resources ?? {})) {
      grant.addResourceScope(indicator, value);
    }
    await grant.save();
    return withholdUnregistered(grant);
  };
}


/** The engine's optional features, as Kapija runs them; the sign-out pages are Kapija's. */
function engineFeatures(pages: ProviderPages, introspecting?: ProviderDeps['introspecting'], ciba?: CibaHooks): Configuration['features'] {
  return {
    devInteractions: { enabled: false },
    introspection: {
      enabled: true,
      // A client learns about its own tokens only; a registered resource server may ask about any.
      allowedPolicy: async (ctx, client, token) =>
        (token.clientId === client.clientId || (client.clientAuthMethod !== 'none' && client.metadata()['kapija_resource_server'] === true)) &&
        (!introspecting || (await introspecting(ctx, token as unknown as Parameters<NonNullable<typeof introspecting>>[1]))),
    },
    revocation: {
      enabled: true,
      // RFC 7009 §2.1: a client may revoke only tokens issued to it.
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    userinfo: { enabled: true },
    clientCredentials: { enabled: true },
    // RFC 8628 for televisions and kiosks: the citizen signs in (both factors, consent) on another
    // device's browser, through the same interaction pages. Clients opt in with the grant type.
    deviceFlow: pages.device
      ? {
          enabled: true,
          ...USER_CODE,
          userCodeInputSource: async (ctx, _form, _out, err) => pages.device!.input(ctx, err),
          userCodeConfirmSource: async (ctx, _form, _client, _deviceInfo, userCode) => pages.device!.confirm(ctx, userCode),
          successSource: async (ctx) => pages.device!.success(ctx),
        }
      : { enabled: false },
    ciba: ciba ? cibaFeature(ciba) : { enabled: false },
    backchannelLogout: { enabled: true },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
    requestObjects: { enabled: true, requireSignedRequestObject: false },
    dPoP: { enabled: true },
    claimsParameter: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        // The confirmation form ends at the service's registered post-logout URI (checked by the engine).
        allowFormActionTo(ctx as unknown as Context, ctx.oidc.params?.post_logout_redirect_uri);
        pages.logout(ctx as unknown as Context, form);
      },
      postLogoutSuccessSource: async (ctx) =>
        pages.logoutDone(
          ctx as unknown as Context,
          ctx.oidc.client
            ? serviceName(ctx.oidc.client.metadata() as Record<string, unknown>, (ctx as unknown as Context).state.locale as Locale, ctx.oidc.client.clientName ?? ctx.oidc.client.clientId)
            : undefined,
        ),
    },
  };
}

/**
 * CIBA in poll and ping mode (push is not offered: it would hand tokens to an endpoint unasked).
 * Requests are signed or not, as the client registered (`backchannel_authentication_request_signing_alg`);
 * the client always authenticates, and ping notifications go only to https endpoints (the engine's
 * rule), through the same SSRF guard as back-channel logout.
 */
function cibaFeature(hooks: CibaHooks): NonNullable<Configuration['features']>['ciba'] {
  return {
    enabled: true,
    deliveryModes: ['poll', 'ping'],
    // An opaque login_hint_token would need an agreed format; Kapija takes login_hint and id_token_hint.
    processLoginHintToken: async () => {
      throw new errors.InvalidRequest('login_hint_token is not supported; use login_hint or id_token_hint');
    },
    processLoginHint: async (ctx, hint) => {
      if (typeof hint !== 'string' || hint.length > 254) return undefined;
      try {
        return await hooks.accountOfHint(hint, ctx.oidc.client!);
      } catch (err) {
        if (!(err instanceof TooManyUnknownHints)) throw err;
        ctx.set('retry-after', String(err.retryAfter));
        throw Object.assign(new errors.CustomOIDCProviderError('slow_down', 'too many requests named no citizen; retry later'), { status: 429, statusCode: 429 });
      }
    },
    // No user code is set up between the citizen and a service: a request carrying one is refused,
    // not silently treated as if the code had been checked.
    verifyUserCode: async (ctx, _account, userCode) => {
      if (userCode !== undefined) throw new errors.InvalidRequest('user_code is not supported');
      // The last hook before the engine saves the request with its parameters: the hint has done its
      // work (the account is known), so a JMBG or an ID token is not kept in oidc_payloads with it.
      const params = ctx.oidc.params as Record<string, unknown>;
      params.login_hint = undefined;
      params.id_token_hint = undefined;
    },
    validateBindingMessage: async (_ctx, message) => {
      if (message === undefined) return;
      if (typeof message !== 'string' || message.length === 0 || [...message].length > BINDING_MESSAGE_MAX || !BINDING_MESSAGE.test(message) || message.trim() !== message) {
        throw new errors.InvalidBindingMessage(`binding_message must be 1 to ${BINDING_MESSAGE_MAX} letters, digits, punctuation or spaces, without control characters`);
      }
    },
    // Kapija defines no request_context; one is accepted (and kept with the request) only if small.
    validateRequestContext: async (_ctx, context) => {
      if (context !== undefined && (typeof context !== 'string' || context.length > 1000)) throw new errors.InvalidRequest('request_context must be at most 1000 characters');
    },
    triggerAuthenticationDevice: async (_ctx, request, account, client) => {
      const r = request as unknown as { jti: string; scope?: string; claims?: Record<string, unknown>; destroy(): Promise<void> };
      try {
        await hooks.requested({ id: r.jti, accountId: account.accountId, clientId: client.clientId, scope: r.scope ?? '', claims: r.claims ?? {} }, client);
      } catch (err) {
        // Nothing waits for the citizen unless it is in their ledger.
        await r.destroy().catch(() => undefined);
        throw err;
      }
    },
  };
}

/** The lifetime a resource server gives its access tokens (resource indicators), if any. */
function resourceTtl(token: unknown): number | undefined {
  const ttl = (token as { resourceServer?: { accessTokenTTL?: unknown } } | undefined)?.resourceServer?.accessTokenTTL;
  return typeof ttl === 'number' && Number.isSafeInteger(ttl) && ttl > 0 ? ttl : undefined;
}

/** How long each engine artefact lives (config.ts has the deployment's values). */
function ttlPolicy(config: Config): Configuration['ttl'] {
  return {
    // A token for a resource server (the PID issuer's, wallet/issuer/engine.ts) lives as long as that resource says.
    AccessToken: (_ctx, token, client) => resourceTtl(token) ?? clientTtl(client, 'kapija_access_token_ttl') ?? config.ttl.accessToken,
    AuthorizationCode: 60,
    // RFC 8628: the citizen has ten minutes to enter a device's code and sign in.
    DeviceCode: 10 * 60,
    // CIBA: ten minutes for the citizen to answer, or less when the service asks (requested_expiry).
    BackchannelAuthenticationRequest: (ctx) => {
      const requested = Number(ctx?.oidc?.params?.requested_expiry);
      return Number.isSafeInteger(requested) && requested > 0 ? Math.min(10 * 60, requested) : 10 * 60;
    },
    ClientCredentials: config.ttl.accessToken,
    IdToken: config.ttl.accessToken,
    Interaction: 30 * 60,
    // NIST 800-63B AAL2: idle and absolute limits. oidc-provider saves a loaded session again with a
    // fresh ttl on every request that uses it (lib/shared/session.js), so a fixed ttl would be an idle
    // limit only; the ttl is the idle limit, capped by what remains of the absolute one since sign-in.
    Session: (_ctx, session) => {
      const now = Math.floor(Date.now() / 1000);
      const left = (session.loginTs ?? now) + config.ttl.session - now;
      return Math.max(1, Math.min(config.ttl.sessionIdle, left));
    },
    Grant: config.ttl.refreshToken,
    RefreshToken: (_ctx, _token, client) => {
      // Public clients' refresh tokens live no longer than the session; confidential ones get the configured TTL.
      const ttl = clientTtl(client, 'kapija_refresh_token_ttl') ?? config.ttl.refreshToken;
      if (client.clientAuthMethod === 'none') return Math.min(ttl, config.ttl.session);
      return ttl;
    },
  };
}

/**
 * What Kapija adds around a built engine: outage and error reporting, response hardening, the
 * ledger of data releases and the adapter's held writes.
 */
function hookEngine(
  provider: Provider,
  { config, logger, adapter, onRelease, releaseRecord }: Pick<ProviderDeps, 'config' | 'logger' | 'adapter' | 'onRelease' | 'releaseRecord'>,
): void {

  // A database outage inside the engine is a 503 "temporarily_unavailable", not a 500.
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => {
    if (isUnavailableError(err)) {
      ctx.state.kapijaUnavailable = true;
      logger.warn({ route: ctx.oidc?.route, err: { message: err.message } }, 'database unavailable');
    } else {
      logger.error({ route: ctx.oidc?.route, err }, 'provider server error');
    }
  });
  // A response that returns to the service (form_post's self-submitting form, or a page whose form
  // ends in a redirect to it) may lead forms to the client's registered redirect URI.
  provider.use(async (ctx, next) => {
    await next();
    const { client, params } = (ctx as KoaContextWithOIDC).oidc ?? {};
    const uri = params?.redirect_uri;
    if (client && typeof uri === 'string' && client.redirectUris?.includes(uri)) allowFormActionTo(ctx as unknown as Context, uri);
  });
  // The opaque origin "null" gets no CORS grant anywhere, preflight included (the engine's CORS
  // middleware echoes whatever Origin it is sent on its open endpoints).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.get('origin') === 'null' && ctx.response.get('access-control-allow-origin') === 'null') {
      for (const name of Object.keys(ctx.response.headers)) if (name.toLowerCase().startsWith('access-control-')) ctx.remove(name);
    }
  });
  // The engine announces user codes for CIBA whatever its verifyUserCode does; Kapija takes none.
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if ((ctx as KoaContextWithOIDC).oidc?.route === 'discovery' && body && typeof body === 'object' && 'backchannel_user_code_parameter_supported' in body) {
      body.backchannel_user_code_parameter_supported = false;
    }
  });
  // RFC 7662 §2.1 / RFC 7009 §2.1 with RFC 6749 §5.2: a call without any client authentication is
  // 401 invalid_client with a challenge, not 400 invalid_request.
  provider.use(async (ctx, next) => {
    await next();
    const route = (ctx as KoaContextWithOIDC).oidc?.route;
    const body = ctx.body as { error?: string; error_description?: string } | undefined;
    if ((route === 'introspection' || route === 'revocation') && ctx.status === 400 && body?.error === 'invalid_request' && body.error_description === 'no client authentication mechanism provided') {
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: 'client authentication is required' };
      ctx.set('www-authenticate', `Basic realm="${config.issuer}"`);
    }
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.state.kapijaUnavailable && ctx.status === 500) {
      ctx.status = 503;
      ctx.set('retry-after', '5');
      if (ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body)) {
        ctx.body = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable' };
      }
    }
  });
  type ReleaseState = { kapijaRecordedRelease?: Release };
  if (onRelease) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.status !== 200 || !ctx.oidc) return;
      const recorded = (ctx.state as ReleaseState).kapijaRecordedRelease;
      const release = recorded ?? releaseOf(ctx as KoaContextWithOIDC);
      if (!release) return;
      try {
        await onRelease({ ...release, recorded: Boolean(recorded) });
      } catch (err) {
        logger.error({ err }, 'recording a data release failed');
        // Fail closed: personal data whose ledger entry could not be written is not sent.
        if (recorded) return;
        ctx.status = 503;
        ctx.set('retry-after', '5');
        ctx.set('cache-control', 'no-store');
        ctx.remove('content-length');
        ctx.type = 'json';
        ctx.body = { error: 'temporarily_unavailable', error_description: 'the service is temporarily unavailable' };
      }
    });
  }
  const { settle } = adapter as Partial<AdapterWithHeldWrites>;
  if (settle) {
    // Innermost: the held writes of a token grant land (with the ledger entry of what the response
    // releases) before the response is recorded or sent.
    provider.use(async (ctx, next) => {
      await next();
      const release = releaseRecord && ctx.status === 200 && ctx.oidc?.route === 'token' ? releaseOf(ctx as KoaContextWithOIDC) : undefined;
      if (await settle(ctx, release && releaseRecord!(release))) (ctx.state as ReleaseState).kapijaRecordedRelease = release;
    });
  }
}


/** Claims that describe the token or the sign-in, not the person. */
const PROTOCOL_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash', 'sid', 'auth_time', 'acr', 'amr', 'azp', 'scope', 'client_id', 'token_type', 'active', 'cnf', 'iss', 'gty']);

/** The personal claims a response carries: only those with a value (an absent one was not sent). */
function personalClaims(obj: Record<string, unknown>): string[] {
  return Object.entries(obj)
    .filter(([k, v]) => !PROTOCOL_CLAIMS.has(k) && v !== undefined && v !== null)
    .flatMap(([k, v]) => (k === 'verified_claims' ? verifiedClaimNames(v) : [k]))
    .sort();
}

/** `verified_claims` in the ledger: the name of each verified claim released (`verified_claims.given_name`). */
function verifiedClaimNames(v: unknown): string[] {
  const inner = (v as { claims?: Record<string, unknown> } | undefined)?.claims;
  const names = Object.keys(inner ?? {}).map((c) => `verified_claims.${c}`);
  return names.length ? names : ['verified_claims'];
}

function decodeJwtPayload(jwt: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** What a successful token, userinfo or introspection response released, and to whom. */
function releaseOf(ctx: KoaContextWithOIDC): Release | undefined {
  const { route, entities, client } = ctx.oidc;
  // Whose data a response released when it is not the token's account (a token acting for someone: mandates/represented-account.ts).
  const subjectOf = (accountId: string) => (ctx.state as { kapijaDataSubject?: Record<string, string> }).kapijaDataSubject?.[accountId] ?? accountId;
  const body = ctx.body as unknown;
  if (!client) return undefined;
  if (route === 'token' && body && typeof body === 'object' && typeof (body as { id_token?: unknown }).id_token === 'string') {
    const source = (entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode ?? entities.BackchannelAuthenticationRequest) as { accountId?: string } | undefined;
    const payload = decodeJwtPayload((body as { id_token: string }).id_token);
    if (!source?.accountId || !payload) return undefined;
    return { accountId: subjectOf(source.accountId), clientId: client.clientId, claims: personalClaims(payload), channel: 'id_token' };
  }
  if (route === 'userinfo') {
    const token = entities.AccessToken as { accountId?: string; clientId?: string } | undefined;
    const claims = typeof body === 'string' ? decodeJwtPayload(body) : (body as Record<string, unknown> | undefined);
    if (!token?.accountId || !claims) return undefined;
    return { accountId: subjectOf(token.accountId), clientId: token.clientId ?? client.clientId, claims: personalClaims(claims), channel: 'userinfo' };
  }
  if (route === 'introspection' && body && typeof body === 'object' && (body as { active?: unknown }).active === true) {
    const token = (entities.AccessToken ?? entities.RefreshToken) as { accountId?: string } | undefined;
    if (!token?.accountId) return undefined;
    return { accountId: subjectOf(token.accountId), clientId: client.clientId, claims: personalClaims(body as Record<string, unknown>), channel: 'introspection' };
  }
  return undefined;
}
