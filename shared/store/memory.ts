// In-memory ObjectStore with real conditional-write semantics; for unit tests.
import { checkKey, PreconditionFailedError, type ByteRange, type ListOptions, type ListPage, type ObjectInfo, type ObjectStore, type PutOptions, type StoredObject } from './types.ts';
import { toBytes } from './util.ts';

interface Entry {
  body: Uint8Array;
  etag: string;
  uploaded: number;
}

const info = (key: string, entry: Entry): ObjectInfo => ({ key, size: entry.body.byteLength, etag: entry.etag, uploaded: entry.uploaded });

export class MemoryStore implements ObjectStore {
  readonly description = 'memory';
  private readonly entries = new Map<string, Entry>();
  private nextTag = 1;

  async get(key: string, range?: ByteRange): Promise<StoredObject | null> {
    const entry = this.entries.get(checkKey(key));
    if (!entry) return null;
    const body = range ? entry.body.subarray(range.offset, range.length === undefined ? undefined : range.offset + range.length) : entry.body;
    return { ...info(key, entry), body: body.slice() };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const entry = this.entries.get(checkKey(key));
    return entry ? info(key, entry) : null;
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<ObjectInfo> {
    const existing = this.entries.get(checkKey(key));
    if (options.ifNoneMatch === '*' && existing) throw new PreconditionFailedError(key);
    if (options.ifMatch !== undefined && existing?.etag !== options.ifMatch) throw new PreconditionFailedError(key);
    const entry = { body: toBytes(body).slice(), etag: `m${this.nextTag++}`, uploaded: Date.now() };
    this.entries.set(key, entry);
    return info(key, entry);
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const limit = options.limit ?? 1000;
    const keys = [...this.entries.keys()].filter((k) => k.startsWith(prefix) && (!options.cursor || k > options.cursor)).sort();
    const page = keys.slice(0, limit);
    const objects = page.map((key) => info(key, this.entries.get(key)!));
    return { objects, cursor: keys.length > limit ? page[page.length - 1] : undefined };
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(checkKey(key));
  }
}
