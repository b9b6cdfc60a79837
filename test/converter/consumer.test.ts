// The upload consumer (converter/consumer.ts) that both the Workers queue and `edgeflow watch`
// run: faults at every step of a publish leave no version half-visible and a redelivery
// completes it; redelivered and concurrent messages publish once; two uploads of one name at
// once give two versions; permanent failures are recorded with a reason; leases.
import { Miniflare } from 'miniflare';
import type { R2Bucket } from '@cloudflare/workers-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { R2Store } from '../../shared/store/r2.ts';
import { useNodeBackend } from '../../cli/backend.ts';
import { claimUpload } from '../../shared/bucket/claim.ts';
import { consumeUploadEvent, type ConsumerOptions } from '../../converter/consumer.ts';
import { readIndex } from '../../shared/bucket/published.ts';
import { readStatus, uploadEvent, uploadKeys, writeUpload, type WrittenUpload } from '../../shared/bucket/uploads.ts';
import { handleUploadBatch } from '../../functions/queue.ts';
import { ModelRegistry } from '../../functions/runtime/registry.ts';
import { loadModel } from '../../shared/model-loader.ts';
import { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { ModelJson } from '../../shared/schemas/model-json.ts';
import { sha256Hex } from '../../shared/hash.ts';
import { keys } from '../../shared/names.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { getJson, listAll, putJson } from '../../shared/store/util.ts';
import * as tf from '@tensorflow/tfjs-core';
import { FaultyStore } from '../helpers/faulty-store.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';
import type { FileSet } from '../../converter/model.ts';

let model: FileSet;

beforeAll(async () => {
  await useNodeBackend();
  model = await tinyDenseModel();
});

const options = (store: ObjectStore, extra: Partial<ConsumerOptions> = {}): ConsumerOptions => ({
  store,
  ensureBackend: useNodeBackend,
  owner: 'test',
  samples: 2,
  retryDelaysMs: [1, 1],
  ...extra,
});

async function upload(store: ObjectStore, name = 'tiny', shardBytes = 1024): Promise<WrittenUpload> {
  // float32 weights (2.7 KB) in 1 KiB shards: model.json + 3 shards.
  return writeUpload(store, name, model, { options: { quantize: 'none', shardBytes } });
}

/** Every file of the version matches edgeflow.json's sha256, and stock TF.js loads it. */
async function checkVersion(store: ObjectStore, name: string, version: number): Promise<number[]> {
  const meta = EdgeflowJson.parse((await getJson(store, keys.versionFile(name, version, 'edgeflow.json')))!.value);
  for (const [file, entry] of Object.entries(meta.files)) {
    const body = (await store.get(keys.versionFile(name, version, file)))!.body;
    expect(await sha256Hex(body)).toBe(entry.sha256);
  }
  const modelJson = ModelJson.parse((await getJson(store, keys.versionFile(name, version, 'model.json')))!.value);
  const shards = new Map<string, Uint8Array>();
  for (const path of modelJson.weightsManifest.flatMap((g) => g.paths)) shards.set(path, (await store.get(keys.versionFile(name, version, path)))!.body);
  const loaded = await loadModel(modelJson, (path) => shards.get(path)!);
  const [output] = await loaded.predict([tf.ones([1, 16])]);
  const values = Array.from(await output!.data());
  loaded.dispose();
  return values;
}

describe('faults during a publish', () => {
  // The publish writes .claim, model.json, the shards, edgeflow.json, then index.json.
  const steps: [string, RegExp][] = [
    ['shard 1', /^models\/tiny\/1\/group1-shard1of3\.bin$/],
    ['shard 2', /^models\/tiny\/1\/group1-shard2of3\.bin$/],
    ['shard 3', /^models\/tiny\/1\/group1-shard3of3\.bin$/],
    ['model.json', /^models\/tiny\/1\/model\.json$/],
    ['edgeflow.json', /^models\/tiny\/1\/edgeflow\.json$/],
    ['index.json', /^models\/tiny\/index\.json$/],
  ];

  it.each(steps)('store failing at %s: nothing visible, status queued with the error; a redelivery publishes exactly one version', async (_step, pattern) => {
    const memory = new MemoryStore();
    const written = await upload(memory);
    const faulty = new FaultyStore(memory, pattern);
    const event = uploadEvent(written, 'test');

    const first = await consumeUploadEvent(event, options(faulty, { attempt: 1, maxDeliveries: 6 }));
    expect(first).toMatchObject({ kind: 'retry', uploadId: written.uploadId });
    expect((first as { reason: string }).reason).toMatch(/injected fault/);
    // No reader sees a version: index.json has none, and the edge registry answers 404.
    expect((await readIndex(memory, 'tiny'))?.index.versions ?? []).toEqual([]);
    await expect(new ModelRegistry(memory, 0).resolve('tiny')).rejects.toMatchObject({ code: 'not_found' });
    const status = await readStatus(memory, written.uploadId);
    expect(status).toMatchObject({ state: 'queued', attempts: 1 });
    expect(status!.lastError).toMatch(/injected fault/);

    faulty.heal();
    const second = await consumeUploadEvent(event, options(faulty, { attempt: 2, maxDeliveries: 6 }));
    expect(second).toEqual({ kind: 'done', uploadId: written.uploadId, name: 'tiny', version: 1, existing: false });
    const index = (await readIndex(memory, 'tiny'))!.index;
    expect(index.versions.map((v) => [v.version, v.sourceId])).toEqual([[1, written.uploadId]]);
    expect(index.labels).toEqual({ latest: 1 });
    const published = (await readStatus(memory, written.uploadId))!;
    expect(published).toMatchObject({ state: 'published', version: 1, attempts: 2 });
    expect(published.lastError).toBeUndefined();
    expect((await checkVersion(memory, 'tiny', 1)).length).toBe(4);
  });

  it('a single failed write is retried with backoff inside one delivery', async () => {
    const memory = new MemoryStore();
    const written = await upload(memory);
    // Put #1 of the consumer is the status; fail the 4th (a file of the version) once.
    const faulty = new FaultyStore(memory, 4);
    const retries: string[] = [];
    const outcome = await consumeUploadEvent(uploadEvent(written, 'test'), options(faulty, { log: (line) => line.includes('; retry') && retries.push(line) }));
    expect(outcome).toMatchObject({ kind: 'done', version: 1 });
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatch(/put models\/tiny\/1\/.* failed \(injected fault .*\); retry 1/);
  });

  it('a transient failure at the last delivery is recorded as failed', async () => {
    const memory = new MemoryStore();
    const written = await upload(memory);
    const outcome = await consumeUploadEvent(uploadEvent(written, 'test'), options(new FaultyStore(memory, /index\.json$/), { attempt: 6, maxDeliveries: 6 }));
    expect(outcome).toMatchObject({ kind: 'failed' });
    expect((await readStatus(memory, written.uploadId))!.reason).toMatch(/^gave up after 6 deliveries: injected fault writing models\/tiny\/index\.json/);
  });
});

describe('idempotence and concurrency', () => {
  it('the same message twice, one after the other → one version', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const event = uploadEvent(written, 'test');
    expect(await consumeUploadEvent(event, options(store))).toMatchObject({ kind: 'done', version: 1, existing: false });
    expect(await consumeUploadEvent(event, options(store))).toMatchObject({ kind: 'done', version: 1, existing: true });
    expect((await readIndex(store, 'tiny'))!.index.versions).toHaveLength(1);
  });

  it('the same message twice at once → one converts, the other is told to retry; one version', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const event = uploadEvent(written, 'test');
    const outcomes = await Promise.all([consumeUploadEvent(event, options(store, { owner: 'a' })), consumeUploadEvent(event, options(store, { owner: 'b' }))]);
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['done', 'retry']);
    expect(outcomes.find((o) => o.kind === 'retry')).toMatchObject({ busy: true });
    // The redelivery of the refused one acknowledges: already published.
    expect(await consumeUploadEvent(event, options(store))).toMatchObject({ kind: 'done', version: 1, existing: true });
    expect((await readIndex(store, 'tiny'))!.index.versions).toHaveLength(1);
    expect((await readStatus(store, written.uploadId))!.attempts).toBe(1);
  });

  it('two uploads of one name at once → two versions, both in index.json', async () => {
    const store = new MemoryStore();
    const [a, b] = await Promise.all([upload(store), upload(store, 'tiny', 2048)]);
    const outcomes = await Promise.all([consumeUploadEvent(uploadEvent(a, 't'), options(store)), consumeUploadEvent(uploadEvent(b, 't'), options(store))]);
    expect(outcomes.map((o) => (o as { version: number }).version).sort()).toEqual([1, 2]);
    const index = (await readIndex(store, 'tiny'))!.index;
    expect(index.versions.map((v) => v.sourceId).sort()).toEqual([a.uploadId, b.uploadId].sort());
    expect(index.labels.latest).toBe(2);
    for (const version of [1, 2]) expect(await checkVersion(store, 'tiny', version)).toHaveLength(4);
  });

  it('keys other than a manifest are ignored (the files of an upload fire events too)', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    for (const key of [uploadKeys.file('tiny', written.uploadId, 'model.json'), 'models/tiny/index.json', 'uploads/tiny/nope/edgeflow-upload.json']) {
      expect(await consumeUploadEvent({ account: 'a', action: 'PutObject', bucket: 'b', object: { key }, eventTime: '' }, options(store))).toMatchObject({ kind: 'ignored' });
    }
    expect(await consumeUploadEvent({ ...uploadEvent(written, 'b'), action: 'DeleteObject' }, options(store))).toMatchObject({ kind: 'ignored' });
    expect(await consumeUploadEvent('not json', options(store))).toMatchObject({ kind: 'ignored' });
    expect(await listAll(store, 'models/')).toEqual([]);
  });
});

