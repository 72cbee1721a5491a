/**
 * oidc-provider's storage adapter (the contract of node-oidc-provider `example/my_adapter.js`):
 * the Client model reads Kapija's client registry, every other model goes to `oidc_payloads`.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { OidcPayloadRepository, OidcPayload } from '../store/oidc-payloads.js';
import type { ClientRepository } from '../store/clients.js';

export type AdapterConstructor = new (name: string) => Adapter;

export function createAdapterClass(payloads: OidcPayloadRepository, clients: ClientRepository): AdapterConstructor {
  return class KnexAdapter implements Adapter {
    constructor(readonly name: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.name === 'Client') throw new Error('clients are managed through Kapija, not dynamic registration');
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
