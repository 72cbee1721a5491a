/**
 * The activity page: the citizen's ledger, page by page, its chain verified, and its export (CSV
 * or JSON, signed checkpoints).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { Readable } from 'node:stream';
import type { MessageKey } from '../i18n/index.js';
import type { AuditEntry } from '../store/audit.js';
import { csvCell } from '../security/csv.js';
import { LEDGER_CSV_HEADER, ledgerChain, ledgerCsvRows, ledgerEntries, ledgerJson } from './ledger.js';
import type { PortalKit } from './kit.js';

export function activityRoutes(router: Router, p: PortalKit): void {
  const { d, t, localName, fmt, citizen, requireCitizen, page } = p;
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
    // A mandate's entries are worded for the side this ledger is on (principal or representative).
    const role = e.action.startsWith('ledger.mandate_') && typeof e.details.role === 'string' ? `.${e.details.role}` : '';
    const action = (e.action.startsWith('admin.') ? 'ledger.admin_read' : `${e.action}${role}`) as MessageKey;
    const how = typeof e.details.how === 'string' ? (`ledger.how.${e.details.how}` as MessageKey) : undefined;
    return {
      at: fmt(ctx, e.at),
      iso: e.at.toISOString(),
      what: tr(action) === action ? e.action : tr(action),
      service: e.clientId ? (names.get(e.clientId) ?? e.clientId) : '—',
      channel: typeof e.details.channel === 'string' ? tr(`ledger.channel.${e.details.channel}` as MessageKey) : how && tr(how) !== how ? tr(how) : '',
      claims,
    };
  };

  router.get('/activity', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
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

  router.get('/activity/export', requireCitizen, async (ctx) => {
    const me = citizen(ctx);
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
}
