/**
 * The registrar routes of the admin API, for a front-office system that checks documents itself:
 * find an account, create one for a citizen without e-mail or phone, record a document check
 * (which gives an activation code), correct and revoke a verified identity, record, list and end
 * legal representation (guardian, parent) from an official decision. They are registered on
 * the admin API's router before its administrator check, with their own: a bearer token with the
 * kapija:admin scope, an account holding the registrar role, signed in at high; a change needs a
 * sign-in from the last 10 minutes, as for administrators. The proofing rates are read by
 * administrators and auditors (registered after the administrator check).
 */
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { KapijaError } from '../errors.js';
import { bodyParser } from '../http/middleware.js';
import { isUsername } from '../http/validators.js';
import { ACR, levelOfAcr } from '../oidc/acr.js';
import type { AccountRepository } from '../store/accounts.js';
import { normaliseUsername } from '../store/accounts.js';
import type { IdentityService } from '../identity/service.js';
import type { RegistrarRoles } from '../identity/registrar.js';
import { requireFreshSignIn } from './auth.js';
import { activationBody, attributesOf, correctionBody, counterAccountBody, legalRepresentationBody, proofingOf, revocationBody } from './registrar-schemas.js';
import { inForce, type Mandate, type MandateService } from '../mandates/service.js';
import { ADMIN_SCOPE } from './service.js';

export interface RegistrarApiDeps {
  provider: Provider;
  accounts: AccountRepository;
  identity: IdentityService;
  registrars: RegistrarRoles;
  /** Legal representation (guardian, parent); without it the mandate routes answer 404. */
  mandates?: MandateService;
}

interface RegistrarActor {
  accountId: string;
  ip: string | null;
}

const REALM = 'Bearer realm="kapija-admin"';

function parse<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new KapijaError('request.invalid', 400, { details: { field: issue.path.join('.'), message: issue.message } });
  }
  return result.data;
}

/** A registrar's bearer token, signed in at high. */
export function registrarAuth(deps: () => RegistrarApiDeps | undefined) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const d = deps();
    if (!d) throw new KapijaError('request.not_found', 404);
    const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(ctx.get('authorization'));
    const token = m ? await d.provider.AccessToken.find(m[1]!) : undefined;
    if (!token || token.isExpired || token.isSenderConstrained()) {
      ctx.set('www-authenticate', m ? `${REALM}, error="invalid_token"` : REALM);
      throw new KapijaError('admin.unauthenticated', 401);
    }
    const client = token.clientId ? await d.provider.Client.find(token.clientId) : undefined;
    if (!String(token.scope ?? '').split(' ').includes(ADMIN_SCOPE) || !String(client?.scope ?? '').split(' ').includes(ADMIN_SCOPE)) {
      ctx.set('www-authenticate', `${REALM}, error="insufficient_scope", scope="${ADMIN_SCOPE}"`);
      throw new KapijaError('admin.forbidden', 403);
    }
    const account = token.accountId ? await d.accounts.findById(token.accountId) : undefined;
    if (!account || account.status !== 'active' || !(await d.registrars.isRegistrar(account.id))) throw new KapijaError('identity.registrar_required', 403);
    const extra = (token.extra ?? {}) as { acr?: unknown; auth_time?: unknown };
    // High needs the identity at high too: a token from before the registrar's proofing expired does not.
    if (levelOfAcr(extra.acr) !== 'high' || (await d.identity.levelOf(account.id)) !== 'high') {
      ctx.set('www-authenticate', `${REALM}, error="insufficient_user_authentication", error_description="a higher level of assurance is required", acr_values="${ACR.high}"`);
      throw new KapijaError('identity.registrar_required', 401);
    }
    ctx.state.adminSignIn = { authTime: typeof extra.auth_time === 'number' ? extra.auth_time : undefined };
    ctx.state.registrar = { accountId: account.id, ip: ctx.ip || null } satisfies RegistrarActor;
    await next();
  };
}

