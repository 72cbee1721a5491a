/**
 * The services (OpenID Connect clients) administrators register and change. Kapija's own clients
 * (the console and the account portal) are set up by Kapija alone and cannot be changed here.
 */
import { createHash, randomBytes } from 'node:crypto';
import { KapijaError } from '../errors.js';
import { ACR, levelOfAcr, type AcrLevel } from '../oidc/acr.js';
import { clientUriProblem } from '../oidc/client-metadata.js';
import type { ClientMetadata, ClientSummary } from '../store/clients.js';
import { ACCOUNT_CLIENT_ID, ADMIN_CLIENT_ID, type Actor, type AdminContext } from './context.js';
import type { ClientCreateBody, ClientUpdateBody } from './schemas.js';

export interface ClientView extends Record<string, unknown> {
  client_id: string;
  enabled: boolean;
  has_secret: boolean;
  created_at: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

function invalid(message: string): KapijaError {
  return new KapijaError('admin.client.invalid_metadata', 400, { details: { message } });
}

export function toClientView(c: ClientSummary): ClientView {
  const { client_secret: _never, ...metadata } = c.metadata;
  const minAcr = levelOfAcr(metadata['kapija_min_acr']);
  return {
    ...metadata,
    ...(minAcr ? { kapija_min_acr: minAcr } : {}),
    client_id: c.clientId,
    enabled: c.enabled,
    has_secret: c.hasSecret,
    created_at: c.createdAt.toISOString(),
  };
}

/** Kapija's URI rules (oidc/client-metadata.ts) as the admin API's error. */
function checkUris(metadata: ClientMetadata, production: boolean): void {
  const problem = clientUriProblem(metadata, production);
  if (problem) throw invalid(problem);
}

/** Turns an API body into stored metadata: acr names become eIDAS URIs, derived fields filled in. */
function normalise(input: Record<string, unknown>): ClientMetadata {
  const out: Record<string, unknown> = { ...input };
  if (typeof out.kapija_min_acr === 'string' && out.kapija_min_acr in ACR) out.kapija_min_acr = ACR[out.kapija_min_acr as AcrLevel];
  const grants = (out.grant_types as string[] | undefined) ?? ['authorization_code', 'refresh_token'];
  out.grant_types = grants;
  out.response_types = grants.includes('authorization_code') ? ['code'] : [];
  if (out.backchannel_logout_uri) out.backchannel_logout_session_required = true;
  else delete out.backchannel_logout_session_required;
  return out as ClientMetadata;
}

export function createClientAdmin(c: AdminContext) {
  const { provider, clients } = c.deps;
  const { record, atomically, requireWrite } = c;
  /** Lets the engine parse the metadata, so what it would refuse at sign-in is refused now. */
  const validate = async (metadata: ClientMetadata) => {
    if (metadata.token_endpoint_auth_method === 'private_key_jwt' && !metadata.jwks && !metadata.jwks_uri) {
      throw invalid('private_key_jwt needs jwks or jwks_uri');
    }
    if (metadata.token_endpoint_auth_method === 'none' && (metadata.grant_types as string[]).includes('client_credentials')) {
      throw invalid('a public client cannot use client_credentials');
    }
    const needsSecret = (provider.Client as unknown as { needsSecret(m: unknown): boolean }).needsSecret(metadata);
    try {
      await (provider.Client as unknown as { validate(m: unknown): Promise<void> }).validate({
        ...metadata,
        ...(needsSecret ? { client_secret: randomBytes(32).toString('base64url') } : {}),
      });
    } catch (err) {
      const e = err as { error_description?: string; message?: string };
      throw invalid(e.error_description ?? e.message ?? 'invalid client metadata');
    }
    return needsSecret;
  };

  const getClient = async (clientId: string) => {
    const c = await clients.find(clientId);
    if (!c) throw new KapijaError('admin.client.not_found', 404);
    return c;
  };
  /** A client that may be changed: Kapija's own (the console, the account portal) are set up by Kapija alone. */
  const changeableClient = async (clientId: string) => {
    if (clientId === ADMIN_CLIENT_ID || clientId === ACCOUNT_CLIENT_ID) throw new KapijaError('admin.client.protected', 409);
    const current = await getClient(clientId);
    if (current.metadata.kapija_first_party === true) throw new KapijaError('admin.client.protected', 409);
    return current;
  };
  const changedKeys = (before: Record<string, unknown>, after: Record<string, unknown>) =>
    [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).sort();

  return {
    async list(): Promise<ClientView[]> {
      return (await clients.list()).map(toClientView);
    },
    async get(clientId: string): Promise<ClientView> {
      return toClientView(await getClient(clientId));
    },
    async create(actor: Actor, body: ClientCreateBody): Promise<{ client: ClientView; client_secret?: string }> {
      requireWrite(actor);
      const metadata = normalise({
        client_name: body.client_name ?? body.client_id,
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid profile email offline_access',
        application_type: 'web',
        redirect_uris: [],
        post_logout_redirect_uris: [],
        ...body,
      });
      checkUris(metadata, c.deps.production);
      const needsSecret = await validate(metadata);
      if (await clients.find(body.client_id)) throw new KapijaError('admin.client.exists', 409);
      const secret = needsSecret ? randomBytes(32).toString('base64url') : undefined;
      await atomically(async (trx) => {
        try {
          await clients.create(metadata, secret, trx);
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === '23505' || code?.startsWith('SQLITE_CONSTRAINT')) throw new KapijaError('admin.client.exists', 409);
          throw err;
        }
        await record(actor, 'admin.client.created', { clientId: body.client_id, details: { properties: Object.keys(metadata).sort() } }, trx);
      });
      return { client: toClientView(await getClient(body.client_id)), ...(secret ? { client_secret: secret } : {}) };
    },
    async update(actor: Actor, clientId: string, body: ClientUpdateBody): Promise<{ client: ClientView; client_secret?: string }> {
      requireWrite(actor);
      const current = await changeableClient(clientId);
      const merged: Record<string, unknown> = { ...current.metadata };
      for (const [k, v] of Object.entries(body)) {
        if (v === null) delete merged[k];
        else if (v !== undefined) merged[k] = v;
      }
      const metadata = normalise(merged);
      checkUris(metadata, c.deps.production);
      const needsSecret = await validate(metadata);
      // A client that switches to a secret-based method needs a secret; one that leaves it drops it.
      const secret = needsSecret && !current.hasSecret ? randomBytes(32).toString('base64url') : undefined;
      await atomically(async (trx) => {
        await clients.update(clientId, metadata, trx);
        if (secret) await clients.rotateSecret(clientId, secret, trx);
        else if (!needsSecret && current.hasSecret) await clients.rotateSecret(clientId, undefined, trx);
        await record(actor, 'admin.client.updated', { clientId, details: { changed: changedKeys(current.metadata, metadata) } }, trx);
      });
      return { client: toClientView(await getClient(clientId)), ...(secret ? { client_secret: secret } : {}) };
    },
    async rotateSecret(actor: Actor, clientId: string): Promise<{ client_secret: string }> {
      requireWrite(actor);
      const current = await changeableClient(clientId);
      if (!current.hasSecret) throw new KapijaError('admin.client.no_secret', 409);
      const secret = randomBytes(32).toString('base64url');
      // The fingerprint lets the service confirm which secret is current, without the trail holding it.
      await atomically(async (trx) => {
        await clients.rotateSecret(clientId, secret, trx);
        await record(actor, 'admin.client.secret_rotated', { clientId, details: { fingerprint: sha256(secret).slice(0, 12) } }, trx);
      });
      return { client_secret: secret };
    },
    async setEnabled(actor: Actor, clientId: string, enabled: boolean): Promise<ClientView> {
      requireWrite(actor);
      await changeableClient(clientId);
      await atomically(async (trx) => {
        await clients.setEnabled(clientId, enabled, trx);
        await record(actor, enabled ? 'admin.client.enabled' : 'admin.client.disabled', { clientId }, trx);
      });
      return toClientView(await getClient(clientId));
    },
    async delete(actor: Actor, clientId: string): Promise<void> {
      requireWrite(actor);
      await changeableClient(clientId);
      await atomically(async (trx) => {
        await clients.delete(clientId, trx);
        await record(actor, 'admin.client.deleted', { clientId }, trx);
      });
    },
  };
}
