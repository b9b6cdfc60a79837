// The storage seam: one small object-store interface that every backend (local folder,
// memory, R2 binding, S3) implements. It knows nothing of models.
import { EdgeflowError } from '../errors.ts';

export interface ObjectInfo {
  key: string;
  size: number;
  /** Opaque version tag; changes whenever the object's bytes change. */
  etag: string;
  /** Last write time, ms since epoch, where the backend reports it. */
  uploaded?: number;
}

export interface StoredObject extends ObjectInfo {
  /** The bytes asked for: the whole object, or the requested range. */
  body: Uint8Array;
}

export interface ByteRange {
  offset: number;
  /** Bytes to read from offset; to the end when omitted. */
  length?: number;
}

export interface PutOptions {
  /** Write only if the object's current etag equals this one. */
  ifMatch?: string;
  /** `'*'`: write only if no object exists under the key. */
  ifNoneMatch?: '*';
  contentType?: string;
}

export interface ListOptions {
  cursor?: string;
  /** At most this many keys per page (backends may return fewer). */
  limit?: number;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Set when more pages follow. */
  cursor?: string;
}

export interface ObjectStore {
  /** A human-readable description, e.g. `s3://bucket/prefix` or a folder path. */
  readonly description: string;
  get(key: string, range?: ByteRange): Promise<StoredObject | null>;
  head(key: string): Promise<ObjectInfo | null>;
  /** Throws PreconditionFailedError when a condition is given and not met. */
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo>;
  /** Keys starting with prefix, in lexicographic order. */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
}

/** A conditional put lost: the object changed (ifMatch) or exists (ifNoneMatch). */
export class PreconditionFailedError extends EdgeflowError {
  constructor(readonly key: string) {
    super('precondition_failed', `precondition failed writing ${key}: the object changed or already exists`);
    this.name = 'PreconditionFailedError';
  }
}

/** Raised for keys that could escape the store (.., absolute, empty segments). */
export class InvalidKeyError extends EdgeflowError {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super('bad_request', `invalid object key ${JSON.stringify(key)}: ${reason}`);
    this.name = 'InvalidKeyError';
  }
}

/** Every key goes through this: relative, `/`-separated, no `.` or `..` segments. */
export function checkKey(key: string): string {
  if (key.length === 0 || key.length > 1024) throw new InvalidKeyError(key, 'length must be 1..1024');
  if (key.startsWith('/') || key.includes('\\') || key.includes('\0')) {
    throw new InvalidKeyError(key, 'must be relative and use / separators');
  }
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new InvalidKeyError(key, 'empty, . and .. segments are not allowed');
    }
  }
  return key;
}
