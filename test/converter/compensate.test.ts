// Error-compensating uint8 rounding (converter/quantize/gptq.ts, compensate.ts, layer-inputs.ts):
// GPTQ lowers a layer's output error on its grid; on a model trained here on real MNIST digits,
// uint8 calibrated on real digits has lower output error on other (held-out) digits than plain
// min/max uint8, in exactly as many bytes, and stock tf.loadLayersModel loads it; with synthetic
// calibration nothing data-driven is done (every weight on tensorflowjs_converter's own grid).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import type { Calibration } from '../../converter/calibration.ts';
import { convertModel } from '../../converter/convert.ts';
import { encodeWeights } from '../../converter/encode.ts';
import type { FileSet } from '../../converter/model.ts';
import { accumulate, compensatedCodes, nearestCodes, outputError, symmetrize } from '../../converter/quantize/gptq.ts';
import { layerInputs, linearSites } from '../../converter/quantize/layer-inputs.ts';
import { readModel } from '../../converter/read/index.ts';
import { type ModelFiles, shardModel } from '../../converter/shard.ts';
import { memoryHandler } from '../../shared/model-loader.ts';
import { modelFiles } from '../../models/train/save.ts';
import { loadMnistDigits, sampleDigits } from '../helpers/mnist.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { fixtureFiles, hasFixture, KERAS_FIXTURES, needs } from '../helpers/keras.ts';

beforeAll(async () => {
  await useNodeBackend();
});

describe('GPTQ rounding', () => {
  it('lowers a layer’s output error below nearest rounding on the same grid, on correlated inputs', () => {
    const [d, o, n] = [48, 16, 400];
    const noise = fixedValues(n * d, 3);
    const common = fixedValues(n, 4);
    // Inputs sharing a common component: their errors can cancel, which nearest rounding ignores.
    const x = Float32Array.from(noise, (v, k) => common[Math.floor(k / d)]! * 2 + v);
    const h = new Float64Array(d * d);
    accumulate(h, new Float64Array(d), x, d);
    symmetrize(h, d);
    const kernel = fixedValues(d * o, 5);
    const grid = { scale: 2 / 255, min: -1, levels: 255 };
    const gptq = compensatedCodes(kernel, d, o, h, grid, 0.01)!;
    const nearest = nearestCodes(kernel, grid);
    expect(gptq.every((q) => q <= 255)).toBe(true);
    expect(outputError(kernel, gptq, d, o, h, grid)).toBeLessThan(outputError(kernel, nearest, d, o, h, grid) / 2);
  });
});

describe('layer inputs', () => {
  it('captures SeparableConv2D’s two kernels and layers that share an input tensor', async () => {
    const input = tfl.input({ shape: [6, 6, 2] });
    const separable = tfl.layers.separableConv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'sep' }).apply(input) as tfl.SymbolicTensor;
    const conv = tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'conv' }).apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.add().apply([separable, conv]) as tfl.SymbolicTensor });
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    const sites = linearSites(decoded);
    expect(sites.map((s) => s.kernel).sort()).toEqual(['conv/kernel', 'sep/depthwise_kernel', 'sep/pointwise_kernel']);
    const batches = [1, 2].map((seed) => [{ shape: [1, 6, 6, 2], dtype: 'float32' as const, values: fixedValues(72, seed) }]);
    const stats = await layerInputs(
      decoded,
      shardModel(
        decoded,
        encodeWeights(decoded.weights, () => 'float32'),
      ),
      sites,
      { description: 'x', kind: 'data', batches, samples: 2 },
    );
    const byKernel = new Map(stats.map((s) => [s.site.kernel, s]));
    // Depthwise: one 9-tap H per input channel; pointwise: the 2 depthwise outputs; conv: 2 channels.
    expect(byKernel.get('sep/depthwise_kernel')).toMatchObject({ d: 9, o: 1 });
    expect(byKernel.get('sep/depthwise_kernel')!.hessians).toHaveLength(2);
    expect(byKernel.get('sep/pointwise_kernel')).toMatchObject({ d: 2, o: 3 });
    expect(byKernel.get('conv/kernel')).toMatchObject({ d: 2, o: 3 });
    for (const s of stats) expect(s.hessians.every((h) => h.some((v) => v > 0))).toBe(true);
  });
});

/** A small MLP trained here on real digits (a lab model): no fixture needed. Seeded weights and no shuffling, so every run trains the same model. */
async function trainedDigitModel(): Promise<FileSet> {
  const count = 2000;
  const { pixels, labels } = sampleDigits(loadMnistDigits(), count);
  const seeded = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [28, 28] }),
      tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: seeded(1) }),
      tfl.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: seeded(2) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'sparseCategoricalCrossentropy' });
  const x = tf.tensor3d(pixels, [count, 28, 28]);
  const y = tf.tensor1d(labels, 'float32');
  await model.fit(x, y, { epochs: 3, batchSize: 64, verbose: 0, shuffle: false });
  tf.dispose([x, y]);
  const files = await modelFiles(model);
  model.dispose();
  return files;
}

/** n digits from `from` every `stride`-th one (the package stores them by class), one per batch. */
function digitCalibration(from: number, n: number, shape: number[]): Calibration {
  const digits = loadMnistDigits();
  const stride = Math.floor(digits.labels.length / n);
  const batches = Array.from({ length: n }, (_, i) => {
    const at = from + i * stride;
    return [{ shape: [1, ...shape], dtype: 'float32' as const, values: digits.pixels.slice(at * 784, (at + 1) * 784) }];
  });
  return { description: `${n} MNIST digits`, kind: 'data', batches, samples: n };
}

