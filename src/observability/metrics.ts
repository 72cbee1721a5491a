/**
 * Prometheus metrics (prom-client), one registry per Kapija: sign-ins from the domain events,
 * token grants from oidc-provider's events, HTTP latency by a bounded route name, the database pool
 * and the process. Labels carry no identifier of a person and no raw URL: a route label is
 * oidc-provider's route name or the matched router path, never the request path.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventBus } from '../events.js';
import type { FactorRegistry } from '../factors/registry.js';
import type { StoreMetrics } from '../store/metrics.js';

export interface Metrics {
  readonly registry: Registry;
  /** Records a finished request's duration under its bounded route name. */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  /** Counts grants of an engine instance (called again for each rebuilt provider). */
  observeProvider(provider: Provider): void;
  /** The Prometheus text exposition. */
  render(): Promise<{ contentType: string; body: string }>;
}

const GRANT_TYPES = new Set([
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:openid:params:grant-type:ciba',
]);

/** The bounded route label of a request. */
export function routeOf(ctx: Context): string {
  const oidcRoute = (ctx as unknown as Partial<KoaContextWithOIDC>).oidc?.route;
  if (oidcRoute) return `oidc:${oidcRoute}`;
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string') return matched;
  if (ctx.path === '/healthz' || ctx.path === '/readyz' || ctx.path === '/metrics') return ctx.path;
  if (ctx.path.startsWith('/open-data/')) return '/open-data/*';
  if (ctx.path.startsWith('/static/')) return '/static/*';
  return 'other';
}

/**
 * `factors` names a finished sign-in by the factor its amr point to (the `factor` label of
 * kapija_signins_total, the same ids as a failed step's).
 */
export function createMetrics(deps: { events: EventBus; store: StoreMetrics; factors: Pick<FactorRegistry, 'factorOf'>; process?: boolean }): Metrics {
  const registry = new Registry();
  if (deps.process !== false) collectDefaultMetrics({ register: registry, prefix: 'kapija_' });

  const signins = new Counter({
    name: 'kapija_signins_total',
    help: 'Sign-in outcomes: result (success|failure), factor (second factor or failed step) and assurance level.',
    labelNames: ['result', 'factor', 'level'] as const,
    registers: [registry],
  });
  const grants = new Counter({
    name: 'kapija_token_grants_total',
    help: 'Token endpoint grants by grant type and result.',
    labelNames: ['grant_type', 'result'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'kapija_http_request_duration_seconds',
    help: 'HTTP request latency by route name, method and status class.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'kapija_db_pool_connections',
    help: 'Database pool connections by state (used, free, pending acquisitions).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const p = deps.store.pool();
      if (!p) return;
      this.set({ state: 'used' }, p.used);
      this.set({ state: 'free' }, p.free);
      this.set({ state: 'pending' }, p.pending);
    },
  });

  new Gauge({
    name: 'kapija_retry_queue_pending',
    help: 'Work kept for another attempt, by queue: mail the relay has not taken, back-channel logouts a service has not confirmed. Shared by every instance.',
    labelNames: ['queue'] as const,
    registers: [registry],
    // Every worker reads the same tables: the cluster's sum would count them once per worker.
    aggregator: 'max',
    async collect() {
      try {
        const { mail, backchannelLogout } = await deps.store.retryQueues();
        this.set({ queue: 'mail' }, mail);
        this.set({ queue: 'backchannel_logout' }, backchannelLogout);
      } catch {
        // The database is away: /readyz says so; the gauge keeps its last value.
      }
    },
  });
  const logoutRetries = new Counter({
    name: 'kapija_backchannel_logout_retries_total',
    help: 'Back-channel logouts that failed when a session ended, by what became of them: queued, retry (failed again), delivered, abandoned.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  deps.events.on('logout.delivery', ({ outcome }) => {
    logoutRetries.inc({ outcome });
  });

  deps.events.on('signin.success', ({ amr, acr }) => {
    signins.inc({ result: 'success', factor: deps.factors.factorOf(amr)?.id ?? 'other', level: levelLabel(acr) });
  });
  deps.events.on('signin.failure', ({ factor }) => {
    signins.inc({ result: 'failure', factor, level: 'none' });
  });

  const methods = new Set(['GET', 'POST', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'PATCH']);
  return {
    registry,
    observeRequest(route, method, status, seconds) {
      latency.observe({ route, method: methods.has(method) ? method : 'OTHER', status: `${Math.floor(status / 100)}xx` }, seconds);
    },
    observeProvider(provider) {
      const grantType = (ctx: KoaContextWithOIDC) => {
        const t = ctx.oidc?.params?.grant_type;
        return typeof t === 'string' && GRANT_TYPES.has(t) ? t : 'other';
      };
      provider.on('grant.success', (ctx: KoaContextWithOIDC) => grants.inc({ grant_type: grantType(ctx), result: 'success' }));
      provider.on('grant.error', (ctx: KoaContextWithOIDC) => grants.inc({ grant_type: grantType(ctx), result: 'error' }));
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** The eIDAS level name of an acr (its last path segment), bounded to known words. */
function levelLabel(acr: string): string {
  const last = acr.split('/').pop() ?? '';
  return ['low', 'substantial', 'high'].includes(last) ? last : 'other';
}
