// Micro-batching in the runtime (functions/runtime/batcher.ts), on the wasm backend: concurrent
// requests merged along the batch axis answer exactly what each request run alone answers
// (real digits through the demo CNN and a real trained Keras MLP), row by row and in order;
// requests of other shapes are never merged; a request's own rows count toward the maximum;
// models with a fixed batch never batch; a failing merged run fails only the request at fault;
// a full queue is a 503.
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { runModel } from '../../functions/inference.ts';
import { Batcher, type BatchingOptions, noBatchCounts } from '../../functions/runtime/batcher.ts';
import { predictOnce, type InputTensor, type OutputTensor } from '../../functions/runtime/predict.ts';
import { ModelRuntime } from '../../functions/runtime/runtime.ts';
import { startNodeBackend } from '../../functions/runtime/backend-node.ts';
import { modelFiles } from '../../models/index.ts';
import { buildMnistCnn } from '../../scripts/demo-models.ts';
import { isEdgeflowError } from '../../shared/errors.ts';
import type { LoadedModel } from '../../shared/model-loader.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { fixtureFiles, hasFixture, KERAS_FIXTURES, needs } from '../helpers/keras.ts';
import { loadMnistDigits, sampleDigits } from '../helpers/mnist.ts';
import { setFixedWeights, tinyImageModel } from '../helpers/tiny-models.ts';

const store = new MemoryStore();
const ON: BatchingOptions = { maxBatchSize: 16, batchTimeoutMicros: 20_000, maxEnqueuedBatches: 0 };

/** A layers model over images of any size: Conv 3x3 → global average → Dense 3. */
async function anySizeImageModel() {
  const model = tfl.sequential({
    layers: [tfl.layers.conv2d({ inputShape: [null, null, 3], filters: 4, kernelSize: 3, activation: 'relu' }), tfl.layers.globalAveragePooling2d({}), tfl.layers.dense({ units: 3 })],
  });
  setFixedWeights(model, 3);
  try {
    return await modelFiles(model);
  } finally {
    model.dispose();
  }
}

beforeAll(async () => {
  await useNodeBackend();
  await convertAndPublish(store, await buildMnistCnn(), { name: 'mnist-cnn', quantize: 'uint8', samples: 4 });
  await convertAndPublish(store, await anySizeImageModel(), { name: 'any-size', quantize: 'none', samples: 1 });
  await convertAndPublish(store, await tinyImageModel(2), { name: 'fixed-batch', quantize: 'none', samples: 1 });
  if (hasFixture(KERAS_FIXTURES.mnistMlp)) await convertAndPublish(store, fixtureFiles(KERAS_FIXTURES.mnistMlp), { name: 'keras-mlp', quantize: 'uint8', samples: 4 });
}, 120_000);

const runtimeWith = (batching?: BatchingOptions) => new ModelRuntime({ store, backend: startNodeBackend, warmUp: 'never', batching });

async function loaded(runtime: ModelRuntime, name: string): Promise<LoadedModel> {
  const acquired = await runtime.acquire(name);
  acquired.release();
  return acquired.entry.model;
}

/** Request i: `rows[i]` real digits (consecutive samples), shaped as the model's input. */
function digitRequests(rows: number[], shape: number[]): InputTensor[][] {
  const total = rows.reduce((a, b) => a + b, 0);
  const { pixels } = sampleDigits(loadMnistDigits(), total);
  let row = 0;
  return rows.map((n) => {
    const values = pixels.slice(row * 784, (row + n) * 784);
    row += n;
    return [{ dtype: 'float32', shape: [n, ...shape], values }];
  });
}