describe('over the R2 binding (Miniflare, conditional writes as on Cloudflare)', () => {
  let mf: Miniflare;
  let n = 0;
  const freshStore = async () => new R2Store((await mf.getR2Bucket(`B${n++ % 3}`)) as unknown as R2Bucket, 'r2');
  beforeAll(async () => {
    mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response(null) } }', r2Buckets: ['B0', 'B1', 'B2'] });
    await mf.ready;
  });
  afterAll(async () => {
    await mf?.dispose();
  });

  it('two uploads of one name at once → two versions; the same message twice at once → still two', async () => {
    const store = await freshStore();
    const [a, b] = await Promise.all([upload(store, 'race'), upload(store, 'race')]);
    const events = [uploadEvent(a, 'r2'), uploadEvent(b, 'r2'), uploadEvent(a, 'r2')];
    const outcomes = await Promise.all(events.map((event, i) => consumeUploadEvent(event, options(store, { owner: `c${i}` }))));
    expect(outcomes.filter((o) => o.kind === 'done').length).toBeGreaterThanOrEqual(2);
    const index = (await readIndex(store, 'race'))!.index;
    expect(index.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(index.versions.map((v) => v.sourceId).sort()).toEqual([a.uploadId, b.uploadId].sort());
    for (const version of [1, 2]) expect(await checkVersion(store, 'race', version)).toHaveLength(4);
  });

  it('a publish failing at index.json leaves nothing visible; the redelivery completes it', async () => {
    const store = await freshStore();
    const written = await upload(store, 'fault');
    const faulty = new FaultyStore(store, /^models\/fault\/index\.json$/);
    expect(await consumeUploadEvent(uploadEvent(written, 'r2'), options(faulty))).toMatchObject({ kind: 'retry' });
    expect(await readIndex(store, 'fault')).toBeNull();
    faulty.heal();
    expect(await consumeUploadEvent(uploadEvent(written, 'r2'), options(faulty, { attempt: 2 }))).toMatchObject({ kind: 'done', version: 1, existing: false });
    expect((await readIndex(store, 'fault'))!.index.versions).toHaveLength(1);
  });
});

