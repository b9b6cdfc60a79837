// BatchNormalization folding (converter/optimize/): which pairs are folded, that the folded
// model computes what the original does in stock TF.js, and how conversion uses it (the
// per-kernel precision policy, the measured output error folded and kept, the fallback when the
// folded model misses the tolerance).
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
import { foldKeepsPrecision } from '../../converter/optimize/fold-policy.ts';
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
    // float32: folding is exact, so nothing is measured against it.
    const folded = await convertModel(model, { name: 'branchy', quantize: 'none', samples: 4 });
    expect(folded.metadata.optimizations).toEqual({ batchNormFolded: 4 });
    expect(folded.report.passed).toBe(true);
    const kept = await convertModel(model, { name: 'branchy', quantize: 'none', samples: 4, keepBatchNorm: true });
    expect(kept.metadata.optimizations).toBeUndefined();
    expect(Object.keys(folded.metadata.quantization.weights).length).toBeLessThan(Object.keys(kept.metadata.quantization.weights).length);
  });

  // Kernels at float32 (every fold passes the per-kernel check), biases and BN parameters at float16: the measured outputs decide.
  const mixed = 'none=*kernel,float16=*';

  it('keeps BatchNormalization where folding raises the measured output error at the dtypes asked', async () => {
    const model = await branchyModel();
    const details: string[] = [];
    const options = { name: 'branchy', quantize: mixed, samples: 8 } as const;
    const result = await convertModel(model, { ...options, onProgress: (p) => details.push(p.detail) });
    const kept = await convertModel(model, { ...options, keepBatchNorm: true });
    const measured = details.find((d) => /folded vs/.test(d));
    expect(details).toContain('folded 4 BatchNormalization layer(s) into the layers before them');
    expect(measured).toMatch(/output noise (\S+) folded vs (\S+) kept; BatchNormalization kept/);
    const [, foldedNoise, keptNoise] = /output noise (\S+) folded vs (\S+) kept/.exec(measured!)!;
    expect(Number(foldedNoise)).toBeGreaterThan(Number(keptNoise));
    expect(result.metadata.optimizations).toBeUndefined();
    expect(result.report.relativeError).toBeCloseTo(kept.report.relativeError, 9);
  });

  it('converts again with BatchNormalization kept when the folded model misses the tolerance', async () => {
    const model = await branchyModel();
    const options = { name: 'branchy', quantize: mixed, samples: 8 } as const;
    const kept = await convertModel(model, { ...options, keepBatchNorm: true });
    const details: string[] = [];
    const result = await convertModel(model, { ...options, tolerance: kept.report.relativeError * 1.01, onProgress: (p) => details.push(p.detail) });
    expect(result.metadata.optimizations).toBeUndefined();
    expect(result.report.relativeError).toBeCloseTo(kept.report.relativeError, 9);
    expect(details.some((d) => /converting again with it kept|BatchNormalization kept/.test(d))).toBe(true);
  });
});

describe('the per-kernel fold policy', () => {
  const candidate = (values: number[], scale: number[]) => {
    const channels = scale.length;
    const kernel = { name: 'k', shape: [values.length / channels, channels], dtype: 'float32' as const, values: Float32Array.from(values) };
    return { kernel, folded: { ...kernel, values: Float32Array.from(values, (v, i) => v * scale[i % channels]!) }, scale: Float64Array.from(scale) };
  };
  const values = Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.7) * 0.02);
  /** Ranges as chosen with real calibration data and clipping off. */
  const REAL_DATA = { clipOutliers: false, holdZero: false };

  it('never folds kernels stored at float16 or uint16, even where the folded values store well', () => {
    for (const dtype of ['float16', 'uint16'] as const) {
      const policy = foldKeepsPrecision(() => dtype, REAL_DATA);
      expect(policy(candidate(values, [0.5, 0.5]))).toBe(false);
      expect(policy(candidate(values, [1, 1]))).toBe(false);
    }
  });

  it('folds only the kernels a mixed spec stores at float32 or (where the error does not grow) uint8', () => {
    const policy = foldKeepsPrecision((name) => (name === 'k' ? 'float16' : 'float32'), REAL_DATA);
    const c = candidate(values, [0.5, 0.5]);
    expect(policy(c)).toBe(false);
    expect(policy({ ...c, kernel: { ...c.kernel, name: 'other' } })).toBe(true);
  });

  it('folds at uint8 only where the storage error as the next layer sees it does not grow', () => {
    const policy = foldKeepsPrecision(() => 'uint8', REAL_DATA);
    expect(policy(candidate(values, [0.5, 0.5]))).toBe(true);
    expect(policy(candidate(values, [0.05, 4]))).toBe(false);
    expect(foldKeepsPrecision(() => 'float32', REAL_DATA)(candidate(values, [0.05, 4]))).toBe(true);
  });

  it("without real calibration data (the anchor's ranges) folds only the kernels stored at float32", () => {
    const anchor = { clipOutliers: false, holdZero: true };
    expect(foldKeepsPrecision(() => 'uint8', anchor)(candidate(values, [0.5, 0.5]))).toBe(false);
    expect(foldKeepsPrecision(() => 'float32', anchor)(candidate(values, [0.05, 4]))).toBe(true);
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
      const written = await writeUpload(store, 'branchy', files, { options: { quantize: 'none', keepBatchNorm }, source: 'test' });
      const outcome = await consumeUploadEvent(uploadEvent(written, 'test'), { store, ensureBackend: useNodeBackend, owner: 'test', samples: 2 });
      expect(outcome).toMatchObject({ kind: 'done', version });
      expect((await readVersionMetadata(store, 'branchy', version))!.optimizations).toEqual(keepBatchNorm ? undefined : { batchNormFolded: 4 });
    }
  });
});

describe.skipIf(!HAVE_FIXTURES)(`folding real models${HAVE_FIXTURES ? '' : ` (${NO_FIXTURES_REASON})`}`, () => {
  it('MobileNetV2 (nsfwjs): its 52 BNs folded at float32; none at float16 (served compiled, folded at load); none at uint8, where its kernels already sit on a uint8 grid', async () => {
    const files = readFixture('tfjs-layers/nsfwjs-mobilenet_v2');
    const full = await convertModel(files, { name: 'mobilenet', quantize: 'none', samples: 2 });
    expect(full.metadata.optimizations).toEqual({ batchNormFolded: 52 });
    const half = await convertModel(files, { name: 'mobilenet', quantize: 'float16', samples: 2 });
    expect(half.metadata.optimizations).toBeUndefined();
    expect(half.metadata.serving?.runtime).toBe('compiled-graph');
    expect(half.report.passed).toBe(true);
    const uint8 = await convertModel(files, { name: 'mobilenet', quantize: 'uint8', samples: 2 });
    expect(uint8.metadata.optimizations).toBeUndefined();
    expect(uint8.report.relativeError).toBe(0);
  });
});
