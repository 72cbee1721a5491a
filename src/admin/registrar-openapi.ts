/**
 * The OpenAPI description of the registrar routes (registrar-api.ts), merged into openapi.ts.
 */
const json = (schema: Record<string, unknown>) => ({ content: { 'application/json': { schema } } });
const error = (description: string) => ({ description, ...json({ $ref: '#/components/schemas/Error' }) });
const ok = (description: string, schema: Record<string, unknown> = { type: 'object' }) => ({ description, ...json(schema) });
const accountId = { name: 'accountId', in: 'path', required: true, schema: { type: 'string' }, description: 'The citizen’s account ID' };
const registrar = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, security: [{ bearer: [] }], 'x-kapija-role': 'registrar (signed in at high)', ...extra });
const errors = {
  400: error('Invalid request body (the field at fault in details), an invalid JMBG, or a mandate’s representative without a verified identity'),
  401: error('No or invalid bearer token, a sign-in below high, or one older than 10 minutes for a change'),
  403: error('Not a registrar, or a registrar acting on their own account (or recording a mandate naming them)'),
};

const name = { type: 'string', maxLength: 100 };
const date = { type: 'string', format: 'date' };
const attributes = {
  type: 'object',
  additionalProperties: false,
  properties: { given_name_cyrl: name, family_name_cyrl: name, given_name_latn: name, family_name_latn: name, birthdate: date, jmbg: { type: 'string', pattern: '^\\d{13}$' } },
};
const documentCheck = {
  type: 'object',
  additionalProperties: false,
  required: ['level', 'office', 'evidence', 'attributes'],
  properties: {
    level: { enum: ['low', 'substantial', 'high'] },
    method: { enum: ['in_person', 'remote_document', 'letter'], default: 'in_person' },
    office: { type: 'string', maxLength: 200, description: 'The office the citizen is told about (never the officer’s name)' },
    evidence: {
      type: 'object',
      additionalProperties: false,
      required: ['document_type', 'issuing_country', 'document_number', 'expiry'],
      properties: {
        document_type: { enum: ['idcard', 'passport', 'residence_permit'] },
        issuing_country: { type: 'string', pattern: '^[A-Z]{2,3}$' },
        document_number: { type: 'string', description: 'Stored only as a keyed hash' },
        expiry: date,
      },
    },
    attributes: { ...attributes, required: ['given_name_cyrl', 'family_name_cyrl', 'given_name_latn', 'family_name_latn', 'birthdate', 'jmbg'] },
  },
};
const identity = {
  type: 'object',
  properties: {
    account_id: { type: 'string' },
    level: { enum: ['none', 'low', 'substantial', 'high'], description: 'In force: none once revoked' },
    proofed_level: { enum: ['low', 'substantial', 'high'] },
    method: { type: 'string' },
    verifier: { type: 'string' },
    office: { type: ['string', 'null'] },
    evidence: { type: 'object' },
    attributes,
    verified_at: { type: 'string', format: 'date-time' },
    expires_at: { type: ['string', 'null'], format: 'date-time' },
    revoked_at: { type: ['string', 'null'], format: 'date-time' },
  },
};
const activation = { type: 'object', properties: { activation_code: { type: 'string', description: 'Shown once; single use; only its keyed hash is stored' }, expires_at: { type: 'string', format: 'date-time' } } };

const PURPOSES = ['general', 'health', 'tax', 'social', 'education', 'property'];
const mandate = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    principal_id: { type: 'string' },
    representative_id: { type: 'string' },
    basis: { enum: ['voluntary', 'guardian', 'parent'] },
    decision_ref: { type: ['string', 'null'], description: 'The official decision (legal representation only)' },
    services: { type: ['array', 'null'], items: { type: 'string' }, description: 'Client ids; null: every service that accepts representation' },
    purposes: { type: 'array', items: { enum: PURPOSES } },
    valid_from: { type: 'string', format: 'date-time' },
    valid_until: { type: ['string', 'null'], format: 'date-time' },
    created_by: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    withdrawn_at: { type: ['string', 'null'], format: 'date-time' },
    withdrawn_by: { type: ['string', 'null'] },
    in_force: { type: 'boolean' },
  },
};
const legalRepresentation = {
  type: 'object',
  additionalProperties: false,
  required: ['basis', 'decision_ref', 'purposes'],
  description: 'Exactly one of representative_id and representative_username. The representative needs a verified identity; neither party may be the registrar.',
  properties: {
    representative_id: { type: 'string' },
    representative_username: { type: 'string' },
    basis: { enum: ['guardian', 'parent'] },
    decision_ref: { type: 'string', maxLength: 200, description: 'Reference of the official decision (court, guardianship authority)' },
    purposes: { type: 'array', minItems: 1, items: { enum: PURPOSES } },
    services: { type: ['array', 'null'], items: { type: 'string' }, description: 'Client ids; left out or null: every service that accepts representation' },
    valid_from: { ...date, description: 'From the start of this day (UTC); today when left out' },
    valid_until: { ...date, description: 'To the end of this day (UTC); at most ten years; ten years when left out' },
  },
};

