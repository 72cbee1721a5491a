/**
 * The relying-party registry. Metadata is stored as JSON; the client secret is stored encrypted
 * (oidc-provider must compare it in plain text, so it cannot be a one-way hash).
 */
import type { Db } from './db.js';
import type { SecretBox } from '../security/crypto.js';

export type ClientMetadata = Record<string, unknown> & { client_id: string };

export interface ClientSummary {
  readonly clientId: string;
  readonly metadata: ClientMetadata;
  readonly hasSecret: boolean;
  readonly enabled: boolean;
  readonly createdAt: Date;
}

export interface ClientRepository {
  /** @throws when the client id is taken (unique key). */
  create(metadata: ClientMetadata, secret: string | undefined): Promise<void>;
  /** Metadata with `client_secret`, as oidc-provider expects; undefined for unknown or disabled clients. */
  findMetadata(clientId: string): Promise<ClientMetadata | undefined>;
  list(): Promise<ClientSummary[]>;
  /** One client, enabled or not, without its secret. */
  find(clientId: string): Promise<ClientSummary | undefined>;
  /** Replaces the metadata; the secret is kept. False for an unknown client. */
  update(clientId: string, metadata: ClientMetadata): Promise<boolean>;
  /** A disabled client is unknown to the engine (every instance, from the next request). */
  setEnabled(clientId: string, enabled: boolean): Promise<boolean>;
  /** Replaces the secret (undefined: none, for a client that authenticates without one). */
  rotateSecret(clientId: string, secret: string | undefined): Promise<boolean>;
  delete(clientId: string): Promise<boolean>;
}

interface Row {
  client_id: string;
  metadata: string;
  secret_enc: string | null;
  enabled: boolean | number;
  created_at: number | string;
}

function toSummary(r: Row): ClientSummary {
  return {
    clientId: r.client_id,
    metadata: JSON.parse(r.metadata) as ClientMetadata,
    hasSecret: r.secret_enc !== null,
    enabled: Boolean(r.enabled),
    createdAt: new Date(Number(r.created_at)),
  };
}

export function createClientRepository(db: Db, box: SecretBox, now: () => number = Date.now): ClientRepository {
  const context = (clientId: string) => `client_secret:${clientId}`;
  return {
    async create(metadata, secret) {
      const { client_secret: _ignored, ...rest } = metadata;
      const at = now();
      await db('clients').insert({
        client_id: metadata.client_id,
        metadata: JSON.stringify(rest),
        secret_enc: secret ? box.seal(secret, context(metadata.client_id)) : null,
        enabled: true,
        created_at: at,
        updated_at: at,
      });
    },
    async findMetadata(clientId) {
      const row = (await db('clients').where({ client_id: clientId }).first()) as Row | undefined;
      if (!row || !row.enabled) return undefined;
      const metadata = JSON.parse(row.metadata) as ClientMetadata;
      if (row.secret_enc) metadata.client_secret = box.openString(row.secret_enc, context(clientId));
      return metadata;
    },
    async list() {
      const rows = (await db('clients').orderBy('client_id')) as Row[];
      return rows.map(toSummary);
    },
    async find(clientId) {
      const row = (await db('clients').where({ client_id: clientId }).first()) as Row | undefined;
      return row ? toSummary(row) : undefined;
    },
    async update(clientId, metadata) {
      const { client_secret: _ignored, ...rest } = metadata;
      const n = await db('clients')
        .where({ client_id: clientId })
        .update({ metadata: JSON.stringify({ ...rest, client_id: clientId }), updated_at: now() });
      return n > 0;
    },
    async setEnabled(clientId, enabled) {
      return (await db('clients').where({ client_id: clientId }).update({ enabled, updated_at: now() })) > 0;
    },
    async rotateSecret(clientId, secret) {
      const n = await db('clients')
        .where({ client_id: clientId })
        .update({ secret_enc: secret ? box.seal(secret, context(clientId)) : null, updated_at: now() });
      return n > 0;
    },
    async delete(clientId) {
      return (await db('clients').where({ client_id: clientId }).delete()) > 0;
    },
  };
}