/** Each request's outputs through runModel, all started at once, against each run alone. */
async function expectSameAsAlone(model: LoadedModel, requests: InputTensor[][]): Promise<OutputTensor[][]> {
  const batched = await Promise.all(requests.map((inputs) => runModel(model, inputs)));
  const alone: OutputTensor[][] = [];
  for (const inputs of requests) alone.push(await predictOnce(model, inputs));
  expect(batched.length).toBe(requests.length);
  batched.forEach((outputs, i) => {
    expect(outputs.map((o) => o.shape)).toEqual(alone[i]!.map((o) => o.shape));
    expect(outputs.map((o) => o.shape[0])).toEqual(outputs.map(() => requests[i]![0]!.shape[0]));
    // Bit for bit, not within a tolerance.
    expect(outputs.map((o) => Array.from(o.values))).toEqual(alone[i]!.map((o) => Array.from(o.values)));
  });
  return batched;
}

describe('micro-batching', () => {
  it('merges concurrent requests of real digits (the uint8 demo CNN) and answers each exactly as alone', async () => {
    const runtime = runtimeWith(ON);
    const model = await loaded(runtime, 'mnist-cnn');
    const rows = [1, 2, 1, 3, 1, 1, 4, 1, 2, 1, 1, 1, 5, 1, 1, 2, 1, 1, 3, 1, 1, 1, 2, 1];
    const outputs = await expectSameAsAlone(model, digitRequests(rows, [28, 28, 1]));
    // The digits differ, so a request given another's rows would be seen.
    expect(new Set(outputs.map((o) => Array.from(o[0]!.values.slice(0, 10)).join())).size).toBe(rows.length);
    const stats = runtime.stats().batching!;
    expect(stats.mergedRuns).toBeGreaterThanOrEqual(3);
    expect(stats.mergedRequests).toBeGreaterThanOrEqual(rows.length - 2);
    expect(stats.reruns).toBe(0);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.mnistMlp))(`a real trained Keras MLP answers the same merged as alone${needs(KERAS_FIXTURES.mnistMlp)}`, async () => {
    const runtime = runtimeWith(ON);
    const model = await loaded(runtime, 'keras-mlp');
    await expectSameAsAlone(model, digitRequests([1, 1, 2, 1, 3, 1, 1, 1, 1, 4, 1, 1], [28, 28]));
    expect(runtime.stats().batching!.mergedRuns).toBeGreaterThanOrEqual(1);
  });

  it('counts a request own rows toward max_batch_size; a request that large runs alone', async () => {
    const runtime = runtimeWith({ ...ON, maxBatchSize: 4 });
    const model = await loaded(runtime, 'mnist-cnn');
    // 3 + 2 > 4: never one run; 6 ≥ 4: alone at once.
    await expectSameAsAlone(model, digitRequests([3, 2, 6], [28, 28, 1]));
    expect(runtime.stats().batching).toMatchObject({ runs: 2, mergedRuns: 0 });
    await expectSameAsAlone(model, digitRequests([1, 3, 2, 2], [28, 28, 1]));
    expect(runtime.stats().batching).toMatchObject({ runs: 4, mergedRuns: 2, mergedRequests: 4 });
  });

  it('never merges requests of different shapes', async () => {
    const runtime = runtimeWith(ON);
    const model = await loaded(runtime, 'any-size');
    const image = (size: number, seed: number): InputTensor[] => [
      { dtype: 'float32', shape: [1, size, size, 3], values: Float32Array.from({ length: size * size * 3 }, (_, i) => Math.sin(i * seed)) },
    ];
    const requests = [image(8, 1), image(10, 2), image(8, 3), image(10, 4), image(12, 5), image(8, 6)];
    await expectSameAsAlone(model, requests);
    // Three shapes: three runs (8x8 three requests, 10x10 two, 12x12 alone).
    expect(runtime.stats().batching).toMatchObject({ runs: 3, mergedRuns: 2, mergedRequests: 5 });
  });

  it('never batches a model whose batch dimension is fixed', async () => {
    const runtime = runtimeWith(ON);
    const model = await loaded(runtime, 'fixed-batch');
    expect(model.inputs[0]!.shape[0]).toBe(2);
    const request = (): InputTensor[] => [{ dtype: 'float32', shape: [2, 8, 8, 3], values: Float32Array.from({ length: 2 * 8 * 8 * 3 }, () => Math.random()) }];
    await expectSameAsAlone(model, [request(), request(), request()]);
    expect(runtime.stats().batching).toMatchObject({ runs: 0, mergedRuns: 0 });
  });

  it('is off unless configured', async () => {
    const runtime = runtimeWith();
    const model = await loaded(runtime, 'mnist-cnn');
    await expectSameAsAlone(model, digitRequests([1, 1, 1], [28, 28, 1]));
    expect(runtime.stats().batching).toBeNull();
  });
});

