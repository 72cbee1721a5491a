/**
 * `/activate`: the citizen binds the identity a registrar verified to their online account with the
 * activation code handed at the counter or sent by letter. The citizen proves the account with its
 * password; an account the registrar created at the counter has none yet, and the password typed
 * here becomes its password (same policy as registration), but only while nothing else proves the
 * account (no verified identity, no factor): a passwordless account the ID card opened is never
 * given a password by whoever holds a code for it. The first sign-in after that enrols a second
 * factor as for any account without one.
 *
 * Every refusal (unknown user, wrong password, wrong, used, expired or someone else's code) gets
 * the same answer and counts against the account name and the address (rate-limit.ts tiers), so
 * codes cannot be guessed.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { KapijaError } from '../errors.js';
import type { Renderer } from '../http/render.js';
import type { Translate } from '../i18n/index.js';
import type { PasswordHasher } from '../factors/password/hasher.js';
import { checkNewPassword } from '../factors/password/policy.js';
import type { SecretBox } from '../security/crypto.js';
import { createThrottle, type ThrottleStorage } from '../security/rate-limit.js';
import { normaliseUsername, type AccountRepository } from '../store/accounts.js';
import type { IdentityService } from './service.js';

const body = z.object({
  username: z.string().trim().min(1).max(64),
  code: z.string().trim().min(1).max(40),
  password: z.string().min(1).max(1024),
});

export function createActivationRouter(deps: {
  accounts: AccountRepository;
  passwords: PasswordHasher;
  identity: IdentityService;
  /** Whether an account has a factor of its own (factors/registry.ts). */
  factors: { hasSecondFactor(accountId: string): Promise<boolean> };
  render: Renderer;
  box: SecretBox;
  throttleStorage: ThrottleStorage;
}): Router {
  const router = new Router();
  const throttle = createThrottle(deps.throttleStorage, { scope: 'activation', box: deps.box });
  const t = (ctx: Context) => ctx.state.t as Translate;
  const page = (ctx: Context, values: Record<string, string> = {}, error?: string) =>
    deps.render(ctx, 'identity/activate', { title: t(ctx)('activate.title'), values, errors: {}, error });

  router.get('/activate', (ctx) => page(ctx));

  router.post('/activate', async (ctx) => {
    const parsed = body.safeParse((ctx.request as { body?: unknown }).body);
    const username = parsed.success ? normaliseUsername(parsed.data.username) : '';
    const keys = { account: username, ip: ctx.ip };
    const wait = await throttle.retryAfter(keys);
    if (wait > 0) {
      ctx.status = 429;
      ctx.set('retry-after', String(wait));
      return page(ctx, { username }, t(ctx)('error.login.rate_limited', { seconds: wait }));
    }
    const refuse = async (message = t(ctx)('error.identity.activation_invalid')) => {
      const after = await throttle.fail(keys);
      ctx.status = after > 0 ? 429 : 400;
      if (after > 0) ctx.set('retry-after', String(after));
      return page(ctx, { username }, after > 0 ? t(ctx)('error.login.rate_limited', { seconds: after }) : message);
    };
    if (!parsed.success) return refuse();
    const found = await deps.accounts.findCredentialsByUsername(username);
    // Only an account the counter opened, which nothing proves yet, takes its password here. One the
    // ID card opened (a verified identity, no password) or one with a factor of its own is not the
    // registrar's to hand over: a code for it is redeemed with the account's password or not at all.
    const settingPassword =
      found !== undefined &&
      found.passwordHash === null &&
      found.account.status === 'active' &&
      !(await deps.identity.find(found.account.id)) &&
      !(await deps.factors.hasSecondFactor(found.account.id));
    // A password is verified either way (the same time for an unknown user).
    const ok = settingPassword || (await deps.passwords.verify(found?.passwordHash ?? undefined, parsed.data.password));
    if (!found || !ok || found.account.status !== 'active') return refuse();
    if (settingPassword && checkNewPassword(parsed.data.password, { username }) !== undefined) {
      ctx.status = 400;
      return page(ctx, { username }, t(ctx)('activate.password_problem'));
    }
    try {
      await deps.identity.redeemActivationCode(found.account.id, parsed.data.code, ctx.ip || null);
    } catch (err) {
      if (err instanceof KapijaError && err.status < 500) return refuse(t(ctx)(`error.${err.code}` as Parameters<Translate>[0]));
      throw err;
    }
    if (settingPassword) await deps.accounts.setPasswordHash(found.account.id, await deps.passwords.hash(parsed.data.password));
    await throttle.succeed(keys);
    deps.render(ctx, 'registration/message', { title: t(ctx)('activate.title'), heading: t(ctx)('activate.title'), paragraphs: [t(ctx)('activate.done')], link: { href: `/account?lang=${String(ctx.state.locale)}`, label: t(ctx)('account.identity.heading') } });
  });

  return router;
}
