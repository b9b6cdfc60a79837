// Decodes a TF.js weights manifest and its concatenated shard bytes into typed arrays,
// dequantizing uint8 / uint16 / float16 weights; the converter's reader and the runtime's
// loader both use it. Sizes are checked before anything is allocated.
import { MAX_WEIGHT_ELEMENTS, type WeightGroup, type WeightSpec } from './schemas/model-json.ts';
import { elementCount } from './codecs.ts';
import { ConversionError } from './errors.ts';
import { float16ToFloat32 } from './float16.ts';

export interface DecodedWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  /** float32 → Float32Array, int32 → Int32Array, bool → Uint8Array (0/1). */
  values: Float32Array | Int32Array | Uint8Array;
  /** The affine grid a uint8 / uint16 source stored this weight on; re-quantizing to it is lossless. */
  sourceGrid?: { dtype: 'uint8' | 'uint16'; scale: number; min: number };
}

const BYTES_PER_DTYPE: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/** Bytes a weight occupies in the shards, refusing unknown dtypes and absurd shapes. */
export function storedByteLength(spec: WeightSpec): number {
  const count = elementCount(spec.shape);
  if (!Number.isSafeInteger(count) || count > MAX_WEIGHT_ELEMENTS) {
    throw new ConversionError(`weight ${spec.name} has shape [${spec.shape.join(', ')}]: ${count} elements is more than the ${MAX_WEIGHT_ELEMENTS} allowed`);
  }
  if (spec.dtype === 'string' || spec.dtype === 'complex64') {
    throw new ConversionError(`weight ${spec.name} has dtype ${spec.dtype}, which edgeflow does not convert`);
  }
  const stored = spec.quantization?.dtype ?? spec.dtype;
  const bytes = BYTES_PER_DTYPE[stored];
  if (!bytes) throw new ConversionError(`weight ${spec.name} has unknown dtype ${stored}`);
  return count * bytes;
}

/** Where a float32 weight's values are written: a fresh array, or memory the caller provides (count elements). */
export type Float32Target = (spec: WeightSpec, count: number) => Float32Array;
const freshArray: Float32Target = (_spec, count) => new Float32Array(count);

/** True when every value of an affine grid (min + q * scale, q in 0..steps) is finite in float32: no per-value check is needed. */
function finiteGrid(min: number, scale: number, steps: number): boolean {
  return Number.isFinite(Math.fround(min)) && Number.isFinite(Math.fround(min + steps * scale));
}

/** Decodes one weight; says whether its values still need the NaN / infinity check. */
function decodeOne(spec: WeightSpec, bytes: Uint8Array, target: Float32Target): { weight: DecodedWeight; checked: boolean } {
  const count = elementCount(spec.shape);
  const q = spec.quantization;
  const dtype = spec.dtype as DecodedWeight['dtype'];
  // A copy into a fresh buffer: a Node Buffer's slice() is a view at the same odd offset.
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  const { name, shape } = spec;
  if (!q) {
    if (dtype === 'float32') {
      const values = target(spec, count);
      values.set(new Float32Array(aligned.buffer, aligned.byteOffset, count));
      return { weight: { name, shape, dtype, values }, checked: false };
    }
    if (dtype === 'int32') return { weight: { name, shape, dtype, values: new Int32Array(aligned.buffer, aligned.byteOffset, count).slice() }, checked: true };
    return { weight: { name, shape, dtype, values: bytes.slice(0, count) }, checked: true };
  }
  const floats = dtype === 'float32' ? target(spec, count) : new Float32Array(count);
  let checked = false;
  if (q.dtype === 'float16') {
    float16ToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, count), floats);
  } else {
    if (q.scale === undefined || q.min === undefined) throw new ConversionError(`weight ${spec.name}: ${q.dtype} quantization needs scale and min`);
    const source = q.dtype === 'uint8' ? bytes.subarray(0, count) : new Uint16Array(aligned.buffer, aligned.byteOffset, count);
    const { scale, min } = q;
    for (let i = 0; i < count; i++) floats[i] = source[i]! * scale + min;
    checked = finiteGrid(min, scale, q.dtype === 'uint8' ? 255 : 65535);
  }
  if (dtype === 'int32') return { weight: { name, shape, dtype, values: Int32Array.from(floats, Math.round) }, checked: true };
  if (dtype === 'bool') return { weight: { name, shape, dtype, values: Uint8Array.from(floats, (v) => (v ? 1 : 0)) }, checked: true };
  const sourceGrid = q.dtype === 'float16' ? undefined : { dtype: q.dtype, scale: q.scale!, min: q.min! };
  return { weight: { name, shape, dtype: 'float32', values: floats, ...(sourceGrid ? { sourceGrid } : {}) }, checked };
}

/** NaN or ±Infinity in a weight poisons every output; refuse it by name and position. */
function checkFinite(name: string, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) throw new ConversionError(`weight ${name} holds ${v} at element ${i}: a model with NaN or infinite weights cannot predict; retrain or fix the weights`);
  }
}

/**
 * groups[i]'s weights are read from shardBytes[i] (its shard files concatenated).
 * The byte count must match the manifest exactly. `target` says where float32 values go
 * (default: fresh arrays).
 */
export function decodeWeights(groups: WeightGroup[], shardBytes: Uint8Array[], target: Float32Target = freshArray): DecodedWeight[] {
  const decoded: DecodedWeight[] = [];
  const names = new Set<string>();
  groups.forEach((group, g) => {
    const bytes = shardBytes[g]!;
    const expected = group.weights.reduce((sum, spec) => sum + storedByteLength(spec), 0);
    if (expected !== bytes.byteLength) {
      throw new ConversionError(`weight group ${g + 1} (${group.paths.join(', ')}) holds ${bytes.byteLength} bytes but its manifest's shapes and dtypes need ${expected}`);
    }
    let offset = 0;
    for (const spec of group.weights) {
      const length = storedByteLength(spec);
      if (names.has(spec.name)) throw new ConversionError(`the weights manifest lists weight ${spec.name} twice: which one the model uses would be ambiguous`);
      names.add(spec.name);
      const { weight, checked } = decodeOne(spec, bytes.subarray(offset, offset + length), target);
      if (!checked && weight.values instanceof Float32Array) checkFinite(weight.name, weight.values);
      decoded.push(weight);
      offset += length;
    }
  });
  return decoded;
}
