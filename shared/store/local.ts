// ObjectStore on a local folder (Node only): the embedded default and the CLI's --out.
// Writes go to a temp file and are renamed into place, so readers never see a partial
// object; conditional writes take a per-key lock file so concurrent processes agree.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { checkKey, PreconditionFailedError, type ByteRange, type ListOptions, type ListPage, type ObjectInfo, type ObjectStore, type PutOptions, type StoredObject } from './types.ts';
import { toBytes } from './util.ts';
import { sleep } from '../bytes.ts';

const TMP_DIR = '.edgeflow-tmp';
const LOCK_STALE_MS = 30_000;

export class LocalFolderStore implements ObjectStore {
  readonly description: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.description = this.root;
  }

  private file(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  private static etagOf(stat: { ino: bigint; size: bigint; mtimeNs: bigint }): string {
    return createHash('sha1').update(`${stat.ino}:${stat.size}:${stat.mtimeNs}`).digest('hex').slice(0, 16);
  }

  private async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const stat = await fs.stat(this.file(key), { bigint: true });
      if (!stat.isFile()) return null;
      return { key, size: Number(stat.size), etag: LocalFolderStore.etagOf(stat), uploaded: Number(stat.mtimeMs) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw error;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    return this.stat(key);
  }

  async get(key: string, range?: ByteRange): Promise<StoredObject | null> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file(key), 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
      throw error;
    }
    try {
      const stat = await handle.stat({ bigint: true });
      const size = Number(stat.size);
      const offset = Math.min(range?.offset ?? 0, size);
      const length = Math.min(range?.length ?? size - offset, size - offset);
      const body = new Uint8Array(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(body, read, length - read, offset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return { key, size, etag: LocalFolderStore.etagOf(stat), uploaded: Number(stat.mtimeMs), body };
    } finally {
      await handle.close();
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<ObjectInfo> {
    const target = this.file(key);
    const tmpDir = path.join(this.root, TMP_DIR);
    await fs.mkdir(tmpDir, { recursive: true });
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = path.join(tmpDir, randomBytes(8).toString('hex'));
    await fs.writeFile(tmp, toBytes(body));
    try {
      if (options.ifNoneMatch === '*' && options.ifMatch === undefined) {
        // link() fails atomically if the target exists: create-if-absent across processes.
        try {
          await fs.link(tmp, target);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(key);
          throw error;
        }
      } else if (options.ifMatch !== undefined || options.ifNoneMatch === '*') {
        await this.withLock(target, async () => {
          const current = await this.stat(key);
          if (options.ifNoneMatch === '*' && current) throw new PreconditionFailedError(key);
          if (options.ifMatch !== undefined && current?.etag !== options.ifMatch) throw new PreconditionFailedError(key);
          await fs.rename(tmp, target);
        });
      } else {
        await fs.rename(tmp, target);
      }
    } finally {
      await fs.rm(tmp, { force: true });
    }
    const info = await this.stat(key);
    if (!info) throw new Error(`write of ${key} vanished`);
    return info;
  }

  /** A lock file beside the target, created exclusively; stale locks are broken. */
  private async withLock<T>(target: string, work: () => Promise<T>): Promise<T> {
    const lock = `${target}.edgeflow-lock`;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await fs.open(lock, 'wx');
        await handle.close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const stat = await fs.stat(lock).catch(() => null);
        if (stat && Date.now() - stat.mtimeMs > LOCK_STALE_MS) await fs.rm(lock, { force: true });
        if (attempt > 2000) throw new Error(`timed out waiting for lock on ${target}`);
        await sleep(5 + Math.random() * 10);
      }
    }
    try {
      return await work();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const limit = options.limit ?? 1000;
    // Walk only the deepest folder the prefix fully names.
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const keys: string[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      const dir = dirKey ? path.join(this.root, ...dirKey.split('/')) : this.root;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw error;
      }
      for (const entry of entries) {
        if (entry.name === TMP_DIR || entry.name.endsWith('.edgeflow-lock')) continue;
        const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) await walk(key);
        } else if (entry.isFile() && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(baseKey);
    keys.sort();
    const after = options.cursor ? keys.filter((k) => k > options.cursor!) : keys;
    const page = after.slice(0, limit);
    const objects: ObjectInfo[] = [];
    for (const key of page) {
      const info = await this.stat(key);
      if (info) objects.push(info);
    }
    return { objects, cursor: after.length > limit ? page[page.length - 1] : undefined };
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), { force: true });
  }
}
