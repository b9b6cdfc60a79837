// BatchNormalization folding (converter/optimize/): which pairs are folded, that the folded
// model computes what the original does in stock TF.js, and how conversion uses it (the
// per-kernel precision policy, the fallback when the folded model misses the tolerance).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertModel } from '../../converter/convert.ts';
import { encodeWeights } from '../../converter/encode.ts';
import { consumeUploadEvent } from '../../converter/consumer.ts';
import type { DecodedModel, FileSet } from '../../converter/model.ts';
import { uploadEvent, writeUpload } from '../../shared/bucket/uploads.ts';
import { readVersionMetadata } from '../../shared/bucket/published.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { foldBatchNorm } from '../../converter/optimize/fold-batchnorm.ts';
import { readModel } from '../../converter/read/index.ts';
import { shardModel } from '../../converter/shard.ts';
import { modelFiles } from '../../models/train/save.ts';
import { loadModel } from '../../shared/model-loader.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { HAVE_FIXTURES, NO_FIXTURES_REASON, readFixture } from '../helpers/fixtures.ts';

beforeAll(async () => {
  await useNodeBackend();
});

/**
 * Folded: conv→bnConv, depthwise→bnDepthwise, separable→bnSeparable, dense→bnDense.
 * Kept: bnRelu (its conv has an activation), bnShared (its conv feeds two layers), bnOut (a model output).
 */
async function branchyFiles(): Promise<FileSet> {
  const input = tfl.input({ shape: [8, 8, 3], name: 'image' });
  const bn = (name: string) => tfl.layers.batchNormalization({ name });
  let x = bn('bnConv').apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'conv' }).apply(input)) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ maxValue: 6, name: 'relu6' }).apply(x) as tfl.SymbolicTensor;
  x = bn('bnDepthwise').apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'depthwise' }).apply(x)) as tfl.SymbolicTensor;
  const separable = bn('bnSeparable').apply(tfl.layers.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'separable' }).apply(x)) as tfl.SymbolicTensor;
  const activated = bn('bnRelu').apply(tfl.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'relu', name: 'convRelu' }).apply(x)) as tfl.SymbolicTensor;
  const shared = tfl.layers.conv2d({ filters: 6, kernelSize: 1, name: 'convShared' }).apply(x) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'sum' }).apply([separable, activated, bn('bnShared').apply(shared) as tfl.SymbolicTensor, shared]) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(sum) as tfl.SymbolicTensor;
  const dense = bn('bnDense').apply(tfl.layers.dense({ units: 5, name: 'dense' }).apply(pooled)) as tfl.SymbolicTensor;
  const probs = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'probs' }).apply(dense) as tfl.SymbolicTensor;
  const side = bn('bnOut').apply(tfl.layers.dense({ units: 2, name: 'side' }).apply(pooled)) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: [probs, side], name: 'branchy' });
  setFixedWeights(model, 11);
  const files = await modelFiles(model);
  model.dispose();
  return files;
}

const branchyModel = async () => readModel(await branchyFiles());

async function predictions(model: DecodedModel, inputs: tf.Tensor): Promise<Float32Array[]> {
  const encoded = encodeWeights(model.weights, () => 'float32');
  const { modelJson, files } = shardModel(model, encoded);
  const loaded = await loadModel(modelJson, (path) => files.get(path)!);
  try {
    const outputs = await loaded.predict([inputs]);
    const values = await Promise.all(outputs.map(async (t) => (await t.data()) as Float32Array));
    tf.dispose(outputs);
    return values;
  } finally {
    loaded.dispose();
  }
}

const maxAbsDifference = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((values, o) => Math.max(...values.map((v, i) => Math.abs(v - b[o]![i]!)))));
const layerNames = (model: DecodedModel) => ((model.modelJson.modelTopology as { config: { layers: { config: { name: string } }[] } }).config.layers ?? []).map((l) => l.config.name);

