// The one map from domain error codes (shared/errors.ts) to HTTP statuses, and the error body
// every route answers with: {"error": "<message naming the problem>", ...details}. Messages are
// clipped to MAX_ERROR_CHARS: an error never echoes a huge path, body or schema path back.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { EdgeflowError, type ErrorCode } from '../shared/errors.ts';

export const HTTP_STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 409,
  too_large: 413,
  unsupported_media_type: 415,
  unconvertible: 422,
  tolerance_exceeded: 422,
  unavailable: 503,
  backend: 503,
};

/** Longest error message sent back; longer ones end with `... (N chars clipped)`. */
export const MAX_ERROR_CHARS = 1024;

export function clipMessage(message: string): string {
  return message.length <= MAX_ERROR_CHARS ? message : `${message.slice(0, MAX_ERROR_CHARS)}... (${message.length - MAX_ERROR_CHARS} chars clipped)`;
}

/**
 * The answer to a failed request: the status of a domain error's code; the response a Hono
 * middleware (bearer-auth) made for its HTTPException; else a logged 500.
 */
export function errorResponse(error: Error, c: Context): Response {
  if (error instanceof HTTPException) return error.getResponse();
  if (error instanceof EdgeflowError) return c.json({ error: clipMessage(error.message), ...error.details }, HTTP_STATUS[error.code]);
  // Hono decodes path parameters lazily: a bad %-escape (`/v1/models/%E0%A4%A`) surfaces here.
  if (error instanceof URIError) return c.json({ error: clipMessage(`the URL ${JSON.stringify(c.req.path)} has a malformed percent-encoding`) }, 400);
  console.error(`edgeflow: ${c.req.method} ${c.req.path} failed:`, error);
  return c.json({ error: clipMessage(`internal error: ${error.message}`) }, 500);
}
