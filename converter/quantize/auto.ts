// `auto` quantization: picks, per float32 weight, the smallest storage dtype that keeps the
// converted model's outputs within tolerance of the float32 model on calibration inputs.
// Weights are ranked by how much noise quantization adds relative to their own signal
// (quantization RMSE / weight RMS; for uint8 on real calibration data, that noise's power per byte
// a wider dtype costs, so small noisy weights such as a first convolution's few taps come before
// large kernels: smaller files, closer to the target, which only real inputs measure well); binary
// searches then find how many of the first-ranked weights must stay at 2 bytes (instead of uint8)
// and at 4 bytes (instead of 2), each trial
// being a real conversion measured on the calibration inputs. Each search tries its narrowest end
// first (no weight kept wider), which settles the common models in one trial; at most 2·log2(n) + 4.
import type { DecodedWeight } from '../model.ts';
import { affineParams, minMax, searchRange } from './affine.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../shared/float16.ts';
import type { StorageDtype } from '../../shared/options/quantize-spec.ts';

export type DtypeChoice = Map<string, StorageDtype>;

interface Noise {
  uint8: number;
  uint16: number;
  float16: number;
}

function rms(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  return Math.sqrt(sum / Math.max(1, values.length));
}

/** Relative quantization noise of one weight at each dtype (cheap estimates, no model run). */
function noiseOf(values: Float32Array, clipOutliers: boolean): Noise {
  const signal = rms(values) || 1e-12;
  const [lo, hi] = minMax(values);
  const affine = (levels: number) => (clipOutliers ? searchRange(values, levels, lo, hi) : affineParams(lo, hi, levels)).scale / Math.sqrt(12) / signal;
  // float16: measure on a sample of the values (exact error, bounded cost).
  const step = Math.max(1, Math.floor(values.length / 4096));
  const sample = new Float32Array(Math.ceil(values.length / step));
  for (let i = 0, j = 0; i < values.length; i += step, j++) sample[j] = values[i]!;
  const halves = new Uint16Array(sample.length);
  float32ToFloat16(sample, halves);
  const back = new Float32Array(sample.length);
  float16ToFloat32(halves, back);
  let sq = 0;
  for (let i = 0; i < sample.length; i++) sq += (back[i]! - sample[i]!) ** 2;
  return { uint8: affine(255), uint16: affineParams(lo, hi, 65535).scale / Math.sqrt(12) / signal, float16: Math.sqrt(sq / sample.length) / signal };
}

/** Smallest k in [lo, hi] with pass(k) true, assuming pass is monotone; hi must pass. lo is tried first. */
async function smallestPassing(lo: number, hi: number, pass: (k: number) => Promise<boolean>): Promise<number> {
  if (lo < hi && (await pass(lo))) return lo;
  lo += 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (await pass(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export async function chooseDtypes(
  weights: DecodedWeight[],
  tolerance: number,
  evaluate: (choice: DtypeChoice) => Promise<number>,
  options: { clipOutliers: boolean; perByte: boolean },
): Promise<DtypeChoice> {
  const floats = weights.filter((w) => w.dtype === 'float32');
  const noise = new Map(floats.map((w) => [w.name, noiseOf(w.values as Float32Array, options.clipOutliers)]));
  const twoByte = (name: string): StorageDtype => (noise.get(name)!.uint16 <= noise.get(name)!.float16 ? 'uint16' : 'float16');
  const twoByteNoise = (name: string) => Math.min(noise.get(name)!.uint16, noise.get(name)!.float16);

  const results = new Map<string, number>();
  const run = async (choice: DtypeChoice): Promise<number> => {
    const key = floats.map((w) => choice.get(w.name)).join();
    if (!results.has(key)) {
      results.set(key, await evaluate(choice));
    }
    return results.get(key)!;
  };
  const build = (keepFloat: Set<string>, keepTwo: Set<string>): DtypeChoice =>
    new Map(floats.map((w) => [w.name, keepFloat.has(w.name) ? 'float32' : keepTwo.has(w.name) ? twoByte(w.name) : 'uint8']));

  // Stage 1: which weights need float32 even when everything else is stored in 2 bytes.
  const byTwoByteNoise = [...floats].sort((a, b) => twoByteNoise(b.name) - twoByteNoise(a.name)).map((w) => w.name);
  const allTwo = new Set(floats.map((w) => w.name));
  const floatCount = await smallestPassing(0, floats.length, async (k) => (await run(build(new Set(byTwoByteNoise.slice(0, k)), allTwo))) <= tolerance);
  const keepFloat = new Set(byTwoByteNoise.slice(0, floatCount));

  // Stage 2: of the rest, which need 2 bytes rather than uint8.
  const rest = floats.filter((w) => !keepFloat.has(w.name));
  const rank = (w: DecodedWeight) => (options.perByte ? noise.get(w.name)!.uint8 ** 2 / w.values.length : noise.get(w.name)!.uint8);
  const byUint8Noise = [...rest].sort((a, b) => rank(b) - rank(a)).map((w) => w.name);
  const twoCount = await smallestPassing(0, rest.length, async (k) => (await run(build(keepFloat, new Set(byUint8Noise.slice(0, k))))) <= tolerance);
  const choice = build(keepFloat, new Set(byUint8Noise.slice(0, twoCount)));
  // A search may end on its untried upper bound: the choice is measured too (evaluate sees every choice made).
  await run(choice);
  return choice;
}