export const registrarPaths = {
  '/registrar/accounts/{accountId}/mandates': {
    get: registrar('A citizen’s mandates as principal: legal representation and voluntary ones, withdrawn ones too, newest first', {
      parameters: [accountId],
      responses: { 200: ok('The mandates', { type: 'object', properties: { principal_id: { type: 'string' }, mandates: { type: 'array', items: mandate } } }), 404: error('No such account'), ...errors },
    }),
    post: registrar('Record legal representation (guardian, parent) from an official decision: in both citizens’ ledgers and the audit trail', {
      parameters: [accountId],
      requestBody: { required: true, ...json(legalRepresentation) },
      responses: { 201: ok('The mandate', mandate), 404: error('No such principal account, or it is not active'), ...errors },
    }),
  },
  '/registrar/mandates/{mandateId}/withdraw': {
    post: registrar('End a legal representation (voluntary mandates are the citizens’ own and answer 404): in both ledgers and the audit trail', {
      parameters: [{ name: 'mandateId', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { 200: ok('The mandate, withdrawn', mandate), 404: error('No such legal representation in force'), ...errors },
    }),
  },
  '/registrar/accounts': {
    get: registrar('Find a citizen’s account by user name, e-mail or name', {
      parameters: [{ name: 'q', in: 'query', required: true, schema: { type: 'string', minLength: 2 } }],
      responses: { 200: ok('Accounts with their identity level'), ...errors },
    }),
    post: registrar('Create an account for a citizen without e-mail or phone, with the document check and a printed activation code', {
      requestBody: { required: true, ...json({ type: 'object', required: ['username', 'check'], properties: { username: { type: 'string' }, check: documentCheck } }) },
      responses: { 201: ok('The account and its activation code', { ...activation, properties: { ...activation.properties, account_id: { type: 'string' }, username: { type: 'string' } } }), 409: error('User name taken, or the JMBG is verified on another account (reported)'), ...errors },
    }),
  },
  '/registrar/activation-codes': {
    post: registrar('Record a document check: an activation code that binds the verified identity to the account the citizen has (account_id) or creates', {
      requestBody: { required: true, ...json({ type: 'object', required: ['check'], properties: { account_id: { type: 'string' }, check: documentCheck } }) },
      responses: { 201: ok('The activation code', activation), 409: error('The JMBG is verified on another account (reported)'), 404: error('No such account'), ...errors },
    }),
  },
  '/registrar/identities/{accountId}': {
    get: registrar('A citizen’s verified identity', { parameters: [accountId], responses: { 200: ok('The identity', identity), 404: error('No verified identity'), ...errors } }),
    patch: registrar('Correct verified attributes (the level and evidence stay)', {
      parameters: [accountId],
      requestBody: { required: true, ...json({ type: 'object', required: ['attributes', 'reason'], properties: { attributes, reason: { type: 'string' } } }) },
      responses: { 200: ok('The identity', identity), 404: error('No verified identity in force'), 409: error('The JMBG is verified on another account'), ...errors },
    }),
  },
  '/registrar/identities/{accountId}/revoke': {
    post: registrar('Revoke a verified identity (e.g. fraud): the level drops at once and sessions above it end', {
      parameters: [accountId],
      requestBody: { required: true, ...json({ type: 'object', required: ['reason'], properties: { reason: { type: 'string' } } }) },
      responses: { 200: ok('The identity, revoked', identity), 404: error('No verified identity in force'), ...errors },
    }),
  },
  '/identity/registrar-rates': {
    get: {
      summary: 'Proofings recorded by each registrar (separation of duties)',
      security: [{ bearer: [] }],
      'x-kapija-role': 'admin or auditor',
      parameters: [{ name: 'days', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 366, default: 30 } }],
      responses: { 200: ok('Per registrar: proofings and how many were revoked'), 401: errors[401], 403: error('Not an administrator or auditor') },
    },
  },
};
