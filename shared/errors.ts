// Domain errors. Every failure a user can act on is an EdgeflowError with a code and a message
// that names the problem; the HTTP layer maps codes to statuses in one table
// (functions/http-errors.ts) and the CLI prints the message alone. Anything else is a bug.
import type { z } from 'zod';

export const ERROR_CODES = [
  'bad_request', // a malformed request, option, name, key or upload
  'unauthorized', // no or malformed credentials
  'forbidden', // wrong credentials, or the feature is disabled
  'not_found',
  'conflict', // the change would break something that exists (a label pointing at a version)
  'precondition_failed', // a conditional write lost a race
  'too_large',
  'unsupported_media_type', // a body of a content type the route does not take (an image format edgeflow cannot decode)
  'unconvertible', // the model cannot be converted as given; retrying cannot help
  'tolerance_exceeded', // the converted model drifts past the tolerance; nothing was published
  'unavailable', // try again later (a model still loading, over a budget)
  'backend', // no TF.js backend could be started as asked
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class EdgeflowError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields for the API's error body (e.g. a drift report). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'EdgeflowError';
  }
}

/** A user-facing conversion failure: the message says what is wrong with the input. */
export class ConversionError extends EdgeflowError {
  constructor(message: string, code: ErrorCode = 'unconvertible') {
    super(code, message);
    this.name = 'ConversionError';
  }
}

export const isEdgeflowError = (error: unknown, ...codes: ErrorCode[]): error is EdgeflowError => error instanceof EdgeflowError && (codes.length === 0 || codes.includes(error.code));

/** One line for a zod failure: the first issue's path and message (`files.0.size: expected number`). */
export function describeZodError(error: z.ZodError, root = 'body'): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const where = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || root;
  return `${where}: ${issue.message}`;
}

export const badRequest = (message: string) => new EdgeflowError('bad_request', message);
export const notFound = (message: string) => new EdgeflowError('not_found', message);
export const tooLarge = (message: string) => new EdgeflowError('too_large', message);
export const unavailable = (message: string) => new EdgeflowError('unavailable', message);
