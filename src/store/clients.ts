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

/** The changes take `trx` to be part of the caller's transaction (an audited change and its entry). */
export interface ClientRepository {
  /** @throws when the client id is taken (unique key). */
  create(metadata: ClientMetadata, secret: string | undefined, trx?: Db): Promise<void>;
  /** Metadata with `client_secret`, as oidc-provider expects; undefined for unknown or disabled clients. */
  findMetadata(clientId: string): Promise<ClientMetadata | undefined>;
  list(): Promise<ClientSummary[]>;
  /** One client, enabled or not, without its secret. */
  find(clientId: string): Promise<ClientSummary | undefined>;
  /** Replaces the metadata; the secret is kept. False for an unknown client. */
  update(clientId: string, metadata: ClientMetadata, trx?: Db): Promise<boolean>;
  /** A disabled client is unknown to the engine (every instance, from the next request). */
  setEnabled(clientId: string, enabled: boolean, trx?: Db): Promise<boolean>;
  /** Replaces the secret (undefined: none, for a client that authenticates without one). */
  rotateSecret(clientId: string, secret: string | undefined, trx?: Db): Promise<boolean>;
  delete(clientId: string, trx?: Db): Promise<boolean>;
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

/**
 * How long a client's metadata, once read, is served from this process's memory. The engine looks
 * the client up on nearly every protocol request (a query, a decryption of the secret and JSON
 * parsing); one second of reuse removes that from the hot path. This process's own writes drop the
 * entry at once; a change made by another process or instance is in force there within this time.
 */
export const CLIENT_CACHE_MS = 1000;

export function createClientRepository(db: Db, box: SecretBox, now: () => number = Date.now, opts: { cacheMs?: number } = {}): ClientRepository {
  const context = (clientId: string) => `client_secret:${clientId}`;
  const cacheMs = opts.cacheMs ?? CLIENT_CACHE_MS;
  // What is kept is the stored JSON and the opened secret: every caller parses its own object, which
  // it may change (the adapter hands it to the engine).
  type Kept = { json: string; secret: string | undefined } | undefined;
  const cache = new Map<string, { until: number; kept: Promise<Kept> }>();
  const toMetadata = (k: Kept): ClientMetadata | undefined => {
    if (!k) return undefined;
    const metadata = JSON.parse(k.json) as ClientMetadata;
    if (k.secret !== undefined) metadata.client_secret = k.secret;
    return metadata;
  };
  // After the write: a lookup that began before it and cached the old row is dropped too.
  const afterWrite = async <T>(clientId: string, write: () => Promise<T>): Promise<T> => {
    try {
      return await write();
    } finally {
      cache.delete(clientId);
    }
  };
  const read = async (clientId: string): Promise<Kept> => {
    const row = (await db('clients').where({ client_id: clientId }).first()) as Row | undefined;
    if (!row || !row.enabled) return undefined;
    return { json: row.metadata, secret: row.secret_enc ? box.openString(row.secret_enc, context(clientId)) : undefined };
  };
  return {
    async create(metadata, secret, trx = db) {
      const { client_secret: _ignored, ...rest } = metadata;
      const at = now();
      await afterWrite(metadata.client_id, () => trx('clients').insert({
        client_id: metadata.client_id,
        metadata: JSON.stringify(rest),
        secret_enc: secret ? box.seal(secret, context(metadata.client_id)) : null,
        enabled: true,
        created_at: at,
        updated_at: at,
      }));
    },
    async findMetadata(clientId) {
      if (cacheMs <= 0) return toMetadata(await read(clientId));
      // A monotonic clock: an injected or adjusted wall clock must not stretch the reuse.
      const t = performance.now();
      const hit = cache.get(clientId);
      if (hit && hit.until > t) return toMetadata(await hit.kept);
      // Concurrent lookups share one query. Only registered, enabled clients are kept (so unknown ids
      // sent by anyone cannot fill the memory); a failed read (database down, a secret that does
      // not open) is not kept either.
      const kept = read(clientId);
      const entry = { until: t + cacheMs, kept };
      cache.set(clientId, entry);
      const drop = () => void (cache.get(clientId) === entry && cache.delete(clientId));
      kept.then((k) => k === undefined && drop(), drop);
      return toMetadata(await kept);
    },
    async list() {
      const rows = (await db('clients').orderBy('client_id')) as Row[];
      return rows.map(toSummary);
    },
    async find(clientId) {
      const row = (await db('clients').where({ client_id: clientId }).first()) as Row | undefined;
      return row ? toSummary(row) : undefined;
    },
    update(clientId, metadata, trx = db) {
      const { client_secret: _ignored, ...rest } = metadata;
      return afterWrite(clientId, async () => {
        const n = await trx('clients')
          .where({ client_id: clientId })
          .update({ metadata: JSON.stringify({ ...rest, client_id: clientId }), updated_at: now() });
        return n > 0;
      });
    },
    setEnabled(clientId, enabled, trx = db) {
      return afterWrite(clientId, async () => (await trx('clients').where({ client_id: clientId }).update({ enabled, updated_at: now() })) > 0);
    },
    rotateSecret(clientId, secret, trx = db) {
      return afterWrite(clientId, async () => {
        const n = await trx('clients')
          .where({ client_id: clientId })
          .update({ secret_enc: secret ? box.seal(secret, context(clientId)) : null, updated_at: now() });
        return n > 0;
      });
    },
    delete(clientId, trx = db) {
      return afterWrite(clientId, async () => (await trx('clients').where({ client_id: clientId }).delete()) > 0);
    },
  };
}
