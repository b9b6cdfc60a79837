// Reads a JSON request body with a size cap (413 beyond it) and a 400 naming the problem.
import type { Context } from 'hono';
import { badRequest, tooLarge } from './runtime/errors.ts';

export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(`body: ${declared} bytes exceed the limit of ${maxBytes} bytes`);
  const body = c.req.raw.body;
  if (!body) throw badRequest('body: a JSON body is required');
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
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
