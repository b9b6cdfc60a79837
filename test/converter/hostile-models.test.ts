// Hostile model files, generated here: each is refused with its code and a message naming the
// problem, before it costs gigabytes or minutes (converter/limits.ts), with nothing published.
// Every case's RSS growth and time are printed; the RSS growth is bounded (a figure of memory,
// not of speed: the reported attacks took 4-7 GB).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertAndPublish } from '../../converter/convert.ts';
import type { FileSet } from '../../converter/model.ts';
import { concatBytes } from '../../shared/bytes.ts';
import { isEdgeflowError } from '../../shared/errors.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { WORKER_LIMITS } from '../../converter/limits.ts';
import { readModel } from '../../converter/read/index.ts';
import { deflated, deflatedZeros, storedZerosZip, zeroDenseZip, zipOf } from '../helpers/hostile-files.ts';

/** RSS a refused case may add to the process (the largest allocation allowed is one zip entry inside the 1 GiB budget). */
const MAX_RSS_GROWTH = 768 * 2 ** 20;

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));
const MiB = 2 ** 20;

type Layer = { class_name: string; config: Record<string, unknown>; inbound_nodes?: unknown[] };

/** A Sequential layers model.json with its weights file. */
function sequential(layers: Layer[], weights: { name: string; shape: number[]; values?: Float32Array }[] = [], extra: Record<string, unknown> = {}): FileSet {
  const specs = weights.map(({ name, shape }) => ({ name, shape, dtype: 'float32' }));
  const data = concatBytes(weights.map(({ shape, values }) => new Uint8Array((values ?? new Float32Array(shape.reduce((a, b) => a * b, 1))).buffer)));
  return new Map([
    ['model.json', json({ format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 'seq', layers } }, weightsManifest: [{ paths: ['w.bin'], weights: specs }], ...extra })],
    ['w.bin', data],
  ]);
}

const dense = (name: string, units: number, input?: unknown[]): Layer => ({
  class_name: 'Dense',
  config: { name, units, use_bias: false, activation: 'linear', ...(input ? { batch_input_shape: input } : {}) },
});

/** A good tiny model: Dense 3 → 2. */
const goodDense = () => sequential([dense('d', 2, [null, 3])], [{ name: 'd/kernel', shape: [3, 2], values: new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) }]);

/** A functional layers model.json of `layers` (no weights). */
function functional(layers: Layer[], inputs: string[], outputs: string[]): FileSet {
  const topology = { class_name: 'Model', config: { name: 'f', layers, input_layers: inputs.map((n) => [n, 0, 0]), output_layers: outputs.map((n) => [n, 0, 0]) } };
  return new Map([['model.json', json({ format: 'layers-model', modelTopology: topology, weightsManifest: [] })]]);
}

const inputLayer = (name: string, shape: unknown[]): Layer => ({ class_name: 'InputLayer', config: { name, batch_input_shape: shape, dtype: 'float32' }, inbound_nodes: [] });
const fromLayer = (name: string, className: string, source: string, config: Record<string, unknown> = {}): Layer => ({
  class_name: className,
  config: { name, ...config },
  inbound_nodes: [[[source, 0, 0, {}]]],
});

/** A graph model.json of these nodes. */
function graph(nodes: Record<string, unknown>[], library?: unknown): FileSet {
  return new Map([['model.json', json({ format: 'graph-model', modelTopology: { node: nodes, versions: {}, ...(library ? { library } : {}) }, weightsManifest: [] })]]);
}

const placeholder = (name: string, dims: (number | string)[]) => ({
  name,
  op: 'Placeholder',
  attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: dims.map((size) => ({ size: String(size) })) } } },
});
const opNode = (name: string, op: string, input: string[]) => ({ name, op, input, attr: { T: { type: 'DT_FLOAT' } } });

/** The good model's files zipped (stored). */
const zipFiles = (files: FileSet) => zipOf([...files].map(([name, data]) => ({ name, data })));
const one = (name: string, bytes: Uint8Array): FileSet => new Map([[name, bytes]]);

