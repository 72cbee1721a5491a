/**
 * The OpenAPI 3.1 description of the admin API, served at /admin/api/openapi.json. Written by hand;
 * test/integration/admin/api.test.ts fails when a registered route is missing from it.
 */
import { registrarPaths } from './registrar-openapi.js';

const json = (schema: Record<string, unknown>) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const ok = (description: string, schema: Record<string, unknown> = { type: 'object' }) => ({ description, ...json(schema) });
const errors = {
  400: { description: 'Invalid request body or query', ...json(ref('Error')) },
  401: { description: 'No or invalid bearer token', ...json(ref('Error')) },
  403: { description: 'Not an administrator, or an auditor attempting a change', ...json(ref('Error')) },
  404: { description: 'Not found', ...json(ref('Error')) },
};
const readErrors = { 401: errors[401], 403: errors[403] };
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const queryParam = (name: string, description: string, schema: Record<string, unknown> = { type: 'string' }) => ({ name, in: 'query', required: false, schema, description });
const clientId = pathParam('clientId', 'The client ID');
const accountId = pathParam('accountId', 'The citizen’s account ID');
const auditParams = [
  queryParam('chain', "'admin' (the administrative trail) or account:<id> (a citizen’s ledger)"),
  queryParam('actor', 'Account ID of who acted, or system / cli'),
  queryParam('action', 'Exact action, or a prefix ending in a dot'),
  queryParam('subject', 'Citizen account ID'),
  queryParam('client', 'Client ID'),
  queryParam('from', 'From (ISO date or date-time)'),
  queryParam('to', 'To (ISO date or date-time)'),
  queryParam('limit', 'At most this many entries (default 100, max 10000)', { type: 'integer' }),
  queryParam('offset', 'Skip this many entries', { type: 'integer' }),
];
const write = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, security: [{ bearer: [] }], 'x-kapija-role': 'admin', ...extra });
const read = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, security: [{ bearer: [] }], 'x-kapija-role': 'admin or auditor', ...extra });

