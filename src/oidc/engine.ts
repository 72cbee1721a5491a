/**
 * The engine's life cycle. oidc-provider takes its signing and cookie keys at construction, so a
 * new key set means a new engine: this module builds one, serves requests with the current one,
 * and swaps in the next between two requests. Everything but the mount reaches the engine through
 * `provider`, a stable handle that always delegates to the current engine.
 */
import type { Context, Next } from 'koa';
import mount from 'koa-mount';
import type Provider from 'oidc-provider';
import type { DeviceTouches } from './adapter.js';
import type { KeySet } from './keys.js';
import { createProvider, type ProviderDeps } from './provider.js';

/** A back-channel logout the engine could not deliver, to be tried again later. */
export interface FailedLogout {
  clientId: string;
  accountId: string;
  sid: string;
}

export interface EngineDeps extends Omit<ProviderDeps, 'keys'> {
  keys: KeySet;
  /** Called with every engine built (the first and each one swapped in), e.g. to observe it. */
  onBuilt?(engine: Provider): void;
  /** RP-initiated logout: the engine delivers back-channel logout itself; what fails is handed here. */
  onBackchannelError?(delivery: FailedLogout, err: unknown): void;
}

export interface Engine {
  /** A Provider-typed handle that always reaches the current engine. */
  readonly provider: Provider;
  /** The engine serving requests now (compare before and after a request to see a swap). */
  current(): Provider;
  /** Serves a request with the current engine. */
  serve(ctx: Context, next: Next): Promise<void>;
  /** Builds an engine with `keys` and swaps it in; `onSwap` listeners run in the same step. */
  swap(keys: KeySet): void;
  /** Runs `listener` at every swap (e.g. to drop what was kept from the old engine). */
  onSwap(listener: () => void): void;
}

export function createEngine(deps: EngineDeps): Engine {
  const { onBuilt, onBackchannelError, keys, ...providerDeps } = deps;
  const build = (set: KeySet) => {
    const engine = createProvider({ ...providerDeps, keys: set });
    engine.on('backchannel.error', (_ctx: unknown, err: unknown, client: { clientId: string }, accountId: string, sid: string) => {
      onBackchannelError?.({ clientId: client.clientId, accountId, sid: sid ?? '' }, err);
    });
    onBuilt?.(engine);
    return engine;
  };
  let engine = build(keys);
  let mounted = mount(engine);
  const swapListeners: (() => void)[] = [];
  return {
    provider: delegateTo(() => engine),
    current: () => engine,
    serve: (ctx, next) => mounted(ctx, next),
    swap(next) {
      const rebuilt = build(next);
      // One synchronous step: a request is served wholly by the old engine or by the new one.
      engine = rebuilt;
      mounted = mount(rebuilt);
      for (const listener of swapListeners) listener();
    },
    onSwap: (listener) => void swapListeners.push(listener),
  };
}

/**
 * oidc-provider saves the session on every request that uses it, and the adapter touches its device
 * record with the save (oidc/adapter.ts). "Last seen" is kept to the minute: a session seen again
 * from the same device (same IP and user agent) within a minute of its last touch costs no write.
 * A touch whose save failed is forgotten, so the next save touches again.
 */
export function sessionDeviceTouches(now: () => number = Date.now): DeviceTouches {
  const recentlySeen = new Map<string, { ip: string; userAgent: string; at: number }>();
  return (session, request) => {
    const at = now();
    const seen = recentlySeen.get(session.uid);
    if (seen && seen.ip === request.ip && seen.userAgent === request.userAgent && at - seen.at < 60_000) return undefined;
    if (recentlySeen.size >= 10_000) recentlySeen.clear();
    const entry = { ...request, at };
    recentlySeen.set(session.uid, entry);
    return {
      touch: { sessionUid: session.uid, accountId: session.accountId, ...request },
      failed: () => {
        if (recentlySeen.get(session.uid) === entry) recentlySeen.delete(session.uid);
      },
    };
  };
}

/**
 * A Provider-typed handle whose every property is read from the current engine (methods bound to
 * it; model classes such as `Grant` and `Client` returned as they are).
 */
function delegateTo(current: () => Provider): Provider {
  const isClass = (v: unknown) => typeof v === 'function' && /^class\b/.test(Function.prototype.toString.call(v));
  return new Proxy({} as Provider, {
    get(_target, key) {
      const target = current();
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' && !isClass(value) ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
    set: (_target, key, value) => Reflect.set(current(), key, value),
    has: (_target, key) => Reflect.has(current(), key),
  });
}
