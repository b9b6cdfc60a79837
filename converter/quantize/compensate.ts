// Error-compensating uint8 rounding per layer, on calibration activations: for each linear
// kernel stored at uint8, candidate per-tensor ranges (min/max; unless clipping is off, also the
// clipping search's and min/max shrunk towards zero) are each rounded with GPTQ (./gptq.ts)
// against the layer's input statistics (./layer-inputs.ts), and the range whose layer output
// error E‖(W − Ŵ)ᵀx‖² is lowest is kept, with its level codes. Bias correction then moves the
// layer's bias by the mean output error that rounding leaves, (W − Ŵ)ᵀE[x], so the layer's
// output is unbiased on the calibration inputs. The grid stays one affine (scale, min) per
// tensor: stock TF.js loads it unchanged. Whether the result is kept is decided on the whole
// model's output (converter/convert.ts).
import type { StorageDtype } from '../../shared/options/quantize-spec.ts';
import type { DecodedModel, DecodedWeight } from '../model.ts';
import { affineParams, minMax, searchRange } from './affine.ts';
import { compensatedCodes, type Grid, nearestCodes, outputError, type RoundedKernel } from './gptq.ts';
import type { LayerInputs } from './layer-inputs.ts';

export interface Compensation {
  rounded: Map<string, RoundedKernel>;
  /** Corrected bias values by weight name (float32; stored at the bias's own dtype). */
  biases: Map<string, Float32Array>;
  /** Σ over kernels of the layer output error with nearest rounding on min/max, and with the choice made. */
  nearestError: number;
  compensatedError: number;
}

const LEVELS = 255;
/** GPTQ's damping, as a fraction of H's mean diagonal (its paper's 1%; more trusts H less). */
const DAMPING = 0.01;
const SHRINK = [0.95, 0.9, 0.8];

/** Group g of a kernel as a [d × o] matrix (depthwise: channel g of [kh, kw, C, M]). */
function groupMatrix(kernel: Float32Array, stats: LayerInputs, g: number, groups: number): Float32Array {
  if (groups === 1) return kernel;
  const { d, o } = stats;
  const matrix = new Float32Array(d * o);
  for (let t = 0; t < d; t++) for (let m = 0; m < o; m++) matrix[t * o + m] = kernel[(t * groups + g) * o + m]!;
  return matrix;
}

function scatter(codes: Uint16Array, part: Uint16Array, stats: LayerInputs, g: number, groups: number): void {
  if (groups === 1) {
    codes.set(part);
    return;
  }
  const { d, o } = stats;
  for (let t = 0; t < d; t++) for (let m = 0; m < o; m++) codes[(t * groups + g) * o + m] = part[t * o + m]!;
}

/** Codes for the whole kernel on one grid (GPTQ per group), and their summed layer output error. */
function roundKernel(kernel: Float32Array, stats: LayerInputs, grid: Grid): { codes: Uint16Array; error: number } | null {
  const groups = stats.hessians.length;
  const codes = new Uint16Array(kernel.length);
  let error = 0;
  for (let g = 0; g < groups; g++) {
    const matrix = groupMatrix(kernel, stats, g, groups);
    const part = compensatedCodes(matrix, stats.d, stats.o, stats.hessians[g]!, grid, DAMPING);
    if (!part) return null;
    error += outputError(matrix, part, stats.d, stats.o, stats.hessians[g]!, grid);
    scatter(codes, part, stats, g, groups);
  }
  return { codes, error };
}

function nearestError(kernel: Float32Array, stats: LayerInputs, grid: Grid): number {
  const groups = stats.hessians.length;
  let error = 0;
  for (let g = 0; g < groups; g++) {
    const matrix = groupMatrix(kernel, stats, g, groups);
    error += outputError(matrix, nearestCodes(matrix, grid), stats.d, stats.o, stats.hessians[g]!, grid);
  }
  return error;
}

/** min/max, and (rangeSearch) the clipping search's range and min/max shrunk towards zero. */
function candidateGrids(kernel: Float32Array, rangeSearch: boolean): Grid[] {
  const [lo, hi] = minMax(kernel);
  const grids = [affineParams(lo, hi, LEVELS), ...(rangeSearch ? [searchRange(kernel, LEVELS, lo, hi), ...SHRINK.map((f) => affineParams(lo * f, hi * f, LEVELS))] : [])];
  return grids.map(({ scale, min }) => ({ scale, min, levels: LEVELS }));
}

/** (W − Ŵ)ᵀE[x] per output channel. */
function meanOutputError(kernel: Float32Array, rounded: RoundedKernel, stats: LayerInputs): Float64Array {
  const groups = stats.hessians.length;
  const { d, o } = stats;
  const shift = new Float64Array(groups * o);
  for (let g = 0; g < groups; g++) {
    const matrix = groupMatrix(kernel, stats, g, groups);
    const mean = stats.means[g]!;
    for (let i = 0; i < d; i++) {
      for (let m = 0; m < o; m++) {
        const index = groups === 1 ? i * o + m : (i * groups + g) * o + m;
        shift[g * o + m]! += (matrix[i * o + m]! - (rounded.codes[index]! * rounded.scale + rounded.min)) * mean[i]!;
      }
    }
  }
  return shift;
}

/** Compensated codes for every uint8 kernel with input statistics, and the corrected biases (rangeSearch: try narrower ranges than min/max). */
export function compensate(model: DecodedModel, layers: LayerInputs[], dtypeOf: (name: string) => StorageDtype, rangeSearch: boolean): Compensation {
  const weights = new Map<string, DecodedWeight>(model.weights.map((w) => [w.name, w]));
  const result: Compensation = { rounded: new Map(), biases: new Map(), nearestError: 0, compensatedError: 0 };
  for (const stats of layers) {
    const weight = weights.get(stats.site.kernel);
    // A weight already on a uint8 grid (a quantized source) is stored on it losslessly.
    if (!weight || dtypeOf(weight.name) !== 'uint8' || weight.sourceGrid?.dtype === 'uint8') continue;
    const kernel = weight.values as Float32Array;
    const grids = candidateGrids(kernel, rangeSearch);
    const baseline = nearestError(kernel, stats, grids[0]!);
    let best: { codes: Uint16Array; error: number; grid: Grid } | null = null;
    for (const grid of grids) {
      const rounded = roundKernel(kernel, stats, grid);
      if (rounded && (!best || rounded.error < best.error)) best = { ...rounded, grid };
    }
    if (!best || best.error >= baseline) continue;
    const rounded = { ...best.grid, codes: best.codes };
    result.rounded.set(weight.name, rounded);
    result.nearestError += baseline;
    result.compensatedError += best.error;
    const bias = stats.site.bias ? weights.get(stats.site.bias) : undefined;
    if (!bias) continue;
    const shift = meanOutputError(kernel, rounded, stats);
    if (shift.length !== bias.values.length) continue;
    result.biases.set(
      bias.name,
      Float32Array.from(bias.values as Float32Array, (v, c) => v + shift[c]!),
    );
  }
  return result;
}

/** The model with the corrected biases in place of its own. */
export function withBiases(model: DecodedModel, biases: Map<string, Float32Array>): DecodedModel {
  if (biases.size === 0) return model;
  return { ...model, weights: model.weights.map((w) => (biases.has(w.name) ? { ...w, values: biases.get(w.name)!, sourceGrid: undefined } : w)) };
}
