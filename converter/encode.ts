// Encodes decoded weights into one contiguous buffer with a TF.js weights manifest,
// storing each float32 weight at the dtype chosen for it. Non-float weights pass through.
import type { WeightQuantization } from '../shared/schemas/edgeflow-json.ts';
import type { WeightSpec } from '../shared/schemas/model-json.ts';
import type { DecodedWeight } from './model.ts';
import { decodeWeights } from '../shared/weights.ts';
import { affineParams, minMax, quantizeAffine, searchRange } from './quantize/affine.ts';
import { float32ToFloat16WithError } from '../shared/float16.ts';
import type { StorageDtype } from '../shared/options/quantize-spec.ts';
import type { RoundedKernel } from './quantize/gptq.ts';

export interface EncodedWeights {
  specs: WeightSpec[];
  data: Uint8Array;
  /** Per float32 weight: the stored dtype and its error. */
  quantization: Record<string, WeightQuantization>;
}

export interface EncodeOptions {
  /** Search the uint8 / uint16 range for the lowest error instead of using raw min/max. */
  clipOutliers?: boolean;
  /** The anchor's ranges (tensorflowjs_converter's): min/max widened to hold 0, so that a conversion without real calibration data quantizes exactly as it does. */
  holdZero?: boolean;
  /** uint8 codes already chosen per weight (error-compensating rounding), stored as they are. */
  rounded?: Map<string, RoundedKernel>;
}

const BYTES: Record<StorageDtype, number> = { float32: 4, float16: 2, uint16: 2, uint8: 1 };
const LEVELS = { uint8: 255, uint16: 65535 } as const;

function storedBytes(weight: DecodedWeight, dtype: StorageDtype): number {
  const count = weight.values.length;
  if (weight.dtype === 'float32') return count * BYTES[dtype];
  return weight.dtype === 'bool' ? count : count * 4;
}

/** Writes one weight at `dtype` into target (exactly storedBytes long); returns its spec and error. */
function encodeWeight(weight: DecodedWeight, dtype: StorageDtype, target: Uint8Array, options: EncodeOptions): { spec: WeightSpec; quantization?: WeightQuantization } {
  const base = { name: weight.name, shape: weight.shape, dtype: weight.dtype };
  if (weight.dtype !== 'float32' || dtype === 'float32') {
    target.set(new Uint8Array(weight.values.buffer, weight.values.byteOffset, target.byteLength));
    return { spec: base, quantization: weight.dtype === 'float32' ? { dtype: 'float32', maxError: 0 } : undefined };
  }
  const values = weight.values as Float32Array;
  if (dtype === 'float16') {
    const maxError = float32ToFloat16WithError(values, new Uint16Array(target.buffer, target.byteOffset, values.length));
    return { spec: { ...base, quantization: { dtype: 'float16' } }, quantization: { dtype: 'float16', maxError } };
  }
  const levels = LEVELS[dtype];
  const rounded = dtype === 'uint8' ? options.rounded?.get(weight.name) : undefined;
  if (rounded) return { spec: { ...base, quantization: { dtype, scale: rounded.scale, min: rounded.min } }, quantization: { dtype, maxError: writeCodes(values, rounded, target) } };
  const params = weight.sourceGrid?.dtype === dtype ? { ...weight.sourceGrid, clipped: false } : chooseRange(values, levels, options);
  const quantized = dtype === 'uint8' ? target : new Uint16Array(target.buffer, target.byteOffset, values.length);
  const maxError = quantizeAffine(values, params, quantized, levels);
  return {
    spec: { ...base, quantization: { dtype, scale: params.scale, min: params.min } },
    quantization: { dtype, maxError, ...(params.clipped ? { clipped: true } : {}) },
  };
}

/** Writes chosen codes; returns the largest absolute error they leave. */
function writeCodes(values: Float32Array, rounded: RoundedKernel, target: Uint8Array): number {
  let maxError = 0;
  for (let i = 0; i < values.length; i++) {
    const code = rounded.codes[i]!;
    target[i] = code;
    const error = Math.abs(code * rounded.scale + rounded.min - values[i]!);
    if (error > maxError) maxError = error;
  }
  return maxError;
}

function chooseRange(values: Float32Array, levels: number, options: EncodeOptions) {
  const [min, max] = minMax(values);
  const [lo, hi] = options.holdZero ? [Math.min(min, 0), Math.max(max, 0)] : [min, max];
  // Clipping only pays at 8 bits; at 16 bits the steps are already far below any outlier's cost.
  return options.clipOutliers && levels === LEVELS.uint8 ? searchRange(values, levels, lo, hi) : affineParams(lo, hi, levels);
}

export function encodeWeights(weights: DecodedWeight[], dtypeOf: (weight: DecodedWeight) => StorageDtype, options: EncodeOptions = {}): EncodedWeights {
  const dtypes = weights.map((w) => (w.dtype === 'float32' ? dtypeOf(w) : 'float32'));
  const sizes = weights.map((w, i) => storedBytes(w, dtypes[i]!));
  // TF.js reads weights back to back, so the buffer is unpadded.
  const data = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  const specs: WeightSpec[] = [];
  const quantization: Record<string, WeightQuantization> = {};
  let offset = 0;
  weights.forEach((weight, i) => {
    const size = sizes[i]!;
    // Typed views need aligned offsets: encode unaligned 2/4-byte weights through a scratch buffer.
    const aligned = offset % 4 === 0;
    const target = aligned ? data.subarray(offset, offset + size) : new Uint8Array(size);
    const encoded = encodeWeight(weight, dtypes[i]!, target, options);
    if (!aligned) data.set(target, offset);
    specs.push(encoded.spec);
    if (encoded.quantization) quantization[weight.name] = encoded.quantization;
    offset += size;
  });
  return { specs, data, quantization };
}

/** The values a float32 weight reads back as after storing it at dtype (what TF.js will compute with). */
export function storedValues(weight: DecodedWeight, dtype: StorageDtype, options: EncodeOptions = {}): Float32Array {
  const encoded = encodeWeights([weight], () => dtype, options);
  return decodeWeights([{ paths: ['weights.bin'], weights: encoded.specs }], [encoded.data])[0]!.values as Float32Array;
}
