// ObjectStore over any S3-compatible service (AWS S3, R2's S3 API, MinIO) via @aws-sdk/client-s3.
// Conditional writes use If-Match / If-None-Match on PutObject, which those services honour.
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { checkKey, PreconditionFailedError, type ByteRange, type ListOptions, type ListPage, type ObjectInfo, type ObjectStore, type PutOptions, type StoredObject } from './types.ts';
import { toBytes } from './util.ts';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket (no leading or trailing slash needed). */
  prefix?: string;
  client?: S3Client;
  clientConfig?: S3ClientConfig;
}

const unquote = (etag: string | undefined): string => (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export class S3Store implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ? `${options.prefix.replace(/^\/+|\/+$/g, '')}/` : '';
    this.client = options.client ?? new S3Client(options.clientConfig ?? {});
    // No trailing slash, so callers can append `/uploads/` (a folder store's description is its path).
    this.description = `s3://${this.bucket}${this.prefix ? `/${this.prefix.slice(0, -1)}` : ''}`;
  }

  private full(key: string): string {
    return this.prefix + checkKey(key);
  }

  /** The object's info with an empty body (an empty or unsatisfiable range). */
  private async emptyBody(key: string): Promise<StoredObject | null> {
    const head = await this.head(key);
    return head ? { ...head, body: new Uint8Array(0) } : null;
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject | null> {
    if (range && range.length === 0) return this.emptyBody(key);
    const Range = range ? `bytes=${range.offset}-${range.length === undefined ? '' : range.offset + range.length - 1}` : undefined;
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key), Range }));
      const body = new Uint8Array(await result.Body!.transformToByteArray());
      const total = result.ContentRange ? Number(result.ContentRange.split('/')[1]) : Number(result.ContentLength ?? body.byteLength);
      return { key, size: total, etag: unquote(result.ETag), uploaded: result.LastModified?.getTime(), body };
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || (error as Error).name === 'NoSuchKey') return null;
      if (status === 416) return this.emptyBody(key);
      throw error;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      return { key, size: Number(result.ContentLength ?? 0), etag: unquote(result.ETag), uploaded: result.LastModified?.getTime() };
    } catch (error) {
      if (statusOf(error) === 404 || (error as Error).name === 'NotFound') return null;
      throw error;
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<ObjectInfo> {
    const bytes = toBytes(body);
    try {
      const result = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: options.contentType,
          IfMatch: options.ifMatch === undefined ? undefined : `"${options.ifMatch}"`,
          IfNoneMatch: options.ifNoneMatch,
        }),
      );
      return { key, size: bytes.byteLength, etag: unquote(result.ETag), uploaded: Date.now() };
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 409 || (error as Error).name === 'PreconditionFailed') throw new PreconditionFailedError(key);
      throw error;
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const result = await this.client.send(
      // The cursor is the last key returned, resumed with StartAfter (plain S3, and it spares
      // s3rver's continuation tokens, which need a cipher Node 20's OpenSSL no longer has).
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: this.prefix + prefix,
        StartAfter: options.cursor === undefined ? undefined : this.prefix + options.cursor,
        MaxKeys: options.limit ?? 1000,
      }),
    );
    const objects = (result.Contents ?? []).map((item) => ({
      key: item.Key!.slice(this.prefix.length),
      size: Number(item.Size ?? 0),
      etag: unquote(item.ETag),
      uploaded: item.LastModified?.getTime(),
    }));
    return { objects, cursor: result.IsTruncated && objects.length > 0 ? objects[objects.length - 1]!.key : undefined };
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
  }
}
