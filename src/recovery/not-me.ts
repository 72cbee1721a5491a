/**
 * "This wasn't me" (`/not-me`), from the link in a security notice: after a second factor, every
 * session and grant ends, what was added in the suspect window goes, and a new password is asked for.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { KapijaError } from '../errors.js';
import { parseBody } from '../http/guard.js';
import type { MessageKey } from '../i18n/index.js';
import { notMeForm, type PageKit, type PageDeps } from '../registration/pages.js';
import type { RegistrationAndRecovery } from '../registration/service.js';

export function notMeRoutes(router: Router, deps: PageDeps, kit: PageKit): void {
  const { service, render, throttles } = deps;
  const { t, locale, rateLimited, linkKeys, checkLinkBudget, badLink, tokenOf } = kit;

  // ---------------------------------------------------------------- "this wasn't me"

  const codeSchema = z.string().trim().min(4).max(20);

  /** "authenticator app, 10 × recovery codes": what a list of factors amounts to, for the pages. */
  const factorList = (ctx: Context, factors: { type: string }[]) => {
    const counts = new Map<string, number>();
    for (const f of factors) counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
    return [...counts].map(([type, n]) => ({ type, count: n, label: t(ctx)(`notice.factor.${type}` as MessageKey) }));
  };

  const renderNotMe = async (ctx: Context, token: string, target: NonNullable<Awaited<ReturnType<RegistrationAndRecovery['notMeTarget']>>>, error?: string) => {
    const enrolled = await deps.credentials.enrolledTypes(target.account.id);
    render(ctx, 'recovery/not-me', {
      title: t(ctx)('notme.title'),
      token,
      error,
      noFactor: !enrolled.has('totp') && !enrolled.has('recovery'),
      since: service.formatWhen(locale(ctx), target.since),
      suspect: factorList(ctx, target.suspect),
      canonicalUrl: `/not-me?token=${token}`,
    });
  };

  router.get('/not-me', async (ctx) => {
    await checkLinkBudget(ctx);
    const token = tokenOf(ctx.query.token);
    const target = token ? await service.notMeTarget(token) : undefined;
    if (!token || !target) return badLink(ctx);
    await renderNotMe(ctx, token, target);
  });

  router.post('/not-me', async (ctx) => {
    await checkLinkBudget(ctx);
    const b = parseBody(ctx, notMeForm);
    const token = tokenOf(b.token);
    const target = token ? await service.notMeTarget(token) : undefined;
    if (!token || !target) return badLink(ctx);
    const { account } = target;
    await checkLinkBudget(ctx, account.id);
    // A second factor first: whoever holds only the mailbox cannot sign the citizen out everywhere.
    const code = codeSchema.safeParse(b.code);
    let proven = false;
    if (code.success) {
      const enrolled = await deps.credentials.enrolledTypes(account.id);
      const digits = /^\d{6,8}$/.test(code.data.replace(/\s/g, ''));
      try {
        if (digits && enrolled.has('totp')) proven = Boolean(await deps.totp.verify(account.id, code.data.replace(/\s/g, '')));
        else if (enrolled.has('recovery')) proven = Boolean(await deps.recovery.verify(account.id, code.data));
      } catch (err) {
        if (!(err instanceof KapijaError) || err.status !== 401) throw err;
      }
    }
    if (!proven) {
      const after = await throttles.link.fail(linkKeys(ctx, account.id));
      if (after > 0) throw rateLimited(after);
      ctx.status = 401;
      return renderNotMe(ctx, token, target, t(ctx)('error.factor.totp.invalid_code'));
    }
    await throttles.link.succeed(linkKeys(ctx, account.id));
    const receipt = await service.secure(token, ctx.ip);
    if (!receipt) return badLink(ctx);
    const services = await Promise.all(
      receipt.deliveries.map(async (d) => {
        const client = await deps.provider.Client.find(d.clientId);
        return { clientId: d.clientId, name: client?.clientName ?? d.clientId, backchannel: d.backchannel };
      }),
    );
    render(ctx, 'recovery/not-me-done', {
      title: t(ctx)('notme.done.title'),
      sessions: receipt.sessions,
      grants: receipt.grants,
      services,
      since: service.formatWhen(locale(ctx), receipt.since),
      removed: factorList(ctx, receipt.removed),
      resetSent: receipt.resetSent,
      canonicalUrl: '/not-me',
    });
  });

}