/** Registers the registrar routes (call before the administrators' check). `deps` is read per request. */
export function registerRegistrarRoutes(router: Router, deps: () => RegistrarApiDeps | undefined): void {
  const auth = registrarAuth(deps);
  const fresh = async (ctx: Context, next: Next) => {
    requireFreshSignIn(ctx);
    await next();
  };
  const registrar = (ctx: Context) => ctx.state.registrar as RegistrarActor;
  const by = (ctx: Context) => ({ actor: registrar(ctx).accountId, ip: registrar(ctx).ip });
  const d = () => deps()!;

  router.get('/registrar/accounts', auth, async (ctx) => {
    const q = parse(z.object({ q: z.string().trim().min(2).max(200) }), ctx.query);
    const found = await d().accounts.search(q.q, 20);
    ctx.body = {
      accounts: await Promise.all(
        found.filter((a) => a.status !== ('deleted' as string)).map(async (a) => ({
          id: a.id,
          username: a.username,
          email: a.email,
          status: a.status,
          identity_level: await d().identity.levelOf(a.id),
        })),
      ),
    };
  });

  router.post('/registrar/accounts', auth, fresh, bodyParser(), async (ctx) => {
    const body = parse(counterAccountBody, ctx.request.body);
    const username = normaliseUsername(body.username);
    if (!isUsername(username)) throw new KapijaError('request.invalid', 400, { details: { field: 'username' } });
    if (await d().accounts.findByUsername(username)) throw new KapijaError('request.invalid', 409, { details: { field: 'username', message: 'taken' } });
    const proofing = proofingOf(body.check, registrar(ctx).accountId);
    // Refuse a JMBG already verified elsewhere before the account exists.
    if (proofing.attributes.jmbg && (await d().identity.findAccountByVerifiedJmbg(proofing.attributes.jmbg))) {
      await d().identity.issueActivationCode(proofing, by(ctx)); // records and refuses the duplicate
    }
    // No password until the citizen activates the account with the code (/activate).
    const account = await d().accounts.create({ username, emailVerified: false }, null);
    const { code, expiresAt } = await d()
      .identity.issueActivationCode(proofing, by(ctx), { accountId: account.id })
      .catch(async (err: unknown) => {
        // The check was refused (e.g. an expired document): the account opened for it goes too.
        await d().accounts.erase(account.id);
        throw err;
      });
    ctx.status = 201;
    ctx.body = { account_id: account.id, username: account.username, activation_code: code, expires_at: expiresAt.toISOString() };
  });

  router.post('/registrar/activation-codes', auth, fresh, bodyParser(), async (ctx) => {
    const body = parse(activationBody, ctx.request.body);
    if (body.account_id && !(await d().accounts.findById(body.account_id))) throw new KapijaError('identity.not_found', 404);
    const { code, expiresAt } = await d().identity.issueActivationCode(proofingOf(body.check, registrar(ctx).accountId), by(ctx), { accountId: body.account_id });
    ctx.status = 201;
    ctx.body = { activation_code: code, expires_at: expiresAt.toISOString(), account_id: body.account_id ?? null };
  });

  router.get('/registrar/identities/:accountId', auth, async (ctx) => {
    const identity = await d().identity.find(ctx.params.accountId!);
    if (!identity) throw new KapijaError('identity.not_found', 404);
    await d().identity.recordView(identity.accountId, by(ctx));
    ctx.body = identityJson(identity);
  });

  router.patch('/registrar/identities/:accountId', auth, fresh, bodyParser(), async (ctx) => {
    const body = parse(correctionBody, ctx.request.body);
    ctx.body = identityJson(await d().identity.correct(ctx.params.accountId!, attributesOf(body.attributes), by(ctx), body.reason));
  });

  router.post('/registrar/identities/:accountId/revoke', auth, fresh, bodyParser(), async (ctx) => {
    const body = parse(revocationBody, ctx.request.body);
    if (ctx.params.accountId === registrar(ctx).accountId) throw new KapijaError('identity.own_account', 403);
    if (!(await d().identity.revoke(ctx.params.accountId!, by(ctx), body.reason))) throw new KapijaError('identity.not_found', 404);
    ctx.body = identityJson((await d().identity.find(ctx.params.accountId!))!);
  });

  registerLegalRepresentationRoutes(router, deps, auth, fresh);
}

/**
 * Legal representation for a front-office system, as at the desk (registrar-mandates.ts): record a
 * guardian's or parent's representation from an official decision, list a principal's mandates,
 * end a legal representation. The checks, the audit entries (`mandate.*`) and both citizens'
 * ledger entries are the mandate service's (mandates/service.ts), the same as the desk's.
 */
