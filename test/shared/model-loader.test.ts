// The runtime's loader (shared/model-loader.ts) reads weights across shard ends without
// concatenating them, and compiles a layers model by folding into its freshly decoded weights:
// a model split into 1 KiB shards, each in a buffer of its own as a store returns it, predicts
// bit for bit what the one-shard files predict, as the layers runtime and compiled, at float32
// and uint8; loading the same bytes twice gives the same predictions (nothing folds into them).
// On the wasm backend a compiled model's weights are decoded into their tensors' own memory on
// the wasm heap (shared/weight-tensors.ts): that holds when the heap grows mid-decode, and neither
// a dispose nor a failed load leaves any of that memory behind.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { encodeWeights } from '../../converter/encode.ts';
import type { DecodedModel } from '../../converter/model.ts';
import { readModel } from '../../converter/read/index.ts';
import { type ModelFiles, shardModel } from '../../converter/shard.ts';
import { modelFiles } from '../../models/train/save.ts';
import { ConversionError } from '../../shared/errors.ts';
import { loadModel } from '../../shared/model-loader.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

/** Conv → BatchNorm → ReLU → Conv → BatchNorm → flatten → Dense over [1, 12, 12, 3]: about 9 KiB of float32 weights. */
async function convBatchNormModel(): Promise<DecodedModel> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 3], filters: 8, kernelSize: 3, useBias: false, name: 'conv1' }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.reLU({ name: 'relu1' }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, name: 'conv2' }),
      tfl.layers.batchNormalization({ name: 'bn2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 5, name: 'out' }),
    ],
  });
  setFixedWeights(model, 11);
  const files = await modelFiles(model);
  model.dispose();
  return readModel(files);
}

/** Each shard copied into a buffer of its own, as a store's reads return them. */
function ownBuffers(files: ModelFiles): Map<string, Uint8Array> {
  return new Map([...files.files].map(([path, bytes]) => [path, new Uint8Array(bytes)]));
}

async function predict(files: ModelFiles, shards: Map<string, Uint8Array>, compile: boolean, input: tf.Tensor): Promise<{ runtime: string; values: Float32Array }> {
  const model = await loadModel(files.modelJson, (path) => shards.get(path)!, { compile });
  try {
    const [output] = await model.predict([input]);
    const values = (await output!.data()) as Float32Array;
    output!.dispose();
    return { runtime: model.runtime, values };
  } finally {
    model.dispose();
  }
}

describe('loading a model from many shards', () => {
  for (const dtype of ['float32', 'uint8'] as const) {
    it(`${dtype}: 1 KiB shards predict what one shard predicts, layers and compiled`, async () => {
      const decoded = await convBatchNormModel();
      const encoded = encodeWeights(decoded.weights, () => dtype);
      const one = shardModel(decoded, encoded);
      const many = shardModel(decoded, encoded, 1024);
      expect(one.modelJson.weightsManifest[0]!.paths).toHaveLength(1);
      expect(many.modelJson.weightsManifest[0]!.paths.length).toBeGreaterThan(2);
      const input = tf.tensor(fixedValues(12 * 12 * 3, 3), [1, 12, 12, 3]);
      try {
        const manyShards = ownBuffers(many);
        const before = [...manyShards.values()].map((bytes) => bytes.slice());
        for (const compile of [false, true]) {
          const reference = await predict(one, ownBuffers(one), compile, input);
          const first = await predict(many, manyShards, compile, input);
          const second = await predict(many, manyShards, compile, input);
          expect(first.runtime).toBe(compile ? 'compiled-graph' : 'layers');
          expect(first.values).toEqual(reference.values);
          expect(second.values).toEqual(first.values);
        }
        // The shard bytes themselves are untouched by decoding and folding.
        expect([...manyShards.values()]).toEqual(before);
        const layers = await predict(many, manyShards, false, input);
        const compiled = await predict(many, manyShards, true, input);
        const scale = Math.max(1, ...layers.values.map(Math.abs));
        for (let i = 0; i < layers.values.length; i++) expect(Math.abs(compiled.values[i]! - layers.values[i]!) / scale).toBeLessThan(1e-5);
      } finally {
        input.dispose();
      }
    });
  }
});

