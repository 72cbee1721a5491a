/**
 * Liveness and readiness. `/healthz` answers while the process runs; `/readyz` answers 200 only when
 * the database is reachable, every migration is applied and signing keys are loaded, so a load
 * balancer sends no traffic to an instance that could not serve it. `/metrics` is served here too,
 * unless it has a port of its own (METRICS_PORT).
 */
import type { Context, Next } from 'koa';
import type { DatabaseHealth } from '../store/health.js';
import type { Metrics } from './metrics.js';

export interface Readiness {
  readonly ready: boolean;
  readonly checks: { database: boolean; migrations: boolean; keys: boolean };
}

export interface Health {
  ready(): Promise<Readiness>;
}

export function createHealth(deps: { database: DatabaseHealth; signingKeys: () => number }): Health {
  return {
    async ready() {
      const checks = { database: false, migrations: false, keys: deps.signingKeys() > 0 };
      try {
        await deps.database.ping();
        checks.database = true;
        checks.migrations = await deps.database.migrationsCurrent();
      } catch {
        // Unreachable or failing: the checks say which step did not pass.
      }
      return { ready: checks.database && checks.migrations && checks.keys, checks };
    },
  };
}

/** Serves /healthz, /readyz and (when `metrics` is given) /metrics; passes everything else on. */
export function operationsEndpoints(opts: { health: Health; metrics?: Metrics | undefined }) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === '/healthz') {
      ctx.set('cache-control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/readyz') {
      const { ready, checks } = await opts.health.ready();
      ctx.set('cache-control', 'no-store');
      ctx.status = ready ? 200 : 503;
      // Say which check failed first, so an operator reading the probe knows where to look.
      const status = ready ? 'ready' : !checks.database ? 'database unavailable' : !checks.migrations ? 'migrations pending' : 'keys not loaded';
      ctx.body = { status, checks };
      return;
    }
    if (ctx.path === '/metrics' && opts.metrics) {
      const { contentType, body } = await opts.metrics.render();
      ctx.set('cache-control', 'no-store');
      ctx.type = contentType;
      ctx.body = body;
      return;
    }
    await next();
  };
}
