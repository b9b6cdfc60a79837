// The publish protocol: increasing immutable versions, index.json written last and
// conditionally, concurrent publishers, interrupted publishes, idempotent retries.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertModel, type ConvertResult } from '../../converter/convert.ts';
import { publishVersion } from '../../shared/bucket/publish.ts';
import { readIndex } from '../../shared/bucket/published.ts';
import { sha256Hex } from '../../shared/hash.ts';
import { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { keys } from '../../shared/names.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { getJson } from '../../shared/store/util.ts';
import { FaultyStore, InjectedFault } from '../helpers/faulty-store.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

let converted: ConvertResult;

beforeAll(async () => {
  await tf.setBackend('cpu');
  // 3 shards of ≥1 KiB, so a fault can hit the middle of the shard writes.
  converted = await convertModel(await tinyDenseModel(), { name: 'tiny', quantize: 'none', shardBytes: 1024 });
  expect(converted.modelFiles.files.size).toBe(4);
});

const publish = (store: ObjectStore, sourceId?: string) => publishVersion(store, { name: 'tiny', files: converted.modelFiles.files, metadata: converted.metadata, sourceId });

/** What a reader sees: every version index.json lists must have all its files, matching edgeflow.json. */
async function assertConsistent(store: ObjectStore): Promise<number[]> {
  const index = await readIndex(store, 'tiny');
  if (!index) return [];
  for (const entry of index.index.versions) {
    const meta = EdgeflowJson.parse((await getJson(store, keys.versionFile('tiny', entry.version, 'edgeflow.json')))!.value);
    for (const [file, expected] of Object.entries(meta.files)) {
      const object = await store.get(keys.versionFile('tiny', entry.version, file));
      expect(object, `version ${entry.version} lacks ${file}`).not.toBeNull();
      expect(await sha256Hex(object!.body)).toBe(expected.sha256);
    }
  }
  return index.index.versions.map((v) => v.version);
}

describe('publishVersion', () => {
  it('publishes increasing versions with latest pointing at the newest', async () => {
    const store = new MemoryStore();
    expect((await publish(store)).version).toBe(1);
    expect((await publish(store)).version).toBe(2);
    const index = (await readIndex(store, 'tiny'))!.index;
    expect(index.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(index.labels.latest).toBe(2);
    const meta = EdgeflowJson.parse((await getJson(store, 'models/tiny/2/edgeflow.json'))!.value);
    expect(meta.version).toBe(2);
    expect(Object.keys(meta.files).sort()).toEqual(['group1-shard1of3.bin', 'group1-shard2of3.bin', 'group1-shard3of3.bin', 'model.json']);
    await assertConsistent(store);
  });

  it('gives concurrent publishers distinct versions and loses none', async () => {
    const store = new MemoryStore();
    const results = await Promise.all(Array.from({ length: 6 }, () => publish(store)));
    const versions = results.map((r) => r.version).sort((a, b) => a - b);
    expect(new Set(versions).size).toBe(6);
    expect(await assertConsistent(store)).toEqual(versions);
  });

  it('writes index.json last: a reader never sees a version whose files are missing', async () => {
    const store = new FaultyStore(new MemoryStore(), undefined);
    await publish(store);
    const order = store.writes;
    expect(order[order.length - 1]).toBe('models/tiny/index.json');
    expect(order.indexOf('models/tiny/1/edgeflow.json')).toBe(order.length - 2);
  });

  // Puts of one publish: 1 claim, 4 files (any order), edgeflow.json, index.json.
  it.each([1, 2, 3, 4, 5, 6, 7])('leaves nothing visible when write %i fails, and a retry completes it', async (failAt) => {
    const store = new FaultyStore(new MemoryStore(), failAt);
    await expect(publish(store, 'upload-1')).rejects.toBeInstanceOf(InjectedFault);
    expect(await assertConsistent(store)).toEqual([]);
    store.heal();
    const retry = await publish(store, 'upload-1');
    expect(retry.version).toBe(1);
    expect(await assertConsistent(store)).toEqual([1]);
  });

  it('publishes a source once: a redelivered publish returns the existing version', async () => {
    const store = new MemoryStore();
    const first = await publish(store, 'upload-7');
    const again = await publish(store, 'upload-7');
    expect(again).toEqual({ version: first.version, existing: true });
    expect(await assertConsistent(store)).toEqual([1]);
  });

  it('keeps one version when the same source is published twice at once', async () => {
    const store = new MemoryStore();
    const [a, b] = await Promise.all([publish(store, 'upload-9'), publish(store, 'upload-9')]);
    expect(a.version).toBe(b.version);
    expect(await assertConsistent(store)).toEqual([a.version]);
  });

  it('refuses invalid model names before writing anything', async () => {
    const store = new FaultyStore(new MemoryStore(), undefined);
    for (const name of ['', 'Upper', '../x', 'a/b', '-lead', 'x'.repeat(65)]) {
      await expect(publishVersion(store, { name, files: converted.modelFiles.files, metadata: converted.metadata })).rejects.toThrow(/invalid model name/);
    }
    expect(store.writes).toEqual([]);
  });
});
