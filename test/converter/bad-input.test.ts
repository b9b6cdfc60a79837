// Bad input gets a clear error naming the problem, and nothing is written to the store.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertAndPublish } from '../../converter/convert.ts';
import { ConversionError } from '../../shared/errors.ts';
import type { FileSet } from '../../converter/model.ts';
import { unzip } from '../../converter/read/zip.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { tinyDenseModel, WEIGHTS_FILE } from '../helpers/tiny-models.ts';

let good: FileSet;
const encoder = new TextEncoder();

beforeAll(async () => {
  await tf.setBackend('cpu');
  good = await tinyDenseModel();
});

/** The tiny model with its model.json changed by `edit`. */
function withModelJson(edit: (json: { weightsManifest: { paths: string[]; weights: Record<string, unknown>[] }[] } & Record<string, unknown>) => void): FileSet {
  const json = JSON.parse(new TextDecoder().decode(good.get('model.json')));
  edit(json);
  return new Map([...good, ['model.json', encoder.encode(JSON.stringify(json))]]);
}

async function expectRefused(files: FileSet, message: RegExp, name = 'bad') {
  const store = new MemoryStore();
  const error = await convertAndPublish(store, files, { name, quantize: 'uint8' }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toMatch(message);
  expect((await store.list('')).objects, 'nothing may be written').toEqual([]);
  return error as Error;
}

describe('bad input', () => {
  it('missing shard', async () => {
    const files = new Map(good);
    files.delete(WEIGHTS_FILE);
    const error = await expectRefused(files, /shard group1-shard1of1\.bin named in model\.json is missing/);
    expect(error).toBeInstanceOf(ConversionError);
  });

  it('shard bytes that do not match the manifest shapes and dtypes', async () => {
    const files = new Map(good);
    files.set(WEIGHTS_FILE, good.get(WEIGHTS_FILE)!.subarray(0, 100));
    await expectRefused(files, /holds 100 bytes but its manifest's shapes and dtypes need \d+/);
  });

  it('unknown dtype', async () => {
    await expectRefused(
      withModelJson((j) => (j.weightsManifest[0]!.weights[0]!.dtype = 'float64')),
      /model\.json is not a TF\.js model\.json: weightsManifest\.0\.weights\.0\.dtype/,
    );
    await expectRefused(
      withModelJson((j) => (j.weightsManifest[0]!.weights[0]!.quantization = { dtype: 'int4', scale: 1, min: 0 })),
      /weightsManifest\.0\.weights\.0\.quantization\.dtype/,
    );
  });

  it('malformed JSON', async () => {
    await expectRefused(new Map([...good, ['model.json', encoder.encode('{"modelTopology": ')]]), /model\.json is not valid JSON/);
  });

  it('absurd shapes, refused before allocating', async () => {
    await expectRefused(
      withModelJson((j) => (j.weightsManifest[0]!.weights[0]!.shape = [100000, 100000, 100000])),
      /weightsManifest\.0\.weights\.0\.shape|elements is more than/,
    );
    await expectRefused(
      withModelJson((j) => (j.weightsManifest[0]!.weights[0]!.shape = [65536, 65536])),
      /hidden\/kernel has shape \[65536, 65536\]: 4294967296 elements is more than/,
    );
    await expectRefused(
      withModelJson((j) => (j.weightsManifest[0]!.weights[0]!.shape = [-1, 4])),
      /shape/,
    );
  });

  it('zip entries with .. or absolute paths', async () => {
    const evil = zipSync({ '../escape.txt': encoder.encode('x'), 'model.json': good.get('model.json')! });
    await expectRefused(new Map([['model.zip', evil]]), /zip entry "\.\.\/escape\.txt" escapes the archive/);
    const absolute = zipSync({ '/etc/passwd': encoder.encode('x') });
    await expectRefused(new Map([['model.zip', absolute]]), /zip entry "\/etc\/passwd" has an absolute path/);
  });

  it('zip bombs: the decompressed size is capped before inflating', () => {
    // 64 MiB of zeros deflates to ~64 KiB; a cap of 16 MiB must refuse it.
    const bomb = zipSync({ 'weights.bin': new Uint8Array(64 << 20) }, { level: 9 });
    expect(bomb.byteLength).toBeLessThan(1 << 20);
    expect(() => unzip(bomb, 16 << 20)).toThrow(/expands to more than 16777216 bytes/);
  });

  it('a shard named URL-encoded in model.json (as the browser saves it) is found under its plain name', async () => {
    const files = withModelJson((json) => (json.weightsManifest[0]!.paths = ['my%20weights.bin']));
    files.delete(WEIGHTS_FILE);
    files.set('my weights.bin', good.get(WEIGHTS_FILE)!);
    const result = await convertAndPublish(new MemoryStore(), files, { name: 'spaced', quantize: 'uint8' });
    expect(result.metadata.source.files).toEqual(['model.json', 'my weights.bin']);
  });

  it('a zip of a good model converts', async () => {
    const zip = zipSync({ 'my-model/model.json': good.get('model.json')!, [`my-model/${WEIGHTS_FILE}`]: good.get(WEIGHTS_FILE)! });
    const store = new MemoryStore();
    const result = await convertAndPublish(store, new Map([['my-model.zip', zip]]), { name: 'zipped', quantize: 'uint8' });
    expect(result.version).toBe(1);
  });

  it('model names outside [a-z0-9][a-z0-9._-]{0,63}', async () => {
    for (const name of ['Bad', '../up', 'a/b', '.hidden', 'x'.repeat(65), 'spaces here']) {
      await expectRefused(good, /invalid model name/, name);
    }
  });

  it('files that are no model at all', async () => {
    await expectRefused(new Map([['notes.txt', encoder.encode('hello')]]), /no model found in notes\.txt/);
    await expectRefused(new Map(), /no files were given/);
  });

  it('a bad --quantize spec', async () => {
    const store = new MemoryStore();
    await expect(convertAndPublish(store, good, { name: 'x', quantize: 'int4' })).rejects.toThrow(/bad --quantize rule "int4"/);
    await expect(convertAndPublish(store, good, { name: 'x', quantize: 'uint8=' })).rejects.toThrow(/bad --quantize rule/);
  });
});
