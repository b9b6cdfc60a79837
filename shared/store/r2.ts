// ObjectStore over a Cloudflare R2 bucket binding (Workers, or Miniflare from Node).
import type { R2Bucket, R2Object, R2PutOptions } from '@cloudflare/workers-types';
import { checkKey, PreconditionFailedError, type ByteRange, type ListOptions, type ListPage, type ObjectInfo, type ObjectStore, type PutOptions, type StoredObject } from './types.ts';
import { exactBuffer } from '../bytes.ts';
import { toBytes } from './util.ts';

function info(object: R2Object): ObjectInfo {
  return { key: object.key, size: object.size, etag: object.etag, uploaded: object.uploaded.getTime() };
}

export class R2Store implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly bucket: R2Bucket,
    name = 'r2',
  ) {
    this.description = `r2://${name}`;
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject | null> {
    const object = await this.bucket.get(checkKey(key), range ? { range: range.length === undefined ? { offset: range.offset } : { offset: range.offset, length: range.length } } : undefined);
    if (!object) return null;
    return { ...info(object), body: new Uint8Array(await object.arrayBuffer()) };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const object = await this.bucket.head(checkKey(key));
    return object ? info(object) : null;
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<ObjectInfo> {
    const bytes = toBytes(body);
    const putOptions: R2PutOptions = {};
    if (options.contentType) putOptions.httpMetadata = { contentType: options.contentType };
    // A plain R2Conditional (not Headers), so it also crosses Miniflare's Node proxy.
    if (options.ifMatch !== undefined) putOptions.onlyIf = { etagMatches: options.ifMatch };
    else if (options.ifNoneMatch) putOptions.onlyIf = { etagDoesNotMatch: '*' };
    // R2 (and Miniflare's proxy) want an ArrayBuffer holding exactly the bytes.
    const written = await this.bucket.put(checkKey(key), exactBuffer(bytes), putOptions);
    if (!written) throw new PreconditionFailedError(key);
    return info(written);
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const page = await this.bucket.list({ prefix, cursor: options.cursor, limit: options.limit ?? 1000 });
    return { objects: page.objects.map(info), cursor: page.truncated ? page.cursor : undefined };
  }

  async delete(key: string): Promise<void> {
    await this.bucket.delete(checkKey(key));
  }
}
