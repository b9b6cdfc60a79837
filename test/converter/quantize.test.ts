// Quantization primitives against TF.js's own decoders: float16 bits, affine uint8/uint16 with
// zero exactly representable, the outlier-clipping range search, and the --quantize spec.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeWeights } from '../../converter/encode.ts';
import { affineParams, minMax, quantizeAffine, searchRange } from '../../converter/quantize/affine.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../shared/float16.ts';
import { dtypeForWeight, parseQuantizeSpec } from '../../shared/options/quantize-spec.ts';
import { fixedValues } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Decodes our encoded bytes with TF.js's own weight decoder (what stock loaders run). */
function decodeWithTfjs(values: Float32Array, dtype: 'float16' | 'uint8' | 'uint16', clipOutliers = false): Float32Array {
  const encoded = encodeWeights([{ name: 'w', shape: [values.length], dtype: 'float32', values }], () => dtype, { clipOutliers });
  const decoded = tf.io.decodeWeights(encoded.data.slice().buffer, encoded.specs as tf.io.WeightsManifestEntry[]);
  const result = decoded.w!.dataSync() as Float32Array;
  decoded.w!.dispose();
  return result;
}

describe('float16', () => {
  it('round-trips through TF.js with at most half-precision rounding error', () => {
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: an arbitrary value, not π
    const values = Float32Array.from([0, -0, 1, -1, 0.1, 65504, 1e-5, -3.14159, 6e-8, 1e-9, ...fixedValues(1000, 3)]);
    const back = decodeWithTfjs(values, 'float16');
    values.forEach((v, i) => expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -24)));
    expect(back[5]).toBe(65504);
  });

  it('saturates out-of-range values instead of producing infinity', () => {
    const halves = new Uint16Array(2);
    float32ToFloat16(Float32Array.from([1e6, -1e6]), halves);
    const back = new Float32Array(2);
    float16ToFloat32(halves, back);
    expect([...back]).toEqual([65504, -65504]);
  });
});

describe('affine uint8 / uint16', () => {
  it('represents zero exactly and stays within half a step elsewhere', () => {
    const values = Float32Array.from([0, ...fixedValues(999, 5).map((v) => v * 3 + 0.7)]);
    for (const dtype of ['uint8', 'uint16'] as const) {
      const back = decodeWithTfjs(values, dtype);
      expect(back[0]).toBe(0);
      const [lo, hi] = minMax(values);
      const step = (hi - lo) / (dtype === 'uint8' ? 255 : 65535);
      values.forEach((v, i) => expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(step * 0.5 + 1e-6));
    }
  });

  it('handles constant and all-positive weights', () => {
    expect([...decodeWithTfjs(new Float32Array(300).fill(0.25), 'uint8')].every((v) => Math.abs(v - 0.25) < 1e-7)).toBe(true);
    const positive = Float32Array.from(fixedValues(300, 9), (v) => v + 2);
    const back = decodeWithTfjs(positive, 'uint8');
    positive.forEach((v, i) => expect(Math.abs(back[i]! - v)).toBeLessThan(0.01));
  });

  it('clipping outliers lowers the error of weights with long tails, and only then', () => {
    // Laplace-distributed values (as trained kernels tend to be): the rare far tails stretch the
    // min/max grid; clipping them costs less than the finer steps gain (a few percent at 8 bits).
    const tailed = Float32Array.from(fixedValues(20000, 11), (v) => Math.sign(v) * -Math.log(1 - Math.abs(v) * 0.999999));
    const [tlo, thi] = minMax(tailed);
    expect(searchRange(tailed, 255, tlo, thi).clipped).toBe(true);
    const uniform = fixedValues(20000, 12);
    const mse = (values: Float32Array, clip: boolean) => {
      const back = decodeWithTfjs(values, 'uint8', clip);
      return values.reduce((sum, v, i) => sum + (back[i]! - v) ** 2, 0) / values.length;
    };
    expect(mse(tailed, true)).toBeLessThan(mse(tailed, false) * 0.99);
    const [lo, hi] = minMax(uniform);
    expect(searchRange(uniform, 255, lo, hi).clipped).toBe(false);
    expect(mse(uniform, true)).toBeCloseTo(mse(uniform, false), 12);
  });

  it('quantizeAffine reports its largest error', () => {
    const values = Float32Array.from([-1, -0.5, 0, 0.5, 1]);
    const params = affineParams(-1, 1, 255);
    const maxError = quantizeAffine(values, params, new Uint8Array(5), 255);
    expect(maxError).toBeGreaterThan(0);
    expect(maxError).toBeLessThanOrEqual(params.scale / 2 + 1e-7);
  });
});

describe('--quantize spec', () => {
  it('parses single modes and first-match rules with wildcards', () => {
    const rules = parseQuantizeSpec('uint8=conv*/kernel,float16=*');
    if (rules.kind !== 'rules') throw new Error('expected rules');
    expect(dtypeForWeight(rules, 'conv1/kernel')).toBe('uint8');
    expect(dtypeForWeight(rules, 'conv1/bias')).toBe('float16');
    expect(dtypeForWeight(rules, 'dense/kernel')).toBe('float16');
    const partial = parseQuantizeSpec('uint8=*/kernel');
    if (partial.kind !== 'rules') throw new Error('expected rules');
    expect(dtypeForWeight(partial, 'dense/bias')).toBe('float32');
    expect(parseQuantizeSpec('auto').kind).toBe('auto');
    const none = parseQuantizeSpec('none');
    expect(none.kind === 'rules' && dtypeForWeight(none, 'x')).toBe('float32');
    expect(() => parseQuantizeSpec('uint4')).toThrow(/bad --quantize rule "uint4"/);
  });
});