describe('foldBatchNorm', () => {
  it('folds exactly the BN layers that follow a linear layer alone, and the model computes the same', async () => {
    const model = await branchyModel();
    const { model: folded, folded: names } = foldBatchNorm(model);
    expect(names.sort()).toEqual(['bnConv', 'bnDense', 'bnDepthwise', 'bnSeparable']);
    expect(layerNames(folded)).not.toContain('bnConv');
    expect(layerNames(folded)).toEqual(expect.arrayContaining(['bnRelu', 'bnShared', 'bnOut']));
    expect(folded.weights.map((w) => w.name)).toEqual(expect.arrayContaining(['conv/bias', 'depthwise/bias', 'separable/bias', 'dense/bias']));
    expect(folded.weights.some((w) => w.name.startsWith('bnConv/'))).toBe(false);
    expect(folded.weights.length).toBe(model.weights.length - 4 * 4 + 1); // conv had no bias; the others keep theirs
    // The source is untouched.
    expect(layerNames(model)).toContain('bnConv');

    const inputs = tf.tensor(fixedValues(4 * 8 * 8 * 3, 5), [4, 8, 8, 3]);
    const [before, after] = [await predictions(model, inputs), await predictions(folded, inputs)];
    inputs.dispose();
    expect(after.map((v) => v.length)).toEqual(before.map((v) => v.length));
    expect(maxAbsDifference(before, after)).toBeLessThan(1e-5);
  });

  it('folds in Sequential models, except a BN that is the output', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [6], units: 8, name: 'hidden' }),
        tfl.layers.batchNormalization({ name: 'norm' }),
        tfl.layers.activation({ activation: 'relu', name: 'act' }),
        tfl.layers.dense({ units: 3, name: 'last' }),
        tfl.layers.batchNormalization({ name: 'outNorm' }),
      ],
    });
    setFixedWeights(model, 3);
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    const { model: folded, folded: names } = foldBatchNorm(decoded);
    expect(names).toEqual(['norm']);
    const inputs = tf.tensor(fixedValues(5 * 6, 9), [5, 6]);
    expect(maxAbsDifference(await predictions(decoded, inputs), await predictions(folded, inputs))).toBeLessThan(1e-5);
    inputs.dispose();
  });

  it('leaves graph models and models without BatchNormalization as they are', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 2 })] });
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    const result = foldBatchNorm(decoded);
    expect(result.folded).toEqual([]);
    expect(result.model).toBe(decoded);
  });
});

describe('conversion with folding', () => {
  it('records the folds in edgeflow.json, and --keep-batchnorm (keepBatchNorm: true) keeps them', async () => {
    const model = await branchyModel();
    const folded = await convertModel(model, { name: 'branchy', quantize: 'float16', samples: 4 });
    expect(folded.metadata.optimizations).toEqual({ batchNormFolded: 4 });
    expect(folded.report.passed).toBe(true);
    const kept = await convertModel(model, { name: 'branchy', quantize: 'float16', samples: 4, keepBatchNorm: true });
    expect(kept.metadata.optimizations).toBeUndefined();
    expect(Object.keys(folded.metadata.quantization.weights).length).toBeLessThan(Object.keys(kept.metadata.quantization.weights).length);
  });

  it('converts again with BatchNormalization kept when the folded model misses the tolerance', async () => {
    const model = await branchyModel();
    const options = { name: 'branchy', quantize: 'uint8', samples: 8, clipOutliers: false } as const;
    const [folded, kept] = [await convertModel(model, { ...options, tolerance: 1 }), await convertModel(model, { ...options, tolerance: 1, keepBatchNorm: true })];
    // The construction this test relies on: at uint8 this model's folded form drifts more.
    expect(folded.metadata.optimizations?.batchNormFolded).toBeGreaterThan(0);
    expect(folded.report.relativeError).toBeGreaterThan(kept.report.relativeError);

    const tolerance = (folded.report.relativeError + kept.report.relativeError) / 2;
    const details: string[] = [];
    const result = await convertModel(model, { ...options, tolerance, onProgress: (p) => details.push(p.detail) });
    expect(result.metadata.optimizations).toBeUndefined();
    expect(result.report.relativeError).toBeCloseTo(kept.report.relativeError, 6);
    expect(details.some((d) => /converting again with it kept/.test(d))).toBe(true);
  });
});

describe('uploads', () => {
  it('fold unless the upload asks keepBatchNorm', async () => {
    const store = new MemoryStore();
    const files = await branchyFiles();
    for (const [version, keepBatchNorm] of [
      [1, false],
      [2, true],
    ] as const) {
      const written = await writeUpload(store, 'branchy', files, { options: { quantize: 'float16', keepBatchNorm }, source: 'test' });
      const outcome = await consumeUploadEvent(uploadEvent(written, 'test'), { store, ensureBackend: useNodeBackend, owner: 'test', samples: 2 });
      expect(outcome).toMatchObject({ kind: 'done', version });
      expect((await readVersionMetadata(store, 'branchy', version))!.optimizations).toEqual(keepBatchNorm ? undefined : { batchNormFolded: 4 });
    }
  });
});

describe.skipIf(!HAVE_FIXTURES)(`folding real models${HAVE_FIXTURES ? '' : ` (${NO_FIXTURES_REASON})`}`, () => {
  it('MobileNetV2 (nsfwjs): its 52 BNs folded at float16; none at uint8, where its kernels already sit on a uint8 grid', async () => {
    const files = readFixture('tfjs-layers/nsfwjs-mobilenet_v2');
    const half = await convertModel(files, { name: 'mobilenet', quantize: 'float16', samples: 2 });
    expect(half.metadata.optimizations).toEqual({ batchNormFolded: 52 });
    expect(half.report.passed).toBe(true);
    const uint8 = await convertModel(files, { name: 'mobilenet', quantize: 'uint8', samples: 2 });
    expect(uint8.metadata.optimizations).toBeUndefined();
    expect(uint8.report.relativeError).toBe(0);
  });
});