function registerLegalRepresentationRoutes(router: Router, deps: () => RegistrarApiDeps | undefined, auth: ReturnType<typeof registrarAuth>, fresh: (ctx: Context, next: Next) => Promise<void>): void {
  const mandates = () => {
    const m = deps()?.mandates;
    if (!m) throw new KapijaError('request.not_found', 404);
    return m;
  };
  const by = (ctx: Context) => {
    const r = ctx.state.registrar as RegistrarActor;
    return { actor: r.accountId, ip: r.ip };
  };
  const day = (date: string | undefined, end: boolean) => (date === undefined ? undefined : Date.parse(`${date}T${end ? '23:59:59' : '00:00:00'}Z`));

  router.get('/registrar/accounts/:accountId/mandates', auth, async (ctx) => {
    const principal = await deps()!.accounts.findById(ctx.params.accountId!);
    if (!principal) throw new KapijaError('mandate.not_found', 404);
    ctx.body = { principal_id: principal.id, mandates: (await mandates().listForPrincipal(principal.id)).map(mandateJson) };
  });

  router.post('/registrar/accounts/:accountId/mandates', auth, fresh, bodyParser(), async (ctx) => {
    const body = parse(legalRepresentationBody, ctx.request.body);
    const accounts = deps()!.accounts;
    const representative = body.representative_id !== undefined ? await accounts.findById(body.representative_id) : await accounts.findByUsername(normaliseUsername(body.representative_username!));
    // One answer for an unknown or unverified representative (the service checks the identity).
    if (!representative) throw new KapijaError('mandate.representative_invalid', 400);
    const m = await mandates().record(
      {
        principalId: ctx.params.accountId!,
        representativeId: representative.id,
        basis: body.basis,
        decisionRef: body.decision_ref,
        services: body.services ?? null,
        purposes: body.purposes,
        validFrom: day(body.valid_from, false),
        validUntil: day(body.valid_until, true),
      },
      by(ctx),
    );
    ctx.status = 201;
    ctx.body = mandateJson(m);
  });

  router.post('/registrar/mandates/:mandateId/withdraw', auth, fresh, async (ctx) => {
    // A voluntary mandate is the citizens' own: to a registrar it does not exist (the service's rule).
    ctx.body = mandateJson(await mandates().withdraw(ctx.params.mandateId!, by(ctx)));
  });
}

function mandateJson(m: Mandate) {
  return {
    id: m.id,
    principal_id: m.principalId,
    representative_id: m.representativeId,
    basis: m.basis,
    decision_ref: m.decisionRef,
    services: m.services === null ? null : [...m.services],
    purposes: [...m.purposes],
    valid_from: m.validFrom.toISOString(),
    valid_until: m.validUntil?.toISOString() ?? null,
    created_by: m.createdBy,
    created_at: m.createdAt.toISOString(),
    withdrawn_at: m.withdrawnAt?.toISOString() ?? null,
    withdrawn_by: m.withdrawnBy,
    in_force: inForce(m, Date.now()),
  };
}

/** Proofing rates per registrar, for administrators and auditors (register after their check). */
export function registerIdentityOversightRoutes(router: Router, deps: () => RegistrarApiDeps | undefined): void {
  router.get('/identity/registrar-rates', async (ctx) => {
    const d = deps();
    if (!d) throw new KapijaError('request.not_found', 404);
    const q = parse(z.object({ days: z.coerce.number().int().min(1).max(366).default(30) }), ctx.query);
    ctx.body = { days: q.days, registrars: await d.identity.proofingRates(q.days) };
  });
}

function identityJson(i: NonNullable<Awaited<ReturnType<IdentityService['find']>>>) {
  return {
    account_id: i.accountId,
    level: i.level,
    proofed_level: i.proofedLevel,
    method: i.method,
    verifier: i.verifier,
    office: i.office,
    evidence: {
      type: i.evidence.type,
      document_type: i.evidence.documentType ?? null,
      issuing_country: i.evidence.issuingCountry ?? null,
      expiry: i.evidence.expiry ?? null,
      certificate_issuer: i.evidence.certificateIssuer ?? null,
      certificate_serial: i.evidence.certificateSerial ?? null,
      time: new Date(i.evidence.time).toISOString(),
    },
    attributes: {
      given_name_cyrl: i.attributes.givenNameCyrl ?? null,
      family_name_cyrl: i.attributes.familyNameCyrl ?? null,
      given_name_latn: i.attributes.givenNameLatn ?? null,
      family_name_latn: i.attributes.familyNameLatn ?? null,
      birthdate: i.attributes.birthdate ?? null,
      jmbg: i.attributes.jmbg ?? null,
    },
    verified_at: i.verifiedAt.toISOString(),
    expires_at: i.expiresAt?.toISOString() ?? null,
    revoked_at: i.revokedAt?.toISOString() ?? null,
  };
}