describe('a failing merged run', () => {
  /** The real model, except that a run whose input holds `poison` throws, as a kernel error would. */
  function failingOn(model: LoadedModel, poison: number): LoadedModel {
    return {
      ...model,
      predict: async (inputs) => {
        if ((await inputs[0]!.data()).includes(poison)) throw new Error(`kernel failed on ${poison}`);
        return model.predict(inputs);
      },
    };
  }

  it('fails only the request at fault; the others get their own answers', async () => {
    const real = await loaded(runtimeWith(), 'mnist-cnn');
    const model = failingOn(real, -7);
    const counts = noBatchCounts();
    const batcher = new Batcher(model, ON, counts);
    const requests = digitRequests([1, 2, 1, 1, 1], [28, 28, 1]);
    (requests[2]![0]!.values as Float32Array)[5] = -7;
    const settled = await Promise.allSettled(requests.map((inputs) => batcher.run(inputs)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(((settled[2] as PromiseRejectedResult).reason as Error).message).toBe('kernel failed on -7');
    for (const [i, s] of settled.entries()) {
      if (s.status === 'fulfilled') expect(s.value.map((o) => Array.from(o.values))).toEqual((await predictOnce(real, requests[i]!)).map((o) => Array.from(o.values)));
    }
    expect(counts).toMatchObject({ reruns: 5, mergedRuns: 0 });
  });

  it('a model that mixes rows (its output loses the batch axis) is run alone from then on', async () => {
    const real = await loaded(runtimeWith(), 'mnist-cnn');
    const model: LoadedModel = { ...real, predict: async (inputs) => [tf.sum(inputs[0]!, 0, true)] };
    const counts = noBatchCounts();
    const batcher = new Batcher(model, ON, counts);
    const requests = digitRequests([1, 1, 1], [28, 28, 1]);
    const outputs = await Promise.all(requests.map((inputs) => batcher.run(inputs)));
    for (const [i, inputs] of requests.entries()) expect(Array.from(outputs[i]![0]!.values)).toEqual(Array.from((await predictOnce(model, inputs))[0]!.values));
    expect(counts).toMatchObject({ runs: 4, reruns: 3, mergedRuns: 0 });
    await Promise.all(requests.map((inputs) => batcher.run(inputs)));
    expect(counts.runs).toBe(4); // alone, without the batcher
  });
});

describe('max_enqueued_batches', () => {
  it('refuses a request past the limit with a 503 naming it', async () => {
    const model = await loaded(runtimeWith(), 'mnist-cnn');
    const batcher = new Batcher(model, { maxBatchSize: 4, batchTimeoutMicros: 20_000, maxEnqueuedBatches: 1 }, noBatchCounts());
    const requests = digitRequests([2, 1, 2], [28, 28, 1]);
    const first = batcher.run(requests[0]!);
    const second = batcher.run(requests[1]!);
    const third = batcher.run(requests[2]!).catch((error: unknown) => error);
    const refused = await third;
    expect(isEdgeflowError(refused, 'unavailable')).toBe(true);
    expect((refused as Error).message).toMatch(/batch queue is full \(1 batches of up to 4 rows/);
    expect((await first)[0]!.shape).toEqual([2, 10]);
    expect((await second)[0]!.shape).toEqual([1, 10]);
  });
});
