/**
 * The sign-in pages behind oidc-provider's interactions (`/interaction/:uid/*`). Like
 * node-oidc-provider's `example/routes/koa.js`, the GET switches on the prompt; each POST checks that
 * its step is the one expected, then hands the result back to the engine.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { KapijaError, assertThat } from '../errors.js';
import type { Renderer } from '../http/render.js';
import { applyUiLocales } from '../http/middleware.js';
import type { Translate, Locale, MessageKey } from '../i18n/index.js';
import type { AccountRepository } from '../store/accounts.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import { acrFor, type Amr } from '../oidc/acr.js';
import { SCOPE_CLAIMS } from '../oidc/accounts.js';

export interface InteractionDeps {
  provider: Provider;
  accounts: AccountRepository;
  passwords: PasswordHasher;
  render: Renderer;
  defaultLocale: Locale;
}

const loginBody = z.object({
  username: z.string().trim().min(1).max(64),
  password: z.string().min(1).max(1024),
});

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

export function createInteractionRouter({ provider, accounts, passwords, render, defaultLocale }: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction' });

  const load = async (ctx: Context, expectedPrompt?: string): Promise<Details> => {
    let details: Details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      if ((err as { name?: string }).name === 'SessionNotFound') throw new KapijaError('interaction.expired', 400);
      throw err;
    }
    if (details.uid !== ctx.params.uid) throw new KapijaError('interaction.expired', 400);
    applyUiLocales(ctx, details.params.ui_locales as string | undefined, defaultLocale);
    if (expectedPrompt && details.prompt.name !== expectedPrompt) throw new KapijaError('interaction.invalid_step', 400);
    return details;
  };

  const clientName = async (details: Details) => {
    const client = await provider.Client.find(String(details.params.client_id));
    return client?.clientName ?? String(details.params.client_id);
  };

  const finish = async (ctx: Context, result: Parameters<Provider['interactionResult']>[2]) => {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
  };

  const renderLogin = async (ctx: Context, details: Details, extra: { error?: string; username?: string } = {}) => {
    const t = ctx.state.t as Translate;
    render(ctx, 'interaction/login', { title: t('login.title'), uid: details.uid, clientName: await clientName(details), ...extra });
  };

  router.get('/:uid', async (ctx) => {
    const details = await load(ctx);
    const t = ctx.state.t as Translate;
    switch (details.prompt.name) {
      case 'login':
        return renderLogin(ctx, details, { username: typeof details.params.login_hint === 'string' ? details.params.login_hint.slice(0, 64) : undefined });
      case 'consent': {
        const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
        const claims = new Set<string>();
        for (const scope of d.missingOIDCScope ?? []) {
          for (const c of SCOPE_CLAIMS[scope as keyof typeof SCOPE_CLAIMS] ?? []) claims.add(c);
        }
        for (const c of d.missingOIDCClaims ?? []) claims.add(c);
        const items = [...claims].map((c) => {
          const key = `consent.claim.${c}` as MessageKey;
          const text = t(key);
          return text === key ? t('consent.claim.other', { claim: c }) : text;
        });
        if ((d.missingOIDCScope ?? []).includes('offline_access')) items.push(t('consent.scope.offline_access'));
        return render(ctx, 'interaction/consent', { title: t('consent.title'), uid: details.uid, clientName: await clientName(details), items });
      }
      default:
        throw new KapijaError('interaction.invalid_step', 400);
    }
  });

  router.post('/:uid/login', async (ctx) => {
    const details = await load(ctx, 'login');
    const parsed = loginBody.safeParse((ctx.request as { body?: unknown }).body);
    const t = ctx.state.t as Translate;
    const username = parsed.success ? parsed.data.username : undefined;
    // Unknown user, wrong password and malformed input get the same answer; the hash is computed either way.
    const found = username ? await accounts.findCredentialsByUsername(username) : undefined;
    const ok = await passwords.verify(found?.passwordHash, parsed.success ? parsed.data.password : '');
    if (!ok || !found) {
      ctx.status = 401;
      return renderLogin(ctx, details, { error: t('error.login.invalid_credentials'), username });
    }
    if (found.account.status !== 'active') {
      ctx.status = 403;
      return renderLogin(ctx, details, { error: t('error.login.account_locked'), username });
    }
    if (found.passwordHash && passwords.needsRehash(found.passwordHash)) {
      await accounts.setPasswordHash(found.account.id, await passwords.hash(parsed.data!.password));
    }
    const amr: Amr[] = ['pwd'];
    await finish(ctx, { login: { accountId: found.account.id, amr, acr: acrFor(amr), remember: true } });
  });

  router.post('/:uid/confirm', async (ctx) => {
    const details = await load(ctx, 'consent');
    const { prompt, params, session } = details;
    assertThat(session?.accountId, 'interaction.invalid_step');
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: String(params.client_id) });
    assertThat(grant, 'interaction.expired');
    const d = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await finish(ctx, { consent: { grantId } });
  });

  router.post('/:uid/abort', async (ctx) => {
    await load(ctx);
    await finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' });
  });

  return router;
}
