/**
 * The sessions page: where the citizen is signed in (device, address, services) and signing out
 * one session or all.
 */
import type Router from '@koa/router';
import { assertThat } from '../errors.js';
import { describeDevice } from '../notices/device.js';
import type { PortalKit } from './kit.js';

export function sessionsRoutes(router: Router, p: PortalKit): void {
  const { d, localName, body, fmt, citizen, requireCitizen, page } = p;
  router.get('/sessions', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    const [sessions, devices, trusted] = await Promise.all([
      d.sessions.listForAccount(me.account.id),
      d.devices.listForAccount(me.account.id),
      d.trustedBrowsers ? d.trustedBrowsers.listForAccount(me.account.id) : Promise.resolve([]),
    ]);
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
      trustedEnabled: Boolean(d.trustedBrowsers),
      trusted: trusted.map((b) => ({
        id: b.id,
        device: describeDevice(b.userAgent),
        added: fmt(ctx, b.createdAt),
        used: fmt(ctx, b.lastUsedAt),
        until: fmt(ctx, b.expiresAt),
      })),
    });
  });

  // Forgetting a remembered browser: the next sign-in there asks for the second factor again.
  router.post('/sessions/browsers/forget', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
    assertThat(d.trustedBrowsers, 'request.not_found', 404);
    if (body(ctx).all === 'yes') {
      await d.trustedBrowsers.revokeAll(me.account.id);
    } else {
      const id = body(ctx).id;
      assertThat(typeof id === 'string' && (await d.trustedBrowsers.revoke(me.account.id, id)), 'request.not_found', 404);
    }
    ctx.status = 303;
    ctx.redirect('/account/sessions');
  });

  router.post('/sessions/end', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
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
}