const clientProperties = {
  client_id: { type: 'string', pattern: '^[A-Za-z0-9._~-]{1,128}$' },
  client_name: { type: 'string', maxLength: 200 },
  'client_name#sr-Cyrl': { type: 'string', maxLength: 200 },
  'client_name#sr-Latn': { type: 'string', maxLength: 200 },
  'client_name#en': { type: 'string', maxLength: 200 },
  logo_uri: { type: 'string', format: 'uri' },
  policy_uri: { type: 'string', format: 'uri' },
  kapija_claim_purposes: {
    type: 'object',
    description: 'For each claim, why the service asks for it (shown on the consent page), per language',
    additionalProperties: { type: 'object', properties: { 'sr-Cyrl': { type: 'string' }, 'sr-Latn': { type: 'string' }, en: { type: 'string' } } },
  },
  application_type: { enum: ['web', 'native'] },
  redirect_uris: { type: 'array', items: { type: 'string', format: 'uri' }, description: 'Matched exactly; https only in production (loopback http for native apps)' },
  post_logout_redirect_uris: { type: 'array', items: { type: 'string', format: 'uri' } },
  backchannel_logout_uri: { type: 'string', format: 'uri' },
  scope: { type: 'string', description: 'Space-separated scopes the service may ask for' },
  grant_types: { type: 'array', items: { enum: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:openid:params:grant-type:ciba', 'urn:ietf:params:oauth:grant-type:token-exchange'] }, description: 'urn:ietf:params:oauth:grant-type:device_code: the device authorization grant (RFC 8628), for devices without a keyboard; urn:openid:params:grant-type:ciba: backchannel authentication (OpenID Connect CIBA), the citizen approves in the account portal' },
  backchannel_token_delivery_mode: { enum: ['poll', 'ping'], description: 'CIBA: poll the token endpoint, or be notified (ping) at backchannel_client_notification_endpoint' },
  backchannel_client_notification_endpoint: { type: 'string', format: 'uri', description: 'CIBA ping: https only' },
  backchannel_authentication_request_signing_alg: { enum: ['RS256', 'PS256', 'ES256', 'EdDSA'], description: 'CIBA: backchannel authentication requests must be signed request objects with this alg' },
  kapija_ciba_jmbg_hint: { type: 'boolean', description: 'CIBA: the service may name the citizen by a JMBG verified by identity proofing' },
  token_endpoint_auth_method: { enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] },
  jwks: { type: 'object', description: 'For private_key_jwt' },
  jwks_uri: { type: 'string', format: 'uri', description: 'For private_key_jwt' },
  kapija_min_acr: { enum: ['low', 'substantial', 'high'] },
  kapija_sector_identifier_uri: { type: 'string', format: 'uri', description: 'Stored for pairwise subject identifiers' },
  subject_type: { type: 'string', enum: ['pairwise', 'public'], description: 'pairwise (default): a sub per sector; public: the account id' },
  kapija_sector: { type: 'string', description: 'Sector (host name) whose services share the pairwise sub' },
  kapija_access_token_ttl: { type: 'integer', minimum: 30 },
  kapija_refresh_token_ttl: { type: 'integer', minimum: 60 },
  kapija_resource_server: { type: 'boolean' },
  kapija_accepts_representation: { type: 'boolean' },
};

export function openApiDocument(issuer: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Kapija admin API',
      version: '1',
      description:
        'Relying-party clients, citizens, sessions and the audit trail. Bearer access tokens issued by Kapija with the kapija:admin scope, for an account with the admin role (read and write) or the auditor role (read only), from a sign-in at ADMIN_MIN_ACR; a change needs a sign-in from the last 10 minutes, else the answer is 401 with WWW-Authenticate error="insufficient_user_authentication" (RFC 9470). Every change is recorded in the audit trail.',
    },
    servers: [{ url: `${issuer}/admin/api` }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An access token issued by Kapija with scope kapija:admin' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'error_description'],
          properties: { error: { type: 'string' }, error_description: { type: 'string' }, details: { type: 'object' }, request_id: { type: 'string' } },
        },
        ClientInput: { type: 'object', additionalProperties: false, required: ['client_id'], properties: clientProperties },
        ClientUpdate: {
          type: 'object',
          additionalProperties: false,
          description: 'Only the properties given change; null removes one',
          properties: Object.fromEntries(Object.entries(clientProperties).filter(([k]) => k !== 'client_id')),
        },
        Client: {
          type: 'object',
          properties: { ...clientProperties, enabled: { type: 'boolean' }, has_secret: { type: 'boolean' }, created_at: { type: 'string', format: 'date-time' } },
        },
        Session: {
          type: 'object',
          properties: {
            uid: { type: 'string' },
            account_id: { type: 'string' },
            username: { type: ['string', 'null'] },
            login_at: { type: ['string', 'null'], format: 'date-time' },
            expires_at: { type: ['string', 'null'], format: 'date-time' },
            acr: { type: ['string', 'null'] },
            amr: { type: 'array', items: { type: 'string' } },
            clients: { type: 'array', items: { type: 'string' } },
          },
        },
        EndedSession: {
          type: 'object',
          properties: {
            uid: { type: 'string' },
            account_id: { type: 'string' },
            grants_revoked: { type: 'integer' },
            deliveries: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  clientId: { type: 'string' },
                  backchannel: { enum: ['delivered', 'failed', 'not_registered'] },
                  error: { type: 'string' },
                  attempts: { type: 'integer' },
                },
              },
            },
          },
        },
        AuditEntry: {
          type: 'object',
          properties: Object.fromEntries(
            [
              ...['id', 'chain', 'at', 'actor', 'action', 'subject_account_id', 'client_id', 'ip', 'prev_hash', 'hash'].map((k): [string, unknown] => [k, { type: ['string', 'null'] }]),
              ['seq', { type: 'integer' }],
              ['details', { type: 'object' }],
            ],
          ),
        },
      },
    },
    paths: { ...registrarPaths, ...apiPaths() },
  };
}

