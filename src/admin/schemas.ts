/**
 * Request bodies of the admin API and console, as zod schemas. Client metadata is checked for
 * shape with the rules of oidc/client-metadata.ts (the service adds its URI rules: exact redirect
 * URIs, https in production); the engine then parses it too.
 */
import { z } from 'zod';
import { clientFields, clientIdSchema } from '../oidc/client-metadata.js';

type Fields = typeof clientFields;

export const clientCreateBody = z.strictObject({
  client_id: clientIdSchema,
  ...(Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.optional()])) as { [K in keyof Fields]: z.ZodOptional<Fields[K]> }),
});

/** A partial update; `null` removes a property. */
export const clientUpdateBody = z.strictObject(
  Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.nullable().optional()])) as {
    [K in keyof Fields]: z.ZodOptional<z.ZodNullable<Fields[K]>>;
  },
);

export type ClientCreateBody = z.infer<typeof clientCreateBody>;
export type ClientUpdateBody = z.infer<typeof clientUpdateBody>;

export const sessionsEndBody = z.strictObject({ sessions: z.array(z.string().min(1).max(255)).min(1).max(500) });

export const auditQuery = z.object({
  chain: z.string().max(100).optional(),
  actor: z.string().max(64).optional(),
  action: z.string().max(100).optional(),
  subject: z.string().max(36).optional(),
  client: z.string().max(255).optional(),
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
  format: z.enum(['csv', 'json']).optional(),
});

export type AuditQuery = z.infer<typeof auditQuery>;