function deepJson(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

function withModelJson(files: FileSet, edit: (model: Record<string, any>) => void): FileSet {
  const model = JSON.parse(new TextDecoder().decode(files.get('model.json')!));
  edit(model);
  return new Map([...files, ['model.json', json(model)]]);
}

interface Case {
  name: string;
  files: () => FileSet;
  message: RegExp;
  code?: 'unconvertible' | 'bad_request';
}

let bomb520: Uint8Array;
const zeroBomb = () => (bomb520 ??= deflatedZeros(520 * MiB));

const CASES: Case[] = [
  // Layers models: shapes and budgets.
  {
    name: 'zero-weight model with input [null, 8000, 8000]',
    files: () => sequential([{ class_name: 'Activation', config: { name: 'a', activation: 'relu', batch_input_shape: [null, 8000, 8000] } }]),
    message: /input "a" of shape \[null, 8000, 8000\]: about \d+ MiB of activations .* 512 MiB budget/,
  },
  { name: 'input dim 1e10', files: () => sequential([dense('d', 2, [null, 1e10])]), message: /input "d" has dimension 10000000000/ },
  { name: 'input dim 1.5', files: () => sequential([dense('d', 2, [null, 1.5])]), message: /dimension 1\.5 .*whole numbers/ },
  { name: 'negative input dim', files: () => sequential([dense('d', 2, [null, -7])]), message: /dimension -7/ },
  { name: 'input dim a string', files: () => sequential([dense('d', 2, [null, 'abc'])]), message: /dimension "abc"/ },
  { name: 'input of 9 dimensions', files: () => sequential([dense('d', 2, [null, 1, 1, 1, 1, 1, 1, 1, 1])]), message: /9 dimensions, more than 8/ },
  { name: 'Dense with 1e9 units', files: () => sequential([dense('d', 1e9, [null, 3])]), message: /layer "d" \(Dense\) has units 1000000000/ },
  { name: 'Dense with fractional units', files: () => sequential([dense('d', 2.5, [null, 3])]), message: /units 2\.5/ },
  {
    name: 'Conv2D with 100000 filters on 1024x1024',
    files: () => sequential([{ class_name: 'Conv2D', config: { name: 'c', filters: 100_000, kernel_size: [3, 3], padding: 'same', batch_input_shape: [null, 1024, 1024, 3] } }]),
    message: /through layer "c" \(Conv2D, width 100000\): about \d+ MiB of activations/,
  },
  {
    name: 'Reshape to a 1e10 target',
    files: () => sequential([dense('d', 2, [null, 3]), { class_name: 'Reshape', config: { name: 'r', target_shape: [1e10] } }]),
    message: /layer "r"'s target_shape has dimension 10000000000/,
  },
  {
    name: 'Embedding with output_dim 1e12',
    files: () => sequential([{ class_name: 'Embedding', config: { name: 'e', input_dim: 10, output_dim: 1e12, batch_input_shape: [null, 4] } }]),
    message: /output_dim 1000000000000/,
  },
  { name: 'layer with no config', files: () => sequential([dense('d', 2, [null, 3]), { class_name: 'Dense' } as unknown as Layer]), message: /(no config|is not a TF\.js model\.json|has no name)/ },
  {
    name: '50001 layers',
    files: () => sequential([dense('d', 2, [null, 2]), ...Array.from({ length: 50_000 }, (_, i) => ({ class_name: 'Activation', config: { name: `a${i}`, activation: 'relu' } }))]),
    message: /50001 layers, more than the 50000/,
  },
  // Unknown classes.
  { name: 'unknown layer class', files: () => sequential([{ class_name: 'FancyLayer', config: { name: 'fancy', batch_input_shape: [null, 3] } }]), message: /FancyLayer/ },
  {
    name: 'unknown layer class in a functional model',
    files: () => functional([inputLayer('in', [null, 3]), fromLayer('mystery', 'QuantumDense', 'in', { units: 2 })], ['in'], ['mystery']),
    message: /QuantumDense/,
  },
  // Topology.
  {
    name: 'cyclic topology',
    files: () => functional([inputLayer('in', [null, 3]), { ...fromLayer('a', 'Activation', 'b', { activation: 'relu' }) }, fromLayer('b', 'Activation', 'a', { activation: 'relu' })], ['in'], ['b']),
    message: /cycle/,
  },
  {
    name: 'dangling inbound layer',
    files: () => functional([inputLayer('in', [null, 3]), fromLayer('a', 'Activation', 'ghost', { activation: 'relu' })], ['in'], ['a']),
    message: /"ghost", which is not a layer/,
  },
  {
    name: 'two layers with one name',
    files: () => functional([inputLayer('in', [null, 3]), fromLayer('in', 'Activation', 'in', { activation: 'relu' })], ['in'], ['in']),
    message: /two layers are named "in"/,
  },
  {
    name: 'output naming no layer',
    files: () => functional([inputLayer('in', [null, 3]), fromLayer('a', 'Activation', 'in', { activation: 'relu' })], ['in'], ['nowhere']),
    message: /"nowhere", which is not a layer/,
  },
  // JSON.
  {
    name: 'deeply nested JSON in the topology',
    files: () => new Map([['model.json', encoder.encode(`{"modelTopology":{"x":${deepJson(5000)}},"weightsManifest":[]}`)]]),
    message: /nests arrays \/ objects more than 100 deep/,
  },
  {
    name: 'deeply nested JSON in metadata (200000 deep)',
    files: () => new Map([['model.json', encoder.encode(`{"modelTopology":{},"weightsManifest":[],"userDefinedMetadata":{"x":${deepJson(200_000)}}}`)]]),
    message: /more than 100 deep/,
  },
  { name: 'model.json not JSON', files: () => new Map([['model.json', encoder.encode('{"modelTopology": ')]]), message: /model\.json is not valid JSON/ },
  { name: 'model.json an array', files: () => new Map([['model.json', encoder.encode('[1, 2]')]]), message: /model\.json is not a TF\.js model\.json/ },
  // Weights.
  {
    name: 'duplicate weights',
    files: () =>
      sequential(
        [dense('d', 2, [null, 3])],
        [
          { name: 'd/kernel', shape: [3, 2] },
          { name: 'd/kernel', shape: [3, 2] },
        ],
      ),
    message: /lists weight d\/kernel twice/,
  },
  {
    name: 'NaN weights',
    files: () => sequential([dense('d', 2, [null, 3])], [{ name: 'd/kernel', shape: [3, 2], values: new Float32Array([0, 1, Number.NaN, 0, 0, 0]) }]),
    message: /d\/kernel holds NaN at element 2/,
  },
  {
    name: 'infinite weights',
    files: () => sequential([dense('d', 2, [null, 3])], [{ name: 'd/kernel', shape: [3, 2], values: new Float32Array([0, 0, 0, 0, 0, Number.POSITIVE_INFINITY]) }]),
    message: /holds Infinity at element 5/,
  },
  { name: 'truncated shard', files: () => new Map([...goodDense(), ['w.bin', goodDense().get('w.bin')!.subarray(0, 10)]]), message: /holds 10 bytes but its manifest's shapes and dtypes need 24/ },
  { name: 'shard too long', files: () => new Map([...goodDense(), ['w.bin', new Uint8Array(4096)]]), message: /holds 4096 bytes .* need 24/ },
  {
    name: 'missing shard',
    files: () => {
      const files = goodDense();
      files.delete('w.bin');
      return files;
    },
    message: /shard w\.bin named in model\.json is missing/,
  },
  { name: 'shard path leaving the folder', files: () => withModelJson(goodDense(), (m) => (m.weightsManifest[0].paths = ['../../etc/passwd'])), message: /leaves the model's folder/ },
  { name: 'weight of 2^29 elements', files: () => withModelJson(goodDense(), (m) => (m.weightsManifest[0].weights[0].shape = [1 << 15, 1 << 14])), message: /more than the 268435456 allowed/ },
  { name: 'weight dtype float64', files: () => withModelJson(goodDense(), (m) => (m.weightsManifest[0].weights[0].dtype = 'float64')), message: /weightsManifest\.0\.weights\.0\.dtype/ },
  { name: 'weight dtype string', files: () => withModelJson(goodDense(), (m) => (m.weightsManifest[0].weights[0].dtype = 'string')), message: /dtype string, which edgeflow does not convert/ },
  // Graph models.
  { name: 'unknown graph op', files: () => graph([placeholder('x', [-1, 3]), opNode('y', 'FancyOp', ['x'])]), message: /the graph uses op FancyOp, which TF\.js does not run/ },
  {
    name: 'seven unknown graph ops',
    files: () => graph([placeholder('x', [-1, 3]), ...Array.from({ length: 7 }, (_, i) => opNode(`y${i}`, `Evil${i}`, ['x']))]),
    message: /ops Evil0, Evil1, Evil2, Evil3, Evil4 and 2 more/,
  },
  {
    name: 'unknown op in a graph function',
    files: () => graph([placeholder('x', [-1, 3]), opNode('y', 'Relu', ['x'])], { function: [{ signature: { name: 'f' }, nodeDef: [opNode('z', 'SecretOp', [])] }] }),
    message: /op SecretOp/,
  },
  {
    name: 'graph input [-1, 8000, 8000, 3]',
    files: () => graph([placeholder('x', [-1, 8000, 8000, 3]), opNode('y', 'Relu', ['x'])]),
    message: /input "x" of shape \[-1, 8000, 8000, 3\]: about \d+ MiB/,
  },
  { name: 'graph input dim 1e10', files: () => graph([placeholder('x', [-1, 1e10]), opNode('y', 'Relu', ['x'])]), message: /input "x" has dimension "10000000000"/ },
  {
    name: 'graph of 50001 nodes',
    files: () => graph([placeholder('x', [-1, 3]), ...Array.from({ length: 50_000 }, (_, i) => opNode(`n${i}`, 'Identity', ['x']))]),
    message: /50001 nodes, more than the 50000/,
  },
  { name: 'graph node without op', files: () => graph([placeholder('x', [-1, 3]), { name: 'y', input: ['x'] }]), message: /graph node "y" has no op/ },
  // Archives.
  {
    name: 'lying zip (declares 100 bytes, inflates to 520 MiB)',
    files: () => one('m.zip', zipOf([{ name: 'model.json', data: zeroBomb(), method: 8, size: 100 }])),
    message: /"model\.json" declares 100 bytes but holds more/,
  },
  { name: 'zip bomb declaring 3 GiB', files: () => one('m.zip', zipOf([{ name: 'w.bin', data: zeroBomb(), method: 8, size: 3 * 2 ** 30 }])), message: /zip expands to more than 1073741824 bytes/ },
  {
    name: 'zip in a zip: 540 MiB inflated, then 540 MiB stored inside it (one budget for both)',
    files: () => one('m.zip', zipOf([{ name: 'inner.zip', data: deflated(storedZerosZip('w.bin', 540 * MiB)), method: 8, size: 540 * MiB + 2 * 'w.bin'.length + 98 }])),
    message: /zip expands to more than 1073741824 bytes .*nested archives count together/,
  },
  {
    name: 'zip in a zip in a zip of stored entries',
    files: () => one('m.zip', zipOf([{ name: 'a.zip', data: zipOf([{ name: 'b.zip', data: zipOf([{ name: 'x.bin', data: new Uint8Array(8) }]) }]) }])),
    message: /nests archives more than 2 deep/,
  },
  {
    name: 'zips nested 3 deep',
    files: () => one('m.zip', zipOf([{ name: 'a.zip', data: zipOf([{ name: 'b.zip', data: zipOf([{ name: 'c.zip', data: zipFiles(goodDense()) }]) }]) }])),
    message: /nests archives more than 2 deep/,
  },
  { name: 'zip of 10001 entries', files: () => one('m.zip', zipOf(Array.from({ length: 10_001 }, (_, i) => ({ name: `f${i}`, data: new Uint8Array(0) })))), message: /more than 10000 entries/ },
  { name: 'zip entry escaping with ..', files: () => one('m.zip', zipOf([{ name: '../evil.json', data: encoder.encode('{}') }])), message: /escapes the archive/ },
  { name: 'zip entry with an absolute path', files: () => one('m.zip', zipOf([{ name: '/etc/model.json', data: encoder.encode('{}') }])), message: /absolute path/ },
  { name: 'truncated zip', files: () => one('m.zip', zipFiles(goodDense()).subarray(0, 60)), message: /not a readable zip archive: no end of central directory/ },
  { name: 'stored entry lying about its size', files: () => one('m.zip', zipOf([{ name: 'model.json', data: encoder.encode('{"a":1}'), size: 3 }])), message: /declares 3 bytes but holds 7/ },
  { name: 'zip with bzip2 entries', files: () => one('m.zip', zipOf([{ name: 'model.json', data: encoder.encode('{}'), method: 12 }])), message: /compression method 12/ },
  {
    name: 'deflate stream cut short',
    files: () => one('m.zip', zipOf([{ name: 'model.json', data: deflatedZeros(100_000).subarray(0, 20), method: 8, size: 100_000 }])),
    message: /not a readable zip archive: model\.json: unexpected EOF|declares 100000 bytes but holds \d+ \(truncated stream\)/,
  },
  {
    name: 'zip with no model',
    files: () =>
      one(
        'm.zip',
        zipOf([
          { name: 'readme.txt', data: encoder.encode('hello') },
          { name: 'x.bin', data: new Uint8Array(8) },
        ]),
      ),
    message: /no model found in readme\.txt, x\.bin/,
  },
  // Other files.
  { name: 'h5 garbage', files: () => one('m.h5', concatBytes([new Uint8Array([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), new Uint8Array(4096).fill(0x5a)])), message: /m\.h5/ },
  {
    name: '.keras with a garbage config.json',
    files: () =>
      one(
        'm.keras',
        zipOf([
          { name: 'config.json', data: encoder.encode('{"class_name": 12') },
          { name: 'model.weights.h5', data: new Uint8Array(16) },
        ]),
      ),
    message: /m\.keras/,
  },
  {
    name: '.keras with a deeply nested config.json',
    files: () =>
      one(
        'm.keras',
        zipOf([
          { name: 'config.json', data: encoder.encode(`{"class_name":"Sequential","config":{"layers":${deepJson(100_000)}}}`) },
          { name: 'model.weights.h5', data: new Uint8Array(16) },
        ]),
      ),
    message: /m\.keras\/config\.json nests arrays \/ objects more than 100 deep/,
  },
  { name: 'random bytes', files: () => one('m.bin', crypto.getRandomValues(new Uint8Array(1024))), message: /no model found in m\.bin/ },
  { name: 'no files', files: () => new Map(), message: /no files were given/ },
];

const figures: string[] = [];

beforeAll(async () => {
  await tf.setBackend('cpu');
});

afterAll(() => {
  console.log(`hostile models: RSS growth and time per refusal\n${figures.join('\n')}`);
});

describe('hostile model files are refused before they cost anything', () => {
  it(`generates at least 45 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(45);
  });

  it('the good model they are made from converts', async () => {
    const store = new MemoryStore();
    const published = await convertAndPublish(store, goodDense(), { name: 'good', quantize: 'none', samples: 2 });
    expect(published.version).toBe(1);
  });

  for (const hostile of CASES) {
    it(hostile.name, async () => {
      const files = hostile.files();
      const store = new MemoryStore();
      const rss = process.memoryUsage().rss;
      const started = performance.now();
      const error = await convertAndPublish(store, files, { name: 'hostile', quantize: 'uint8', samples: 2 }).catch((e: unknown) => e);
      const ms = performance.now() - started;
      const growth = process.memoryUsage().rss - rss;
      figures.push(`  ${hostile.name}: ${(growth / MiB).toFixed(0)} MiB, ${ms.toFixed(0)} ms`);
      expect(isEdgeflowError(error, hostile.code ?? 'unconvertible'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(hostile.message);
      expect((error as Error).stack ?? '').not.toMatch(/RangeError|Maximum call stack/);
      expect((await store.list('')).objects, 'nothing may be published').toEqual([]);
      expect(growth, `RSS grew by ${(growth / MiB).toFixed(0)} MiB`).toBeLessThan(MAX_RSS_GROWTH);
    });
  }
});

describe("a Worker's budgets", () => {
  it('an archive unpacking to 70 MiB is read on Node and refused in a Worker, naming the 64 MiB budget', async () => {
    const zip = await zeroDenseZip(4096, 4480);
    const decoded = await readModel(new Map([['big.zip', zip]]));
    expect(decoded.weights.reduce((sum, w) => sum + w.values.byteLength, 0)).toBeGreaterThan(70 * MiB);
    const error = await readModel(new Map([['big.zip', zip]]), WORKER_LIMITS).catch((e: unknown) => e);
    expect(isEdgeflowError(error, 'unconvertible'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/^zip expands to more than 67108864 bytes \(64 MiB, the decompressed budget of a conversion in a Worker \(a 128 MB isolate\);/);
  });
});
