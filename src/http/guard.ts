/**
 * One guard for what a request carries: a zod schema parses a body, a query or a form, and a
 * failure is a 400 `request.invalid` naming the first wrong field (the admin API shows it; pages
 * show their own form errors or the error page).
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { KapijaError } from '../errors.js';

/** Parses with a zod schema; a failure is a 400 naming the first wrong field. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new KapijaError('request.invalid', 400, { details: { field: issue.path.join('.'), message: issue.message } });
  }
  return result.data;
}

/** The parsed request body (bodyParser has run), or an empty object when there is none. */
export function requestBody(ctx: Context): unknown {
  return (ctx.request as { body?: unknown }).body ?? {};
}

/** The request body through a zod schema (see parseWith). */
export function parseBody<S extends z.ZodType>(ctx: Context, schema: S): z.infer<S> {
  return parseWith(schema, requestBody(ctx));
}

/** A form field as a page sends it: the string, or '' when it is absent or repeated. */
export const formString = z.string().catch('');