describe('permanent failures and limits', () => {
  it('a file that is no model fails with a reason, once; redeliveries do not convert again', async () => {
    const store = new MemoryStore();
    const written = await writeUpload(store, 'junk', new Map([['notes.txt', new TextEncoder().encode('hello')]]));
    const outcome = await consumeUploadEvent(uploadEvent(written, 't'), options(store));
    expect(outcome).toMatchObject({ kind: 'failed' });
    const status = (await readStatus(store, written.uploadId))!;
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(/no model found in notes\.txt/);
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(store))).toMatchObject({ kind: 'failed', reason: status.reason });
    expect((await readStatus(store, written.uploadId))!.attempts).toBe(1);
  });

  it('a model larger than the runtime converts is refused, pointing to the Node CLI', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const outcome = await consumeUploadEvent(uploadEvent(written, 't'), options(store, { limits: { maxFloat32Bytes: 1024 } }));
    expect(outcome).toMatchObject({ kind: 'failed' });
    expect((await readStatus(store, written.uploadId))!.reason).toMatch(/float32 weights, more than the 0 MiB .*npx edgeflow convert <file> --name <name> --out s3:\/\//);
    const big = await upload(store);
    await consumeUploadEvent(uploadEvent(big, 't'), options(store, { limits: { maxSourceBytes: 100 } }));
    expect((await readStatus(store, big.uploadId))!.reason).toMatch(/^the upload is 0\.0 MiB, more than .*npx edgeflow convert/);
  });

  it('a manifest listing a missing file fails naming it', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    await store.delete(uploadKeys.file('tiny', written.uploadId, 'group1-shard1of1.bin'));
    await consumeUploadEvent(uploadEvent(written, 't'), options(store));
    expect((await readStatus(store, written.uploadId))!.reason).toBe('group1-shard1of1.bin is listed in the manifest but missing from the upload: upload it again');
  });

  it('a drift beyond tolerance fails with the report', async () => {
    const store = new MemoryStore();
    const written = await writeUpload(store, 'tiny', model, { options: { quantize: 'uint8', tolerance: 0 } });
    await consumeUploadEvent(uploadEvent(written, 't'), options(store));
    const status = (await readStatus(store, written.uploadId))!;
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(/drifts too far .* nothing was published/);
    expect(status.report).toMatchObject({ passed: false, tolerance: 0 });
  });
});

