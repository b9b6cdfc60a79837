// Reads a JSON request body with a size cap (413 beyond it) and a 400 naming the problem.
// An oversized body is read to its end (up to a cap) before the 413 goes out: a client still
// sending when the server answers and closes gets EPIPE instead of the 413.
import type { Context } from 'hono';
import { badRequest, tooLarge } from './runtime/errors.ts';

/** Oversized bodies beyond this are cut off rather than drained. */
const DRAIN_CAP_BYTES = 64 * 1024 * 1024;

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, already: number): Promise<void> {
  let total = already;
  while (total <= DRAIN_CAP_BYTES) {
    const { done, value } = await reader.read();
    if (done) return;
    total += value.byteLength;
  }
  await reader.cancel().catch(() => undefined);
}

export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  const body = c.req.raw.body;
  if (Number.isFinite(declared) && declared > maxBytes) {
    if (body) await drain(body.getReader(), 0);
    throw tooLarge(`body: ${declared} bytes exceed the limit of ${maxBytes} bytes`);
  }
  if (!body) throw badRequest('body: a JSON body is required');
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
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
  if (total === 0) throw badRequest('body: a JSON body is required');
  let text: string;
  if (chunks.length === 1) {
    text = new TextDecoder().decode(chunks[0]);
  } else {
    const all = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      all.set(chunk, offset);
      offset += chunk.byteLength;
    }
    text = new TextDecoder().decode(all);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`body: not valid JSON (${(error as Error).message})`);
  }
}
