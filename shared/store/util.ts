// Helpers over any ObjectStore: full listings, text/JSON reads and writes.
import type { ObjectInfo, ObjectStore, PutOptions } from './types.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? encoder.encode(body) : body;
}

/** Every object under prefix, following pagination. */
export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { cursor });
    all.push(...page.objects);
    cursor = page.cursor;
  } while (cursor);
  return all;
}

export async function getText(store: ObjectStore, key: string): Promise<{ text: string; etag: string } | null> {
  const object = await store.get(key);
  return object ? { text: decoder.decode(object.body), etag: object.etag } : null;
}

/** Reads and parses a JSON document; null when absent. Parse errors name the key. */
export async function getJson(store: ObjectStore, key: string): Promise<{ value: unknown; etag: string } | null> {
  const found = await getText(store, key);
  if (!found) return null;
  try {
    return { value: JSON.parse(found.text), etag: found.etag };
  } catch (error) {
    throw new Error(`${key} is not valid JSON: ${(error as Error).message}`);
  }
}

export function putJson(store: ObjectStore, key: string, value: unknown, options: PutOptions = {}): Promise<ObjectInfo> {
  return store.put(key, JSON.stringify(value, null, 2), { contentType: 'application/json', ...options });
}