describe('leases', () => {
  it('a live lease makes others wait; an expired one (a crashed consumer) is taken over', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const held = await claimUpload(store, written.uploadId, 'crashed', 60_000);
    expect('lease' in held).toBe(true);
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(store))).toMatchObject({ kind: 'retry', busy: true, reason: 'crashed is converting it' });
    // The holder dies without releasing: its lease runs out.
    if ('lease' in held) {
      (held.lease as { release: () => Promise<void> }).release = async () => {};
    }
    const claimKey = uploadKeys.claim(written.uploadId);
    const current = (await getJson(store, claimKey))!;
    await putJson(store, claimKey, { ...(current.value as object), expires: Date.now() - 1 }, { ifMatch: current.etag });
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(store, { owner: 'rescuer' }))).toMatchObject({ kind: 'done', version: 1 });
    expect((await readStatus(store, written.uploadId))!.convertedBy).toBe('rescuer');
  });

  it('a conversion whose holder died is taken over: not an attempt, counted as a takeover', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const status = (await readStatus(store, written.uploadId))!;
    // A holder started converting (attempt 1) and vanished: status converting, lease lapsed.
    await putJson(store, uploadKeys.status(written.uploadId), { ...status, state: 'converting', attempts: 1 });
    await putJson(store, uploadKeys.claim(written.uploadId), { owner: 'dead', expires: Date.now() - 1, taken: '' });
    const lines: string[] = [];
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(store, { owner: 'rescuer', log: (line) => lines.push(line) }))).toMatchObject({ kind: 'done', version: 1 });
    expect(await readStatus(store, written.uploadId)).toMatchObject({ state: 'published', attempts: 1, takeovers: 1, convertedBy: 'rescuer' });
    expect(lines.filter((line) => line.includes('converting'))).toEqual([expect.stringMatching(/attempt 1, takeover 1$/)]);
  });

  it('each takeover doubles the lease, so a live holder that blocks its thread past the lease is not overtaken forever', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const status = (await readStatus(store, written.uploadId))!;
    await putJson(store, uploadKeys.status(written.uploadId), { ...status, state: 'converting', attempts: 1, takeovers: 2 });
    await putJson(store, uploadKeys.claim(written.uploadId), { owner: 'stalled', expires: Date.now() - 1, taken: '' });
    const leases: number[] = [];
    const put: ObjectStore['put'] = async (key, body, putOptions) => {
      if (key === uploadKeys.claim(written.uploadId)) {
        const claim = JSON.parse(typeof body === 'string' ? body : new TextDecoder().decode(body)) as { expires: number; renewed?: string };
        if (claim.renewed) leases.push(claim.expires - Date.parse(claim.renewed));
      }
      return store.put(key, body, putOptions);
    };
    const watched = new Proxy(store, { get: (target, property) => (property === 'put' ? put : Reflect.get(target, property, target)) });
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(watched, { leaseMs: 1000 }))).toMatchObject({ kind: 'done', version: 1 });
    // The third takeover: 1 s × 2³, taken and renewed before publishing.
    expect(leases.length).toBeGreaterThanOrEqual(2);
    for (const lease of leases) expect(lease).toBeCloseTo(8000, -1);
    expect(await readStatus(store, written.uploadId)).toMatchObject({ state: 'published', attempts: 1, takeovers: 3 });
  });

  it('an upload whose conversions keep dying (CPU / memory limit) is failed past maxTakeovers, pointing to the Node CLI', async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const status = (await readStatus(store, written.uploadId))!;
    await putJson(store, uploadKeys.status(written.uploadId), { ...status, state: 'converting', attempts: 1, takeovers: 3 });
    await putJson(store, uploadKeys.claim(written.uploadId), { owner: 'dead', expires: Date.now() - 1, taken: '' });
    const outcome = await consumeUploadEvent(uploadEvent(written, 't'), options(store, { maxTakeovers: 3 }));
    expect(outcome).toMatchObject({ kind: 'failed' });
    const failed = (await readStatus(store, written.uploadId))!;
    expect(failed).toMatchObject({ state: 'failed', code: 'unconvertible', attempts: 1, takeovers: 3 });
    expect(failed.reason).toMatch(/^the conversion was interrupted 4 times without finishing .*npx edgeflow convert/);
    expect(await listAll(store, 'models/')).toEqual([]);
  });

  it("a takeover at the queue's last delivery is failed (a death there would leave the status converting)", async () => {
    const store = new MemoryStore();
    const written = await upload(store);
    const status = (await readStatus(store, written.uploadId))!;
    await putJson(store, uploadKeys.status(written.uploadId), { ...status, state: 'converting', attempts: 1 });
    await putJson(store, uploadKeys.claim(written.uploadId), { owner: 'dead', expires: Date.now() - 1, taken: '' });
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(store, { attempt: 6, maxDeliveries: 6 }))).toMatchObject({ kind: 'failed' });
    expect((await readStatus(store, written.uploadId))!.reason).toMatch(/^the conversion was interrupted 1 time without finishing/);
  });

  it('failures name their code in the status: transient ones stay queued with lastError, permanent ones fail', async () => {
    const memory = new MemoryStore();
    const written = await upload(memory);
    await consumeUploadEvent(uploadEvent(written, 't'), options(new FaultyStore(memory, /index\.json$/)));
    expect(await readStatus(memory, written.uploadId)).toMatchObject({ state: 'queued', attempts: 1, code: 'unavailable', lastError: expect.stringMatching(/injected fault/) });
    const junk = await writeUpload(memory, 'junk', new Map([['notes.txt', new TextEncoder().encode('hello')]]));
    await consumeUploadEvent(uploadEvent(junk, 't'), options(memory));
    expect(await readStatus(memory, junk.uploadId)).toMatchObject({ state: 'failed', attempts: 1, code: 'unconvertible' });
  });

  it('without a delivery number (the watcher) the status counts attempts: the last one fails, also after a restart', async () => {
    const memory = new MemoryStore();
    const written = await upload(memory);
    const faulty = new FaultyStore(memory, /index\.json$/);
    // Three watchers in turn (each a fresh process, nothing remembered): attempts 1, 2, then the third is final.
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(faulty, { maxDeliveries: 3 }))).toMatchObject({ kind: 'retry' });
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(faulty, { maxDeliveries: 3 }))).toMatchObject({ kind: 'retry' });
    expect(await consumeUploadEvent(uploadEvent(written, 't'), options(faulty, { maxDeliveries: 3 }))).toMatchObject({ kind: 'failed' });
    expect(await readStatus(memory, written.uploadId)).toMatchObject({ state: 'failed', attempts: 3, code: 'unavailable', reason: expect.stringMatching(/^gave up after 3 attempts: injected fault/) });
  });

  it('a holder overtaken while its conversion fails leaves the status to the new holder', async () => {
    const store = new MemoryStore();
    const written = await writeUpload(store, 'junk', new Map([['notes.txt', new TextEncoder().encode('hello')]]));
    // Another consumer takes the lease over while this one reads the upload's files (as after a stall).
    const get = async (key: string) => {
      if (key.endsWith('/notes.txt')) await putJson(store, uploadKeys.claim(written.uploadId), { owner: 'rescuer', expires: Date.now() + 60_000, taken: '' });
      return store.get(key);
    };
    const takeover = new Proxy(store, { get: (target, property) => (property === 'get' ? get : Reflect.get(target, property, target)) });
    const outcome = await consumeUploadEvent(uploadEvent(written, 't'), options(takeover));
    expect(outcome).toMatchObject({ kind: 'retry', busy: true, reason: expect.stringMatching(/^lost the lease while converting: no model found/) });
    expect(await readStatus(store, written.uploadId)).toMatchObject({ state: 'converting', attempts: 1 });
    expect(await getJson(store, uploadKeys.claim(written.uploadId))).toMatchObject({ value: { owner: 'rescuer' } });
  });

  it('a lease is renewed while its holder works, and lost if someone overtakes it', async () => {
    const store = new MemoryStore();
    const result = await claimUpload(store, '20261129T000000Z-0000000000000001', 'slow', 150);
    if (!('lease' in result)) throw new Error('expected the lease');
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Still held after more than twice its length: it was renewed.
    expect(await claimUpload(store, '20261129T000000Z-0000000000000001', 'other', 150)).toMatchObject({ busy: { owner: 'slow' } });
    expect(result.lease.held()).toBe(true);
    await result.lease.release();
    expect('lease' in (await claimUpload(store, '20261129T000000Z-0000000000000001', 'other', 150))).toBe(true);
  });

  it('a holder that stalled past its lease finds it lost at the renewal before publishing, and leaves it to the new holder', async () => {
    const store = new MemoryStore();
    const id = '20261129T000000Z-0000000000000002';
    const stalled = await claimUpload(store, id, 'stalled', 60_000);
    if (!('lease' in stalled)) throw new Error('expected the lease');
    const key = uploadKeys.claim(id);
    const current = (await getJson(store, key))!;
    // Its heartbeats did not run (a blocked event loop): the lease lapsed and another consumer took it.
    await putJson(store, key, { ...(current.value as object), expires: Date.now() - 1 }, { ifMatch: current.etag });
    const rescuer = await claimUpload(store, id, 'rescuer', 60_000);
    if (!('lease' in rescuer)) throw new Error('expected the lease');
    expect(await stalled.lease.renew()).toBe(false);
    expect(stalled.lease.held()).toBe(false);
    await stalled.lease.release();
    expect(await getJson(store, key)).toMatchObject({ value: { owner: 'rescuer', expires: expect.any(Number) } });
    expect(((await getJson(store, key))!.value as { expires: number }).expires).toBeGreaterThan(Date.now());
    await rescuer.lease.release();
  });
});

