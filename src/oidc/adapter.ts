/**
 * oidc-provider's storage adapter (the contract of node-oidc-provider `example/my_adapter.js`):
 * the Client model reads Kapija's client registry, every other model goes to `oidc_payloads`.
 */
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider';
import type { OidcPayloadRepository, OidcPayload, PayloadSave } from '../store/oidc-payloads.js';
import type { ClientRepository } from '../store/clients.js';

export type AdapterConstructor = new (name: string) => Adapter;

/**
 * Refresh-token rotation made atomic: oidc-provider consumes the presented refresh token, then saves
 * its successor and the access token. A failure between those writes (a database outage) would leave
 * the service with a consumed token and no usable successor, and its retry would look like reuse and
 * revoke the grant. So in a refresh-token grant the consume and the saves are held for the request
 * and written together in one step once the response is ready ({@link AdapterWithHeldWrites.settle});
 * if anything fails first, nothing is written and the presented token stays usable.
 */
interface HeldWrites {
  consumed?: { model: string; id: string };
  saves: PayloadSave[];
}
const held = new WeakMap<object, HeldWrites>();

export type AdapterWithHeldWrites = AdapterConstructor & {
  /** Writes what a refresh-token grant held, or drops it if the request failed; see above. */
  settle(ctx: { status: number; body: unknown; oidc?: unknown }): Promise<void>;
};

export function createAdapterClass(payloads: OidcPayloadRepository, clients: ClientRepository): AdapterWithHeldWrites {
  return class KnexAdapter implements Adapter {
    constructor(readonly name: string) {}

    static async settle(ctx: { status: number; body: unknown }): Promise<void> {
      const writes = held.get(ctx);
      if (!writes) return;
      held.delete(ctx);
      if (ctx.status !== 200) return; // a failed exchange leaves the presented token as it was
      if (!writes.consumed) {
        for (const x of writes.saves) await payloads.upsert(x.model, x.id, x.payload, x.expiresInSeconds);
        return;
      }
      if (await payloads.consumeAndSave(writes.consumed.model, writes.consumed.id, writes.saves)) return;
      // Another request consumed the same token first: reuse, answered as oidc-provider does.
      const grantId = writes.saves.find((x) => x.payload.grantId)?.payload.grantId;
      if (grantId) await payloads.revokeByGrantId(String(grantId));
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: 'grant request is invalid' };
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.name === 'Client') throw new Error('clients are managed through Kapija, not dynamic registration');
      const writes = heldFor(this.name);
      if (writes) {
        writes.saves.push({ model: this.name, id, payload: payload as OidcPayload, expiresInSeconds: expiresIn });
        return;
      }
      await payloads.upsert(this.name, id, payload as OidcPayload, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === 'Client') return (await clients.findMetadata(id)) as AdapterPayload | undefined;
      return (await payloads.find(this.name, id)) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await payloads.findByUserCode(this.name, userCode)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await payloads.findByUid(this.name, uid)) as AdapterPayload | undefined;
    }

    async consume(id: string): Promise<void> {
      const writes = heldFor(this.name);
      if (writes && this.name === 'RefreshToken' && !writes.consumed) {
        writes.consumed = { model: this.name, id };
        return;
      }
      await payloads.consume(this.name, id);
    }

    async destroy(id: string): Promise<void> {
      await payloads.destroy(this.name, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await payloads.revokeByGrantId(grantId);
    }
  };
}

/** The held writes of the refresh-token grant being served, for the models it writes. */
function heldFor(model: string): HeldWrites | undefined {
  if (model !== 'RefreshToken' && model !== 'AccessToken') return undefined;
  const ctx = (Provider as unknown as { ctx?: { oidc?: { route?: string; params?: { grant_type?: unknown } } } }).ctx;
  if (!ctx || ctx.oidc?.route !== 'token' || ctx.oidc.params?.grant_type !== 'refresh_token') return undefined;
  let writes = held.get(ctx);
  if (!writes) held.set(ctx, (writes = { saves: [] }));
  return writes;
}
