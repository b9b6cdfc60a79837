// Request bodies, capped (413 naming the body and the limit, declared or actual) and read whole
// (400 when empty or not JSON). Two ways, for two needs:
// - admin routes: Hono's body-limit middleware before the handler (limitBody), then readBody;
// - predictions: readCappedBody streams the body under its cap inside the handler (then
//   parseJsonBody, each step timed), because the model loads while the body arrives
//   (runtime.acquireWhile). Hono's body-limit would buffer a body without Content-Length before
//   the handler starts, losing that overlap.
// A body refused from its Content-Length is read to its end (up to a cap) before the 413 goes
// out: a client still sending when the server answers and closes gets EPIPE instead of the 413.
// (Past hono/body-limit's cap, a body without Content-Length is not drained: Hono holds its reader.)
// JSON bodies are scanned once (linear, no allocation) before JSON.parse: nesting deeper than
// MAX_JSON_DEPTH is refused with a short 400, before parsing or validation can spend seconds on
// it or name every level of it in an error message.
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { endTime, startTime } from 'hono/timing';
import { concatBytes } from '../shared/bytes.ts';
import { badRequest, tooLarge } from '../shared/errors.ts';
import { tooDeepAt as scanDepth } from '../shared/json-depth.ts';

const utf8 = new TextDecoder();

/** Deepest JSON nesting a request body may have: a rank-8 tensor in a batch inside the request object is ~11. */
export const MAX_JSON_DEPTH = 32;

/** Longest excerpt of a parser's message quoted back in a 400. */
const PARSE_MESSAGE_CHARS = 200;

/** The first byte offset where nesting passes maxDepth (default MAX_JSON_DEPTH); -1 when none does. */
export const tooDeepAt = (bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): number => scanDepth(bytes, maxDepth);

/** Oversized bodies beyond this are cut off rather than drained. */
const DRAIN_CAP_BYTES = 64 * 1024 * 1024;

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, already = 0): Promise<void> {
  try {
    let total = already;
    while (total <= DRAIN_CAP_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // the client went away
  }
}

export interface LimitRules {
  /** Names the body in messages: `body`, `upload`, ... */
  field: string;
  /** Appended to the 413 message (what to do instead). */
  hint?: string;
}

/** Hono's body-limit with edgeflow's 413: the declared size when Content-Length said it. */
export function limitBody(maxBytes: number, rules: LimitRules): MiddlewareHandler {
  const hint = rules.hint ? `; ${rules.hint}` : '';
  return bodyLimit({
    maxSize: maxBytes,
    onError: async (c) => {
      const length = c.req.raw.headers.has('transfer-encoding') ? null : c.req.header('content-length');
      if (length) {
        const body = c.req.raw.body;
        if (body && !body.locked) await drain(body.getReader());
        throw tooLarge(`${rules.field}: ${Number(length)} bytes exceed the limit of ${maxBytes} bytes${hint}`);
      }
      throw tooLarge(`${rules.field}: more than the limit of ${maxBytes} bytes${hint}`);
    },
  });
}

/** The whole body (already capped by limitBody); 400 when missing or empty. */
export async function readBody(c: Context, field: string, missing: string): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = c.req.raw.body ? new Uint8Array(await c.req.arrayBuffer()) : new Uint8Array(0);
  if (bytes.byteLength === 0) throw badRequest(`${field}: ${missing}`);
  return bytes;
}

/** The body streamed in under maxBytes (declared or actual: 413); empty when there is none. */
export async function readCappedBody(c: Context, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  const body = c.req.raw.body;
  if (Number.isFinite(declared) && declared > maxBytes) {
    if (body) await drain(body.getReader());
    throw tooLarge(`body: ${declared} bytes exceed the limit of ${maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await drain(reader, total);
        throw tooLarge(`body: more than the limit of ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  }
  return concatBytes(chunks);
}

/**
 * fn's time as the Server-Timing metric `name` (ms; the route runs hono/timing). A prediction
 * reports `read` (the body arriving) and `parse` (framing and JSON.parse) this way. Workers
 * advance performance.now() only across I/O: `read` waits on I/O and counts there, `parse` is
 * pure CPU and reads 0 on Cloudflare (it is exact on Node and in local workerd).
 */
export async function timed<T>(c: Context, name: string, fn: () => T | Promise<T>): Promise<T> {
  startTime(c, name);
  try {
    return await fn();
  } finally {
    endTime(c, name, 2);
  }
}

/** The request's media type: its Content-Type without parameters, lower case; '' when absent. */
export function mediaType(c: Context): string {
  return (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** JSON text (already read) parsed; 400 when empty or not JSON. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw badRequest('body: a JSON body is required');
  const deep = tooDeepAt(bytes);
  if (deep >= 0) throw badRequest(`body: JSON nested deeper than ${MAX_JSON_DEPTH} levels (at byte ${deep})`);
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (error) {
    const message = (error as Error).message;
    const excerpt = message.length > PARSE_MESSAGE_CHARS ? `${message.slice(0, PARSE_MESSAGE_CHARS)}...` : message;
    throw badRequest(`body: not valid JSON (${excerpt})`);
  }
}

/** The body streamed in under maxBytes (declared or actual: 413) and parsed as JSON (400). */
export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  return parseJsonBody(await readCappedBody(c, maxBytes));
}
