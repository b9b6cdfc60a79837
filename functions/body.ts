// Reads request bodies with a size cap (413 beyond it) and a 400 naming the problem.
// An oversized body is read to its end (up to a cap) before the 413 goes out: a client still
// sending when the server answers and closes gets EPIPE instead of the 413.
import type { Context } from 'hono';
import { concatBytes } from '../shared/bytes.ts';
import { badRequest, tooLarge } from '../shared/errors.ts';

const utf8 = new TextDecoder();

/** Oversized bodies beyond this are cut off rather than drained. */
const DRAIN_CAP_BYTES = 64 * 1024 * 1024;

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, already: number): Promise<void> {
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

export interface BodyRules {
  /** Names the body in messages: `body`, `upload`, ... */
  field: string;
  /** Said when the body is missing or empty. */
  missing: string;
  /** Appended to the 413 message (what to do instead). */
  hint?: string;
}

/** The whole body, refused with 413 past maxBytes (declared or actual) and 400 when empty. */
export async function readBodyBytes(c: Context, maxBytes: number, rules: BodyRules): Promise<Uint8Array<ArrayBuffer>> {
  const hint = rules.hint ? `; ${rules.hint}` : '';
  const declared = Number(c.req.header('content-length') ?? NaN);
  const body = c.req.raw.body;
  if (Number.isFinite(declared) && declared > maxBytes) {
    if (body) await drain(body.getReader(), 0);
    throw tooLarge(`${rules.field}: ${declared} bytes exceed the limit of ${maxBytes} bytes${hint}`);
  }
  if (!body) throw badRequest(`${rules.field}: ${rules.missing}`);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await drain(reader, total);
      throw tooLarge(`${rules.field}: more than the limit of ${maxBytes} bytes${hint}`);
    }
    chunks.push(value);
  }
  if (total === 0) throw badRequest(`${rules.field}: ${rules.missing}`);
  return concatBytes(chunks) as Uint8Array<ArrayBuffer>;
}

export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const bytes = await readBodyBytes(c, maxBytes, { field: 'body', missing: 'a JSON body is required' });
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (error) {
    throw badRequest(`body: not valid JSON (${(error as Error).message})`);
  }
}
