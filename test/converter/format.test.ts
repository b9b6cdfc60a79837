// --format layers | graph | auto, and how a published version is served: a layers model is stored
// as given and, where the conversion checked it, served compiled to fused graph ops at load; a
// graph model is stored for `--format graph`; both predict what the source predicts.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish, convertModel } from '../../converter/convert.ts';
import { loadVersion } from '../../functions/runtime/loader.ts';
import { readVersionMetadata } from '../../shared/bucket/published.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { modelFiles } from '../../models/train/save.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

async function convNet() {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [10, 10, 1], filters: 4, kernelSize: 3, useBias: false, name: 'conv' }),
      tfl.layers.batchNormalization({ name: 'bn' }),
      tfl.layers.reLU({ name: 'relu' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 3, activation: 'softmax', name: 'probs' }),
    ],
  });
  setFixedWeights(model, 40);
  const x = tf.tensor(
    fixedValues(2 * 100, 9).map((v) => (v + 1) / 2),
    [2, 10, 10, 1],
  );
  const expected = Array.from(await (model.predict(x) as tf.Tensor).data());
  const files = await modelFiles(model);
  model.dispose();
  return { files, x, expected };
}

describe('--format', () => {
  it('layers (default): stored as a layers model, served compiled to fused ops, predicting what the source does', async () => {
    const { files, x, expected } = await convNet();
    const store = new MemoryStore();
    const published = await convertAndPublish(store, files, { name: 'net', quantize: 'float16', samples: 4 });
    expect(published.metadata.format).toBe('layers-model');
    expect(published.metadata.serving).toMatchObject({ runtime: 'compiled-graph' });
    const edgeflow = (await readVersionMetadata(store, 'net', published.version))!;
    const { model } = await loadVersion(store, 'net', published.version, edgeflow, { warmUp: false });
    try {
      expect(model.runtime).toBe('compiled-graph');
      expect(model.inputs.map((i) => i.name)).toEqual(['conv_input']);
      expect(model.outputs.map((o) => o.name)).toEqual(['probs']);
      const [y] = await model.predict([x]);
      const got = Array.from(await y!.data());
      y!.dispose();
      got.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 2));
    } finally {
      model.dispose();
    }
  });

  it('graph: stored as a graph model of fused ops that stock tf.loadGraphModel runs', async () => {
    const { files } = await convNet();
    const result = await convertModel(files, { name: 'net', quantize: 'none', samples: 4, format: 'graph' });
    expect(result.metadata.format).toBe('graph-model');
    expect(result.metadata.serving).toMatchObject({ runtime: 'graph', ops: { _FusedConv2D: 1, Reshape: 1, _FusedMatMul: 1, Softmax: 1 }, fusedLayers: 2 });
    expect(result.report.relativeError).toBeLessThan(1e-5);
    expect(JSON.parse(new TextDecoder().decode(result.modelFiles.files.get('model.json')))).toMatchObject({ format: 'graph-model' });
  });

  it('auto at float32 compiles to the graph; at float16 or uint16 it keeps the layers model with its BatchNormalization unfolded', async () => {
    const { files } = await convNet();
    const full = await convertModel(files, { name: 'net', quantize: 'none', samples: 4, format: 'auto' });
    expect(full.metadata.format).toBe('graph-model');
    for (const quantize of ['float16', 'uint16', 'uint8=probs/*,float16=*']) {
      const result = await convertModel(files, { name: 'net', quantize, samples: 4, format: 'auto' });
      expect(result.metadata.format).toBe('layers-model');
      expect(result.metadata.optimizations).toBeUndefined();
      const modelJson = JSON.parse(new TextDecoder().decode(result.modelFiles.files.get('model.json')));
      expect(JSON.stringify(modelJson.modelTopology)).toContain('"class_name":"BatchNormalization"');
      const stored = modelJson.weightsManifest.flatMap((group: { weights: { name: string }[] }) => group.weights.map((w) => w.name));
      expect(stored).toEqual(expect.arrayContaining(['bn/gamma', 'bn/beta', 'bn/moving_mean', 'bn/moving_variance']));
      expect(result.metadata.serving).toMatchObject({ runtime: 'compiled-graph' });
    }
  });

  it('graph at float16: BatchNormalization folded by default; with keepBatchNorm its own op of its four stored vectors, as the layers model stores them', async () => {
    const { files } = await convNet();
    const folded = await convertModel(files, { name: 'net', quantize: 'float16', samples: 4, format: 'graph' });
    expect(folded.metadata.serving).toMatchObject({ runtime: 'graph', ops: { _FusedConv2D: 1, Reshape: 1, _FusedMatMul: 1, Softmax: 1 }, fusedLayers: 2 });
    const result = await convertModel(files, { name: 'net', quantize: 'float16', samples: 4, format: 'graph', keepBatchNorm: true });
    expect(result.metadata.format).toBe('graph-model');
    expect(result.metadata.serving).toMatchObject({ runtime: 'graph', ops: { _FusedConv2D: 1, FusedBatchNormV3: 1, Relu: 1, _FusedMatMul: 1 }, fusedLayers: 0 });
    expect(result.report.relativeError).toBeLessThan(1e-2);
    const stored = JSON.parse(new TextDecoder().decode(result.modelFiles.files.get('model.json'))).weightsManifest.flatMap((g: { weights: { name: string }[] }) => g.weights.map((w) => w.name));
    expect(stored).toEqual(expect.arrayContaining(['bn/gamma', 'bn/beta', 'bn/moving_mean', 'bn/moving_variance']));
    // The same values the layers model stores at float16, run by the same tf.batchNorm: the same outputs.
    const layers = await convertModel(files, { name: 'net', quantize: 'float16', samples: 4 });
    expect(result.report.relativeError).toBeCloseTo(layers.report.relativeError, 5);
  });

  it('graph: refuses by name a model the compiler cannot lower; auto keeps it a layers model', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.repeatVector({ inputShape: [4], n: 2, name: 'repeat' }), tfl.layers.flatten({ name: 'flat' })] });
    const files = await modelFiles(model);
    model.dispose();
    await expect(convertModel(files, { name: 'p', samples: 2, format: 'graph' })).rejects.toThrow(
      /--format graph: layer "repeat" of class RepeatVector has no graph lowering yet; convert with --format layers/,
    );
    const auto = await convertModel(files, { name: 'p', samples: 2, format: 'auto' });
    expect(auto.metadata.format).toBe('layers-model');
    expect(auto.metadata.serving).toEqual({ runtime: 'layers', reason: 'a layer has no graph lowering yet' });
  });
});
