// Error-compensating rounding of a linear layer's kernel onto a fixed per-tensor affine grid
// (GPTQ, Frantar et al. 2022): the kernel is a [D inputs × O outputs] matrix, H = E[x xᵀ] the
// second moment of the layer's inputs on calibration data. Rows are rounded one at a time and
// each row's rounding error is spread over the rows not yet rounded, through the Cholesky factor
// of H⁻¹, so that the layer's output error E‖(W − Ŵ)ᵀx‖² (not the weights' own error) is small.
// The grid (scale, min) stays what TF.js dequantizes: only which level each weight takes changes.

export interface Grid {
  scale: number;
  min: number;
  levels: number;
}

/** A kernel's level codes on its chosen grid, written as they are by encodeWeights. */
export interface RoundedKernel extends Grid {
  codes: Uint16Array;
}

/** H += Σ rows xᵀx (upper triangle only; mirror with symmetrize), and sum += Σ rows x. */
export function accumulate(h: Float64Array, sum: Float64Array, rows: Float32Array, d: number): void {
  const count = rows.length / d;
  for (let r = 0; r < count; r++) {
    const base = r * d;
    for (let i = 0; i < d; i++) {
      const xi = rows[base + i]!;
      sum[i]! += xi;
      if (xi === 0) continue;
      const row = i * d;
      for (let j = i; j < d; j++) h[row + j]! += xi * rows[base + j]!;
    }
  }
}

export function symmetrize(h: Float64Array, d: number): void {
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) h[j * d + i] = h[i * d + j]!;
}

/** The lower Cholesky factor L (A = LLᵀ) of a symmetric positive definite A, row by row; null if A is not. */
function choleskyLower(a: Float64Array, d: number): Float64Array | null {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const ri = i * d;
    for (let j = 0; j <= i; j++) {
      const rj = j * d;
      let v = a[ri + j]!;
      for (let k = 0; k < j; k++) v -= l[ri + k]! * l[rj + k]!;
      if (j < i) l[ri + j] = v / l[rj + j]!;
      else if (v > 0) l[ri + i] = Math.sqrt(v);
      else return null;
    }
  }
  return l;
}

/** The inverse of a lower-triangular L, itself lower-triangular (rows read contiguously). */
function invertLower(l: Float64Array, d: number): Float64Array {
  const x = new Float64Array(d * d);
  const acc = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const ri = i * d;
    acc.fill(0, 0, i);
    for (let k = 0; k < i; k++) {
      const lik = l[ri + k]!;
      if (lik === 0) continue;
      const rk = k * d;
      for (let j = 0; j <= k; j++) acc[j]! += lik * x[rk + j]!;
    }
    const inv = 1 / l[ri + i]!;
    for (let j = 0; j < i; j++) x[ri + j] = -acc[j]! * inv;
    x[ri + i] = inv;
  }
  return x;
}

/**
 * The upper Cholesky factor of (H + λI)⁻¹, where λ = damping × mean(diag H); inputs never seen
 * (diag 0) get diag 1 so that they cost nothing. Null when H is not usable.
 */
export function inverseHessianFactor(h: Float64Array, d: number, damping: number): Float64Array | null {
  let mean = 0;
  for (let i = 0; i < d; i++) mean += h[i * d + i]!;
  mean /= d;
  if (!(mean > 0)) return null;
  // With P the index reversal, P(H + λI)P = LLᵀ (L lower) gives H + λI = RᵀR with R = P Lᵀ P
  // upper; then (H + λI)⁻¹ = R⁻¹R⁻ᵀ = VᵀV with V = R⁻ᵀ = P L⁻¹ P upper-triangular: what GPTQ uses.
  const reversed = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const dead = h[i * d + i]! <= 0;
    for (let j = 0; j < d; j++) reversed[(d - 1 - i) * d + (d - 1 - j)] = dead || h[j * d + j]! <= 0 ? 0 : h[i * d + j]!;
    reversed[(d - 1 - i) * d + (d - 1 - i)] = (dead ? 1 : h[i * d + i]!) + damping * mean;
  }
  const l = choleskyLower(reversed, d);
  if (!l) return null;
  const lInv = invertLower(l, d);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) v[i * d + j] = lInv[(d - 1 - i) * d + (d - 1 - j)]!;
  return v;
}

const quantize = (value: number, grid: Grid) => Math.min(grid.levels, Math.max(0, Math.round((value - grid.min) / grid.scale)));

/**
 * GPTQ on a [d × o] row-major kernel: level codes (0..levels) per weight on the given grid.
 * factor: inverseHessianFactor(H). Costs d²·o.
 */
export function gptqCodes(kernel: Float32Array, d: number, o: number, factor: Float64Array, grid: Grid): Uint16Array {
  const w = Float64Array.from(kernel);
  const codes = new Uint16Array(d * o);
  const error = new Float64Array(o);
  for (let i = 0; i < d; i++) {
    const uii = factor[i * d + i]!;
    for (let c = 0; c < o; c++) {
      const value = w[i * o + c]!;
      const q = quantize(value, grid);
      codes[i * o + c] = q;
      error[c] = (value - (q * grid.scale + grid.min)) / uii;
    }
    for (let k = i + 1; k < d; k++) {
      const u = factor[i * d + k]!;
      if (u === 0) continue;
      const row = k * o;
      for (let c = 0; c < o; c++) w[row + c]! -= error[c]! * u;
    }
  }
  return codes;
}

/** Nearest-level codes (plain rounding), the baseline GPTQ is compared with. */
export function nearestCodes(kernel: Float32Array, grid: Grid): Uint16Array {
  const codes = new Uint16Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) codes[i] = quantize(kernel[i]!, grid);
  return codes;
}

/** The layer's output error for these codes: Σ_c Δ_cᵀ H Δ_c with Δ = W − Ŵ (H: full symmetric). */
export function outputError(kernel: Float32Array, codes: Uint16Array, d: number, o: number, h: Float64Array, grid: Grid): number {
  const delta = new Float64Array(d * o);
  for (let i = 0; i < d * o; i++) delta[i] = kernel[i]! - (codes[i]! * grid.scale + grid.min);
  let total = 0;
  const hd = new Float64Array(o);
  for (let i = 0; i < d; i++) {
    hd.fill(0);
    for (let j = 0; j < d; j++) {
      const hij = h[i * d + j]!;
      if (hij === 0) continue;
      for (let c = 0; c < o; c++) hd[c]! += hij * delta[j * o + c]!;
    }
    for (let c = 0; c < o; c++) total += delta[i * o + c]! * hd[c]!;
  }
  return total;
}

/** Inputs per GPTQ block: H is taken block-diagonal beyond this (the factorization costs block³). */
export const GPTQ_BLOCK = 512;

/**
 * GPTQ with H taken block-diagonal in blocks of GPTQ_BLOCK inputs (exact when d ≤ GPTQ_BLOCK),
 * so that wide layers cost d·block² instead of d³. Null when a block's H is not usable.
 */
export function compensatedCodes(kernel: Float32Array, d: number, o: number, h: Float64Array, grid: Grid, damping: number): Uint16Array | null {
  const codes = new Uint16Array(d * o);
  for (let start = 0; start < d; start += GPTQ_BLOCK) {
    const size = Math.min(GPTQ_BLOCK, d - start);
    const block = new Float64Array(size * size);
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) block[i * size + j] = h[(start + i) * d + start + j]!;
    const factor = inverseHessianFactor(block, size, damping);
    if (!factor) return null;
    codes.set(gptqCodes(kernel.subarray(start * o, (start + size) * o), size, o, factor, grid), start * o);
  }
  return codes;
}
