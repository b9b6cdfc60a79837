// Affine uint8 / uint16 quantization as TF.js dequantizes it (value = q * scale + min),
// with the range nudged so that zero is exactly representable, and an optional range
// search that clips outliers where that lowers the mean squared quantization error.

export interface AffineParams {
  scale: number;
  min: number;
  /** True when the chosen range is narrower than the weight's own [min, max]. */
  clipped: boolean;
}

const HISTOGRAM_BINS = 2048;
const CANDIDATES_PER_SIDE = 24;
const HISTOGRAM_SAMPLE = 1 << 16;
// Scratch for searchRange (never re-entered): no allocation per weight.
const scratch = { counts: new Uint32Array(HISTOGRAM_BINS), n: new Float64Array(HISTOGRAM_BINS + 1), s1: new Float64Array(HISTOGRAM_BINS + 1), s2: new Float64Array(HISTOGRAM_BINS + 1) };

export function minMax(values: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 0];
  return [lo, hi];
}

/** scale and nudged min for [lo, hi]: zero lands exactly on a level when the range holds it. */
export function affineParams(lo: number, hi: number, levels: number, clipped = false): AffineParams {
  if (hi <= lo) return { scale: 1, min: lo, clipped };
  const scale = (hi - lo) / levels;
  if (lo <= 0 && hi >= 0) {
    const zeroPoint = Math.round(-lo / scale);
    return { scale, min: -zeroPoint * scale, clipped };
  }
  return { scale, min: lo, clipped };
}

/**
 * Chooses [lo, hi] by minimal expected squared error, from a histogram of the values:
 * inside the range each value costs scale²/12 (rounding), outside it costs its distance
 * to the range (clipping). Prefix sums make each candidate range O(1).
 * The histogram is built from a strided sample of at most 64K values, with about one bin per
 * four values (128 to 2048 bins), so that small weights cost little.
 */
export function searchRange(values: Float32Array, levels: number, lo: number, hi: number): AffineParams {
  if (hi <= lo || values.length < 256) return affineParams(lo, hi, levels);
  const bins = Math.min(HISTOGRAM_BINS, Math.max(128, 2 ** Math.ceil(Math.log2(values.length / 4))));
  const width = (hi - lo) / bins;
  const counts = scratch.counts.fill(0, 0, bins);
  const inv = 1 / width;
  // A strided sample is enough for an estimate (the pick is confirmed below); lo and hi are exact.
  const stride = Math.max(1, Math.floor(values.length / HISTOGRAM_SAMPLE));
  for (let i = 0; i < values.length; i += stride) {
    let bin = ((values[i]! - lo) * inv) | 0;
    if (bin >= bins) bin = bins - 1;
    counts[bin]!++;
  }
  // Prefix sums of n, n·c, n·c² over bin centres.
  const { n, s1, s2 } = scratch;
  for (let b = 0; b < bins; b++) {
    const c = lo + (b + 0.5) * width;
    n[b + 1] = n[b]! + counts[b]!;
    s1[b + 1] = s1[b]! + counts[b]! * c;
    s2[b + 1] = s2[b]! + counts[b]! * c * c;
  }
  // Σ over bins [from, to) of n·(c - a)².
  const spread = (from: number, to: number, a: number) => s2[to]! - s2[from]! - 2 * a * (s1[to]! - s1[from]!) + a * a * (n[to]! - n[from]!);
  // Candidate cut bins: geometric steps inward from each end (outliers sit in the tails).
  const cuts: number[] = [0];
  for (let k = 0; k < CANDIDATES_PER_SIDE; k++) {
    const cut = Math.round(bins * 0.45 * 2 ** (-k / 2));
    if (cut > 0 && cut !== cuts[cuts.length - 1]) cuts.push(cut);
  }
  let best = { error: Infinity, a: lo, b: hi, clipped: false };
  for (const left of cuts) {
    const a = lo + left * width;
    const leftError = left > 0 ? spread(0, left, a) : 0;
    for (const right of cuts) {
      const b = hi - right * width;
      if (b <= a) continue;
      const rightBin = bins - right;
      const rightError = right > 0 ? spread(rightBin, bins, b) : 0;
      const step = (b - a) / levels;
      const error = leftError + rightError + ((n[rightBin]! - n[left]!) * step * step) / 12;
      if (error < best.error) best = { error, a, b, clipped: left > 0 || right > 0 };
    }
  }
  if (!best.clipped) return affineParams(lo, hi, levels);
  // The histogram estimate assumes values spread evenly within each step, which overrates
  // coarse grids; so confirm on (a sample of) the values before keeping a clipped range.
  const plain = affineParams(lo, hi, levels);
  const clipped = affineParams(best.a, best.b, levels, true);
  return sampledSquaredError(values, clipped, levels) < sampledSquaredError(values, plain, levels) * 0.98 ? clipped : plain;
}

const SAMPLE = 16384;

function sampledSquaredError(values: Float32Array, params: AffineParams, levels: number): number {
  const step = Math.max(1, Math.floor(values.length / SAMPLE));
  const inv = 1 / params.scale;
  let sum = 0;
  for (let i = 0; i < values.length; i += step) {
    const v = values[i]!;
    const q = Math.min(levels, Math.max(0, Math.floor((v - params.min) * inv + 0.5)));
    sum += (q * params.scale + params.min - v) ** 2;
  }
  return sum;
}

/**
 * Quantizes into target (Uint8Array or Uint16Array). Returns the largest absolute error:
 * half a step for values inside the range, the clipping distance for values outside it.
 */
export function quantizeAffine(values: Float32Array, params: AffineParams, target: Uint8Array | Uint16Array, levels: number): number {
  const { scale, min } = params;
  const inv = 1 / scale;
  let clippedBy = 0;
  for (let i = 0; i < values.length; i++) {
    const x = (values[i]! - min) * inv;
    if (x < 0) {
      target[i] = 0;
      if (-x > clippedBy) clippedBy = -x;
    } else if (x > levels) {
      target[i] = levels;
      if (x - levels > clippedBy) clippedBy = x - levels;
    } else {
      target[i] = (x + 0.5) | 0;
    }
  }
  return Math.max(0.5, clippedBy) * scale;
}