/**
 * Dense 512 → 4096 → BatchNorm → Dense 2048 → Dense 3: 40 MiB of float32 kernels, more than the
 * wasm heap holds at first. Built on the cpu backend, so that the heap has not grown for it yet.
 */
async function largeDenseModel(): Promise<DecodedModel> {
  await tf.setBackend('cpu');
  try {
    return await denseModelFiles();
  } finally {
    await tf.setBackend('wasm');
  }
}

async function denseModelFiles(): Promise<DecodedModel> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [512], units: 4096, name: 'wide' }),
      tfl.layers.batchNormalization({ name: 'bn' }),
      tfl.layers.dense({ units: 2048, activation: 'relu', name: 'narrow' }),
      tfl.layers.dense({ units: 3, name: 'out' }),
    ],
  });
  setFixedWeights(model, 5);
  const files = await modelFiles(model);
  model.dispose();
  return readModel(files);
}

describe('compiled weights on the wasm heap', () => {
  const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;

  it('folds into live memory when the heap grows mid-decode, and frees all of it on dispose', async () => {
    expect(tf.getBackend()).toBe('wasm');
    const decoded = await largeDenseModel();
    const files = shardModel(
      decoded,
      encodeWeights(decoded.weights, () => 'uint8'),
    );
    const shards = ownBuffers(files);
    const input = tf.tensor(fixedValues(2 * 512, 9), [2, 512]);
    try {
      const dataIdsBefore = tf.backend().numDataIds();
      const tensorsBefore = tf.memory().numTensors;
      // Counts the heap's growths during the load (the real grow runs).
      const grow = WebAssembly.Memory.prototype.grow;
      let growths = 0;
      WebAssembly.Memory.prototype.grow = function (this: WebAssembly.Memory, pages: number) {
        growths++;
        return grow.call(this, pages);
      };
      const heapBefore = heapBytes();
      let model: Awaited<ReturnType<typeof loadModel>>;
      try {
        model = await loadModel(files.modelJson, (path) => shards.get(path)!, { compile: true });
      } finally {
        WebAssembly.Memory.prototype.grow = grow;
      }
      expect(model.runtime).toBe('compiled-graph');
      expect(heapBytes()).toBeGreaterThan(heapBefore);
      expect(growths).toBeGreaterThan(0);
      const [output] = await model.predict([input]);
      const compiled = (await output!.data()) as Float32Array;
      output!.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect(tf.backend().numDataIds()).toBe(dataIdsBefore);
      const layers = await predict(files, shards, false, input);
      const scale = Math.max(1, ...layers.values.map(Math.abs));
      for (let i = 0; i < layers.values.length; i++) expect(Math.abs(compiled[i]! - layers.values[i]!) / scale).toBeLessThan(1e-4);
    } finally {
      input.dispose();
    }
  });

  it('a load that fails on a NaN weight leaves no heap memory behind', async () => {
    const decoded = await convBatchNormModel();
    const files = shardModel(
      decoded,
      encodeWeights(decoded.weights, () => 'float32'),
    );
    const shards = ownBuffers(files);
    const specs = files.modelJson.weightsManifest[0]!.weights;
    // The last weight's first value: every weight before it is already on the heap when it fails.
    const offset = specs.slice(0, -1).reduce((sum, spec) => sum + 4 * spec.shape.reduce((a, b) => a * b, 1), 0);
    const [path] = files.modelJson.weightsManifest[0]!.paths;
    new DataView(shards.get(path!)!.buffer).setFloat32(offset, Number.NaN, true);
    const dataIdsBefore = tf.backend().numDataIds();
    await expect(loadModel(files.modelJson, (p) => shards.get(p)!, { compile: true })).rejects.toThrow(ConversionError);
    expect(tf.backend().numDataIds()).toBe(dataIdsBefore);
  });
});