/** Every route of the admin API, by path (a test checks that each registered route is here). */
function apiPaths() {
  return {
    '/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: ok('OpenAPI 3.1 document') } } },
    '/me': { get: read('Who the token belongs to, and the role', { responses: { 200: ok('Account and role'), ...readErrors } }) },
    '/clients': {
      get: read('List clients (never their secrets)', { responses: { 200: ok('Clients', { type: 'object', properties: { clients: { type: 'array', items: ref('Client') } } }), ...readErrors } }),
      post: write('Register a client; a confidential client’s secret is in the response, once', {
        requestBody: { required: true, ...json(ref('ClientInput')) },
        responses: { 201: ok('Created', { type: 'object', properties: { client: ref('Client'), client_secret: { type: 'string' } } }), 409: { description: 'Client ID taken', ...json(ref('Error')) }, ...errors },
      }),
    },
    '/clients/{clientId}': {
      get: read('One client', { parameters: [clientId], responses: { 200: ok('Client', ref('Client')), ...readErrors, 404: errors[404] } }),
      patch: write('Change a client; takes effect on every instance at the next request', {
        parameters: [clientId],
        requestBody: { required: true, ...json(ref('ClientUpdate')) },
        responses: { 200: ok('Updated', { type: 'object', properties: { client: ref('Client'), client_secret: { type: 'string' } } }), ...errors },
      }),
      delete: write('Delete a client', { parameters: [clientId], responses: { 204: { description: 'Deleted' }, ...errors } }),
    },
    '/clients/{clientId}/secret': {
      post: write('Issue a new client secret (shown once); the old one stops working', { parameters: [clientId], responses: { 200: ok('The new secret'), ...errors } }),
    },
    '/clients/{clientId}/disable': { post: write('Disable a client: it is unknown to Kapija until enabled', { parameters: [clientId], responses: { 200: ok('Client', ref('Client')), ...errors } }) },
    '/clients/{clientId}/enable': { post: write('Enable a disabled client', { parameters: [clientId], responses: { 200: ok('Client', ref('Client')), ...errors } }) },
    '/citizens': {
      get: read('Search citizens by username, e-mail or name', {
        parameters: [queryParam('q', 'Search text'), queryParam('limit', 'At most this many (default 50)', { type: 'integer' })],
        responses: { 200: ok('Citizens'), ...readErrors },
      }),
    },
    '/citizens/{accountId}': {
      get: read('A citizen’s record: profile, factors (never secrets), sessions, consents. The read is recorded in the audit trail and the citizen’s ledger.', {
        parameters: [accountId],
        responses: { 200: ok('Citizen'), ...readErrors, 404: errors[404] },
      }),
      delete: write('Delete the account as the citizen can from the portal: links, queued mail, factors, devices and refusals go with the account row in one transaction (with its audit entry), then its sessions and grants end', {
        parameters: [accountId],
        responses: { 200: ok('Deleted'), ...errors },
      }),
    },
    '/citizens/{accountId}/lock': { post: write('Lock the account and end its sessions', { parameters: [accountId], responses: { 200: ok('Locked'), ...errors } }) },
    '/citizens/{accountId}/unlock': { post: write('Unlock the account', { parameters: [accountId], responses: { 200: ok('Unlocked'), ...errors } }) },
    '/citizens/{accountId}/reset-factors': {
      post: write('Remove every second factor (TOTP, WebAuthn, recovery codes); the citizen is mailed a single-use link and enrols again only through it', { parameters: [accountId], responses: { 200: ok('Removed, by type'), ...errors } }),
    },
    '/citizens/{accountId}/sign-out': {
      post: write('End every session of the citizen, revoking tokens and delivering back-channel logout', { parameters: [accountId], responses: { 200: ok('Ended sessions'), ...errors } }),
    },
    '/sessions': {
      get: read('Active sessions, optionally of one citizen or one client', {
        parameters: [queryParam('account', 'Account ID'), queryParam('client', 'Client ID')],
        responses: { 200: ok('Sessions', { type: 'object', properties: { sessions: { type: 'array', items: ref('Session') } } }), ...readErrors },
      }),
    },
    '/sessions/end': {
      post: write('End sessions by uid: each ends at Kapija, its grants’ tokens are revoked and back-channel logout tokens are delivered (retried twice); the results are recorded', {
        requestBody: { required: true, ...json({ type: 'object', required: ['sessions'], properties: { sessions: { type: 'array', items: { type: 'string' } } } }) },
        responses: { 200: ok('Results', { type: 'object', properties: { ended: { type: 'array', items: ref('EndedSession') }, not_found: { type: 'array', items: { type: 'string' } } } }), ...errors },
      }),
    },
    '/sessions/{uid}': { delete: write('End one session', { parameters: [pathParam('uid', 'Session uid')], responses: { 200: ok('Result', ref('EndedSession')), ...errors } }) },
    '/audit': {
      get: read('Audit entries, newest first', {
        parameters: auditParams,
        responses: { 200: ok('Entries', { type: 'object', properties: { total: { type: 'integer' }, entries: { type: 'array', items: ref('AuditEntry') } } }), ...readErrors, 400: errors[400] },
      }),
    },
    '/audit/export': {
      get: read('Export audit entries as CSV or JSON (the export is itself recorded)', {
        parameters: [...auditParams, queryParam('format', 'csv or json (default)', { enum: ['csv', 'json'] })],
        responses: { 200: { description: 'The entries', content: { 'text/csv': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'array', items: ref('AuditEntry') } } } }, ...readErrors },
      }),
    },
    '/audit/verify': {
      get: read('Verify the hash chains', {
        parameters: [queryParam('chain', 'Only this chain')],
        responses: { 200: ok('Result', { type: 'object', properties: { ok: { type: 'boolean' }, checked: { type: 'integer' }, firstBad: { type: 'object' } } }), ...readErrors },
      }),
    },
  };
}
