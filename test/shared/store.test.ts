// One contract, every ObjectStore: memory, local folder, S3 (s3rver on loopback), R2 (Miniflare).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { openStore } from '../../shared/store/open.ts';
import { R2Store } from '../../shared/store/r2.ts';
import { S3Store } from '../../shared/store/s3.ts';
import { InvalidKeyError, PreconditionFailedError, type ObjectStore } from '../../shared/store/types.ts';
import { listAll } from '../../shared/store/util.ts';
import { startS3rver, type RunningS3 } from '../helpers/s3rver.ts';

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

interface Backend {
  name: string;
  open(): Promise<ObjectStore>;
  /** s3rver ignores If-Match / If-None-Match (see docs/ARCHITECTURE.md): its conditional tests prove nothing. */
  conditional: boolean;
}

let folder: string;
let s3: RunningS3;
let mf: Miniflare;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-store-'));
  s3 = await startS3rver();
  mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response("") } }', r2Buckets: ['BUCKET'], compatibilityDate: '2026-04-01' });
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
  await s3?.close();
  await mf?.dispose();
});

let counter = 0;
const backends: Backend[] = [
  { name: 'memory', open: async () => new MemoryStore(), conditional: true },
  { name: 'local folder', open: async () => new LocalFolderStore(path.join(folder, `s${counter++}`)), conditional: true },
  { name: 's3 (s3rver)', open: async () => new S3Store({ bucket: s3.bucket, prefix: `p${counter++}`, client: s3.client }), conditional: false },
  // Each R2 test gets its own key prefix through a wrapper-free trick: a fresh bucket name is not
  // possible at runtime, so keys are made unique per test below instead.
  { name: 'r2 (miniflare)', open: async () => new R2Store((await mf.getR2Bucket('BUCKET')) as never), conditional: true },
];

describe.each(backends)('$name store', (backend) => {
  let store: ObjectStore;
  let p: string;
  beforeAll(async () => {
    store = await backend.open();
  });
  // Unique key prefix per test, so backends shared across tests start empty.
  const fresh = () => (p = `t${counter++}/`);

  it('puts, gets, heads and deletes', async () => {
    fresh();
    const written = await store.put(`${p}a.bin`, new Uint8Array([1, 2, 3, 4, 5]));
    expect(written.size).toBe(5);
    const head = await store.head(`${p}a.bin`);
    expect(head).toMatchObject({ key: `${p}a.bin`, size: 5, etag: written.etag });
    const got = await store.get(`${p}a.bin`);
    expect([...got!.body]).toEqual([1, 2, 3, 4, 5]);
    expect(got!.etag).toBe(written.etag);
    await store.delete(`${p}a.bin`);
    expect(await store.get(`${p}a.bin`)).toBeNull();
    expect(await store.head(`${p}a.bin`)).toBeNull();
    await store.delete(`${p}never-there`);
  });

  it('reads byte ranges', async () => {
    fresh();
    await store.put(`${p}r`, 'abcdefghij');
    expect(text((await store.get(`${p}r`, { offset: 2, length: 3 }))!.body)).toBe('cde');
    expect(text((await store.get(`${p}r`, { offset: 7 }))!.body)).toBe('hij');
    expect((await store.get(`${p}r`, { offset: 2, length: 3 }))!.size).toBe(10);
  });

  it('lists by prefix with pagination, in key order', async () => {
    fresh();
    for (const key of ['b/2', 'a/1', 'b/1', 'b/3', 'c']) await store.put(`${p}${key}`, key);
    const first = await store.list(`${p}b/`, { limit: 2 });
    expect(first.objects.map((o) => o.key)).toEqual([`${p}b/1`, `${p}b/2`]);
    expect(first.cursor).toBeDefined();
    const second = await store.list(`${p}b/`, { limit: 2, cursor: first.cursor });
    expect(second.objects.map((o) => o.key)).toEqual([`${p}b/3`]);
    expect(second.cursor).toBeUndefined();
    expect((await listAll(store, p)).map((o) => o.key)).toEqual(['a/1', 'b/1', 'b/2', 'b/3', 'c'].map((k) => p + k));
    expect(await listAll(store, `${p}zzz`)).toEqual([]);
  });

  it('refuses keys that could escape the store', async () => {
    for (const key of ['../x', 'a/../../x', '/abs', 'a//b', 'a\\b', '']) {
      await expect(store.put(key, 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    }
  });

  it.runIf(backend.conditional)('honours If-None-Match: * (create only when absent)', async () => {
    fresh();
    await store.put(`${p}once`, 'first', { ifNoneMatch: '*' });
    await expect(store.put(`${p}once`, 'second', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(text((await store.get(`${p}once`))!.body)).toBe('first');
  });

  it.runIf(backend.conditional)('honours If-Match (write only over the version read)', async () => {
    fresh();
    const v1 = await store.put(`${p}doc`, 'v1');
    const v2 = await store.put(`${p}doc`, 'v2', { ifMatch: v1.etag });
    await expect(store.put(`${p}doc`, 'stale', { ifMatch: v1.etag })).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(store.put(`${p}missing`, 'x', { ifMatch: v1.etag })).rejects.toBeInstanceOf(PreconditionFailedError);
    await store.put(`${p}doc`, 'v3', { ifMatch: v2.etag });
    expect(text((await store.get(`${p}doc`))!.body)).toBe('v3');
  });

  it.runIf(backend.conditional)('lets exactly one of many racing creators win', async () => {
    fresh();
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.put(`${p}race`, `writer ${i}`, { ifNoneMatch: '*' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof PreconditionFailedError)).toBe(true);
  });
});

describe('openStore', () => {
  it('opens folders and s3:// URLs, and refuses other schemes', async () => {
    expect(await openStore(folder)).toBeInstanceOf(LocalFolderStore);
    const s3store = await openStore('s3://bucket/some/prefix', { AWS_ENDPOINT_URL: 'http://127.0.0.1:1' });
    expect(s3store).toBeInstanceOf(S3Store);
    expect(s3store.description).toBe('s3://bucket/some/prefix');
    await expect(openStore('gs://bucket/x')).rejects.toThrow(/unsupported store/);
  });

  it('reaches s3rver through AWS_ENDPOINT_URL', async () => {
    const store = await openStore(`s3://${s3.bucket}/via-env`, s3.env);
    await store.put('k', 'v');
    expect(text((await store.get('k'))!.body)).toBe('v');
  });
});