describe('the Workers queue handler', () => {
  interface FakeMessage {
    id: string;
    body: unknown;
    attempts: number;
    acked: boolean;
    retried?: { delaySeconds?: number };
    ack(): void;
    retry(options?: { delaySeconds?: number }): void;
  }
  const message = (body: unknown, attempts = 1): FakeMessage => ({
    id: String(Math.random()),
    body,
    attempts,
    acked: false,
    ack() {
      this.acked = true;
    },
    retry(o) {
      this.retried = o ?? {};
    },
  });

  it('acks done and ignored messages, retries transient ones, dead-letters permanent failures', async () => {
    const memory = new MemoryStore();
    const good = await upload(memory);
    const bad = await writeUpload(memory, 'junk', new Map([['x.txt', new Uint8Array([1, 2, 3])]]));
    const other = await upload(memory, 'other');
    const faulty = new FaultyStore(memory, /^models\/other\//);
    const dead: unknown[] = [];
    const messages = [message(uploadEvent(good, 'b')), message({ object: { key: 'uploads/tiny/x/model.json' } }), message(uploadEvent(bad, 'b'), 2), message(uploadEvent(other, 'b'))];
    const outcomes = await handleUploadBatch({ messages, queue: 'edgeflow-uploads' } as never, {
      ...options(faulty),
      maxDeliveries: 6,
      deadLetter: { send: async (body: unknown) => void dead.push(body) } as never,
    });
    expect(outcomes.map((o) => o.kind)).toEqual(['done', 'ignored', 'failed', 'retry']);
    expect(messages.map((m) => m.acked)).toEqual([true, true, true, false]);
    expect(messages[3]!.retried).toEqual({ delaySeconds: 5 });
    expect(dead).toEqual([
      { ...uploadEvent(bad, 'b'), eventTime: expect.any(String), edgeflow: { uploadId: bad.uploadId, reason: expect.stringMatching(/no model found/), attempts: 2, failedAt: expect.any(String) } },
    ]);
  });

  it('sends a failed upload to the dead-letter queue once: redeliveries and a second event send nothing; a failed send is retried and sends', async () => {
    const memory = new MemoryStore();
    const bad = await writeUpload(memory, 'junk', new Map([['x.txt', new Uint8Array([1, 2, 3])]]));
    const dead: unknown[] = [];
    let refuse = true;
    const deadLetter = {
      send: async (body: unknown) => {
        if (refuse) throw new Error('queue unavailable');
        dead.push(body);
      },
    } as never;
    const handle = (m: FakeMessage) => handleUploadBatch({ messages: [m], queue: 'edgeflow-uploads' } as never, { ...options(memory), maxDeliveries: 6, deadLetter });
    const first = message(uploadEvent(bad, 'b'));
    expect((await handle(first)).map((o) => o.kind)).toEqual(['failed']);
    expect(first.retried).toEqual({ delaySeconds: 30 }); // the send failed: retried, nothing marked sent
    expect(dead).toEqual([]);
    refuse = false;
    const redeliveries = [message(uploadEvent(bad, 'b'), 2), message(uploadEvent(bad, 'b'), 3), message(uploadEvent(bad, 'notification'))];
    for (const m of redeliveries) expect((await handle(m)).map((o) => o.kind)).toEqual(['failed']);
    expect(redeliveries.map((m) => m.acked)).toEqual([true, true, true]);
    expect(dead).toEqual([{ ...uploadEvent(bad, 'b'), eventTime: expect.any(String), edgeflow: expect.objectContaining({ uploadId: bad.uploadId, attempts: 2 }) }]);
  });
});