async function outputs(files: ModelFiles, data: Calibration): Promise<Float32Array> {
  // Stock TF.js, as a user's page would load it.
  const model = await tfl.loadLayersModel(memoryHandler(files.modelJson, (p) => files.files.get(p)!));
  const x = tf.concat(data.batches.map(([t]) => tf.tensor(t!.values, t!.shape)));
  const y = model.predict(x) as tf.Tensor;
  const values = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  model.dispose();
  return values;
}

const squaredError = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + (v - b[i]!) ** 2, 0);
const weightBytes = (files: ModelFiles) => [...files.files].filter(([name]) => name !== 'model.json').reduce((sum, [, b]) => sum + b.byteLength, 0);

async function compareOnHeldOut(files: FileSet, shape: number[]) {
  const model = await readModel(files);
  const float32 = shardModel(
    model,
    encodeWeights(model.weights, () => 'float32'),
  );
  const minMax = shardModel(
    model,
    encodeWeights(model.weights, () => 'uint8'),
  );
  const details: string[] = [];
  const converted = await convertModel(files, {
    name: 'digits',
    quantize: 'uint8',
    tolerance: Infinity,
    calibration: () => digitCalibration(7, 48, shape),
    onProgress: (p) => details.push(p.detail),
  });
  const heldOut = digitCalibration(3, 500, shape);
  const reference = await outputs(float32, heldOut);
  return {
    details,
    converted: converted.modelFiles,
    minMax,
    compensatedError: squaredError(await outputs(converted.modelFiles, heldOut), reference),
    minMaxError: squaredError(await outputs(minMax, heldOut), reference),
    sites: linearSites(model).length,
  };
}

describe('uint8 with error-compensating rounding on real data', () => {
  it('beats plain min/max uint8 on held-out digits, in the same bytes, loadable by stock TF.js', async () => {
    const result = await compareOnHeldOut(await trainedDigitModel(), [28, 28]);
    expect(result.sites).toBe(2);
    console.log(
      `trained MLP, 500 held-out digits: output squared error ${result.compensatedError.toPrecision(3)} vs ${result.minMaxError.toPrecision(3)} with min/max (${result.details.filter((d) => /compensat/.test(d)).join('; ')})`,
    );
    // The compensation step ran on the kernels' calibration inputs (whether GPTQ's rounding or only the range choice is kept is decided by measured noise).
    expect(result.details.some((d) => /error-compensating rounding of \d+ uint8 kernel/.test(d))).toBe(true);
    expect(result.compensatedError).toBeLessThan(result.minMaxError * 0.8);
    expect(weightBytes(result.converted)).toBe(weightBytes(result.minMax));
    // Per-tensor affine uint8 in the manifest: what stock TF.js dequantizes.
    for (const spec of result.converted.modelJson.weightsManifest.flatMap((g) => g.weights)) {
      expect(spec.quantization).toEqual({ dtype: 'uint8', scale: expect.any(Number), min: expect.any(Number) });
    }
  }, 120_000);

  it.skipIf(!hasFixture(KERAS_FIXTURES.mnistMlp))(
    `is never worse than min/max on the Keras MLP fixture${needs(KERAS_FIXTURES.mnistMlp)}`,
    async () => {
      const result = await compareOnHeldOut(fixtureFiles(KERAS_FIXTURES.mnistMlp), [28, 28]);
      console.log(`Keras MLP fixture, 500 held-out digits: output squared error ${result.compensatedError.toPrecision(3)} vs ${result.minMaxError.toPrecision(3)} with min/max`);
      expect(result.compensatedError).toBeLessThanOrEqual(result.minMaxError);
      expect(weightBytes(result.converted)).toBe(weightBytes(result.minMax));
    },
    120_000,
  );

  it('does nothing data-driven on synthetic calibration: every uint8 weight is on tensorflowjs_converter’s own grid, BN kept', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [12], units: 6, activation: 'relu' }), tfl.layers.batchNormalization(), tfl.layers.dense({ units: 3 })],
    });
    // Positive BatchNormalization variances and scales: one-signed, where the anchor's range (widened to hold 0) differs from [min, max].
    setFixedWeights(model, 3);
    const files = await modelFiles(model);
    model.dispose();
    const details: string[] = [];
    const converted = await convertModel(files, { name: 'synthetic', quantize: 'uint8', tolerance: Infinity, onProgress: (p) => details.push(p.detail) });
    expect(details.some((d) => /compensat|equaliz/.test(d))).toBe(false);
    expect(converted.metadata.optimizations?.batchNormFolded).toBeUndefined();
    const source = new Map((await readModel(files)).weights.map((w) => [w.name, w.values as Float32Array]));
    const specs = converted.modelFiles.modelJson.weightsManifest.flatMap((group) => group.weights);
    expect(specs.filter((spec) => /moving_variance/.test(spec.name))).toHaveLength(1);
    for (const spec of specs) {
      // tensorflowjs_converter (quantization.py): the range widened to hold 0, min nudged onto a level.
      const values = source.get(spec.name)!;
      const [lo, hi] = [Math.min(0, ...values), Math.max(0, ...values)];
      const scale = (hi - lo) / 255;
      expect(spec.quantization?.dtype).toBe('uint8');
      if (hi === lo) continue;
      expect(spec.quantization!.scale).toBeCloseTo(scale, 12);
      expect(spec.quantization!.min).toBeCloseTo(-Math.round(-lo / scale) * scale, 12);
    }
  });
});
