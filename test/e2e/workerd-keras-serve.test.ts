// Keras files end to end: converted and published (uint8 / float16) into the R2 bucket of the
// real edge Worker running in workerd, then served over HTTP (TF Serving REST and Open Inference
// v2). Predictions must equal stock TF.js in Node on the same published files, and the MNIST MLP
// must read real digits right.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { loadModel } from '../../shared/model-loader.ts';
import { keys } from '../../shared/names.ts';
import { ModelJson } from '../../shared/schemas/model-json.ts';
import { buildWorker, startWorker, type RunningWorker } from '../../scripts/edge-worker.ts';
import { fixtureFiles, hasFixture, KERAS_FIXTURES, needs } from '../helpers/keras.ts';
import { loadMnistDigits, sampleDigits } from '../helpers/mnist.ts';

const MODELS = [
  { name: 'fer-emotion', file: KERAS_FIXTURES.xception, quantize: 'float16' },
  { name: 'imdb-lstm', file: KERAS_FIXTURES.lstm, quantize: 'uint8' },
  { name: 'mnist-mlp', file: KERAS_FIXTURES.mnistMlp, quantize: 'uint8' },
] as const;
const present = MODELS.filter((m) => hasFixture(m.file));

let worker: RunningWorker;

const post = async (path: string, body: unknown) => {
  const response = await worker.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await response.json()) as Record<string, unknown>;
  expect(json.error, `${path}: ${String(json.error)}`).toBeUndefined();
  expect(response.status).toBe(200);
  return json;
};

/** Stock TF.js in Node on the files the Worker serves (read back from its bucket). */
async function stockPredict(name: string, input: tf.Tensor): Promise<number[][]> {
  const version = 1;
  const modelJson = ModelJson.parse(JSON.parse(new TextDecoder().decode((await worker.store.get(keys.versionFile(name, version, 'model.json')))!.body)));
  const shards = new Map<string, Uint8Array>();
  for (const path of modelJson.weightsManifest.flatMap((g) => g.paths)) shards.set(path, (await worker.store.get(keys.versionFile(name, version, path)))!.body);
  const model = await loadModel(modelJson, (path) => shards.get(path)!);
  const [output] = await model.predict([input]);
  const rows = (await output!.array()) as number[][];
  tf.dispose(output!);
  model.dispose();
  return rows;
}

const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));

beforeAll(async () => {
  if (present.length === 0) return;
  await useNodeBackend();
  worker = await startWorker(await buildWorker());
  for (const m of present) await convertAndPublish(worker.store, fixtureFiles(m.file), { name: m.name, quantize: m.quantize });
}, 180_000);

afterAll(async () => {
  await worker?.dispose();
});

describe('Keras models served from R2 by the Worker in workerd', () => {
  it.skipIf(!hasFixture(KERAS_FIXTURES.mnistMlp))(`mnist-mlp (.keras, uint8): TF Serving predict on real digits equals stock TF.js and reads the digits${needs(KERAS_FIXTURES.mnistMlp)}`, async () => {
    const digits = sampleDigits(loadMnistDigits(), 20);
    const images = Array.from({ length: 20 }, (_, i) => Array.from({ length: 28 }, (_, r) => Array.from(digits.pixels.subarray(i * 784 + r * 28, i * 784 + r * 28 + 28))));
    const { predictions } = (await post('/v1/models/mnist-mlp:predict', { instances: images })) as { predictions: number[][] };
    const stock = await stockPredict('mnist-mlp', tf.tensor3d(images));
    expect(maxDiff(predictions, stock)).toBeLessThan(1e-4);
    const correct = predictions.filter((row, i) => row.indexOf(Math.max(...row)) === digits.labels[i]).length;
    expect(correct).toBeGreaterThanOrEqual(19);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.lstm))(`imdb-lstm (Keras 3 .h5, uint8): Open Inference v2 infer on token ids equals stock TF.js${needs(KERAS_FIXTURES.lstm)}`, async () => {
    const tokens = [0, 1].map((seed) => Array.from({ length: 500 }, (_, i) => (i < 400 ? 0 : 1 + ((i * 7919 + seed * 104729) % 9998))));
    const meta = (await (await worker.fetch('/v2/models/imdb-lstm')).json()) as { inputs: { name: string }[] };
    const body = (await post('/v2/models/imdb-lstm/infer', { inputs: [{ name: meta.inputs[0]!.name, shape: [2, 500], datatype: 'FP32', data: tokens.flat() }] })) as {
      outputs: { shape: number[]; data: number[] }[];
    };
    expect(body.outputs[0]!.shape).toEqual([2, 1]);
    const served = [[body.outputs[0]!.data[0]!], [body.outputs[0]!.data[1]!]];
    const stock = await stockPredict('imdb-lstm', tf.tensor2d(tokens));
    expect(maxDiff(served, stock)).toBeLessThan(1e-4);
    for (const [p] of served) expect(p! > 0 && p! < 1).toBe(true);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.xception))(`fer-emotion (Keras 2.0.5 .hdf5, float16): 7 emotion probabilities equal stock TF.js${needs(KERAS_FIXTURES.xception)}`, async () => {
    const face = Array.from({ length: 64 }, (_, r) => Array.from({ length: 64 }, (_, c) => [((r * 31 + c * 17) % 255) / 255 - 0.5]));
    const { predictions } = (await post('/v1/models/fer-emotion:predict', { instances: [face] })) as { predictions: number[][] };
    expect(predictions[0]).toHaveLength(7);
    expect(predictions[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    expect(maxDiff(predictions, await stockPredict('fer-emotion', tf.tensor4d([face])))).toBeLessThan(1e-4);
  });
});
