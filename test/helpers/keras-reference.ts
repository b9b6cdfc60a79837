// Plain float64 JS implementations of Keras layers from their raw weights, written from the Keras
// formulas: the independent reference for graph-compiler lowerings of layers TF.js layers cannot build.
// Tensors are flat row-major arrays with explicit shapes (batch first, channels last).

export interface Seq {
  values: Float64Array;
  batch: number;
  steps: number;
  channels: number;
}

export const seq = (values: ArrayLike<number>, batch: number, steps: number, channels: number): Seq => ({ values: Float64Array.from(values), batch, steps, channels });

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
export const ACT: Record<string, (v: number) => number> = {
  linear: (v) => v,
  relu: (v) => Math.max(0, v),
  tanh: Math.tanh,
  sigmoid,
  selu: (v) => SELU_SCALE * (v > 0 ? v : SELU_ALPHA * (Math.exp(v) - 1)),
};

/** Keras GRU with reset_after=True: kernel [in, 3u] (z | r | h), bias [2, 3u] (input row, recurrent row), h0 = 0. */
export function gruResetAfter(x: Seq, kernel: ArrayLike<number>, recurrent: ArrayLike<number>, bias: ArrayLike<number>, units: number, sequences: boolean): Seq {
  const w = 3 * units;
  const out: number[] = [];
  for (let b = 0; b < x.batch; b++) {
    let h = new Array<number>(units).fill(0);
    for (let t = 0; t < x.steps; t++) {
      const at = (b * x.steps + t) * x.channels;
      const xw = (col: number) => {
        let sum = bias[col]!;
        for (let k = 0; k < x.channels; k++) sum += x.values[at + k]! * kernel[k * w + col]!;
        return sum;
      };
      const hu = (col: number) => h.reduce((sum, hv, k) => sum + hv * recurrent[k * w + col]!, bias[w + col]!);
      h = h.map((hv, j) => {
        const z = sigmoid(xw(j) + hu(j));
        const r = sigmoid(xw(units + j) + hu(units + j));
        const hh = Math.tanh(xw(2 * units + j) + r * hu(2 * units + j));
        return z * hv + (1 - z) * hh;
      });
      if (sequences) out.push(...h);
    }
    if (!sequences) out.push(...h);
  }
  return seq(out, x.batch, sequences ? x.steps : 1, units);
}

/** Dense on the last axis: kernel [in, out]. */
export function dense(x: Seq, kernel: ArrayLike<number>, bias: ArrayLike<number>, units: number, activation: string): Seq {
  const rows = x.batch * x.steps;
  const out = new Float64Array(rows * units);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < units; j++) {
      let sum = bias[j]!;
      for (let k = 0; k < x.channels; k++) sum += x.values[r * x.channels + k]! * kernel[k * units + j]!;
      out[r * units + j] = ACT[activation]!(sum);
    }
  return { values: out, batch: x.batch, steps: x.steps, channels: units };
}

/** Keras Conv1D, stride 1, padding 'same' or 'valid': kernel [k, in, out]. */
export function conv1d(x: Seq, kernel: ArrayLike<number>, bias: ArrayLike<number>, k: number, filters: number, padding: 'same' | 'valid', activation: string): Seq {
  const before = padding === 'same' ? Math.floor((k - 1) / 2) : 0;
  const steps = padding === 'same' ? x.steps : x.steps - k + 1;
  const out = new Float64Array(x.batch * steps * filters);
  for (let b = 0; b < x.batch; b++)
    for (let t = 0; t < steps; t++)
      for (let f = 0; f < filters; f++) {
        let sum = bias[f]!;
        for (let j = 0; j < k; j++) {
          const s = t + j - before;
          if (s < 0 || s >= x.steps) continue;
          for (let c = 0; c < x.channels; c++) sum += x.values[(b * x.steps + s) * x.channels + c]! * kernel[(j * x.channels + c) * filters + f]!;
        }
        out[(b * steps + t) * filters + f] = ACT[activation]!(sum);
      }
  return { values: out, batch: x.batch, steps, channels: filters };
}

/** Keras Conv1DTranspose: kernel [k, out, in]; each input step scatters into outputs t·stride + j − padBefore. */
export function conv1dTranspose(x: Seq, kernel: ArrayLike<number>, bias: ArrayLike<number>, k: number, filters: number, stride: number, padding: 'same' | 'valid', activation: string): Seq {
  const full = (x.steps - 1) * stride + k;
  const steps = padding === 'same' ? x.steps * stride : full;
  const before = padding === 'same' ? Math.floor(Math.max(full - steps, 0) / 2) : 0;
  const out = new Float64Array(x.batch * steps * filters);
  for (let b = 0; b < x.batch; b++) {
    for (let t = 0; t < steps; t++) for (let f = 0; f < filters; f++) out[(b * steps + t) * filters + f] = bias[f]!;
    for (let t = 0; t < x.steps; t++)
      for (let j = 0; j < k; j++) {
        const o = t * stride + j - before;
        if (o < 0 || o >= steps) continue;
        for (let f = 0; f < filters; f++)
          for (let c = 0; c < x.channels; c++) out[(b * steps + o) * filters + f]! += x.values[(b * x.steps + t) * x.channels + c]! * kernel[(j * filters + f) * x.channels + c]!;
      }
    for (let i = b * steps * filters; i < (b + 1) * steps * filters; i++) out[i] = ACT[activation]!(out[i]!);
  }
  return { values: out, batch: x.batch, steps, channels: filters };
}

/** An EinsumDense projection of MultiHeadAttention: kernel [dim, heads, size] (output: [heads, size, dim]), bias or none. */
export interface Projection {
  kernel: ArrayLike<number>;
  bias?: ArrayLike<number>;
}

/**
 * Keras MultiHeadAttention over axis 1 without masks: per head h, softmax((q·Wq_h + bq_h)(k·Wk_h + bk_h)ᵀ / √keyDim)
 * (v·Wv_h + bv_h), the heads merged by the output kernel [heads, valueDim, out] plus its bias.
 */
export function multiHeadAttention(
  query: Seq,
  value: Seq,
  key: Seq,
  w: { query: Projection; key: Projection; value: Projection; output: Projection },
  heads: number,
  keyDim: number,
  valueDim: number,
  outDim: number,
): Seq {
  const project = (x: Seq, p: Projection, size: number) => {
    // [batch, steps, heads, size]
    const out = new Float64Array(x.batch * x.steps * heads * size);
    for (let r = 0; r < x.batch * x.steps; r++)
      for (let c = 0; c < heads * size; c++) {
        let sum = p.bias ? p.bias[c]! : 0;
        for (let d = 0; d < x.channels; d++) sum += x.values[r * x.channels + d]! * p.kernel[d * heads * size + c]!;
        out[r * heads * size + c] = sum;
      }
    return out;
  };
  const q = project(query, w.query, keyDim);
  const k = project(key, w.key, keyDim);
  const v = project(value, w.value, valueDim);
  const [T, S] = [query.steps, value.steps];
  const out = new Float64Array(query.batch * T * outDim);
  for (let b = 0; b < query.batch; b++)
    for (let t = 0; t < T; t++) {
      const row = out.subarray((b * T + t) * outDim, (b * T + t + 1) * outDim);
      for (let f = 0; f < outDim; f++) row[f] = w.output.bias ? w.output.bias[f]! : 0;
      for (let h = 0; h < heads; h++) {
        const scores = new Float64Array(S);
        for (let s = 0; s < S; s++) {
          let dot = 0;
          for (let j = 0; j < keyDim; j++) dot += q[((b * T + t) * heads + h) * keyDim + j]! * k[((b * S + s) * heads + h) * keyDim + j]!;
          scores[s] = dot / Math.sqrt(keyDim);
        }
        const peak = Math.max(...scores);
        let total = 0;
        for (let s = 0; s < S; s++) total += scores[s] = Math.exp(scores[s]! - peak);
        for (let j = 0; j < valueDim; j++) {
          let o = 0;
          for (let s = 0; s < S; s++) o += (scores[s]! / total) * v[((b * S + s) * heads + h) * valueDim + j]!;
          for (let f = 0; f < outDim; f++) row[f] = row[f]! + o * w.output.kernel[(h * valueDim + j) * outDim + f]!;
        }
      }
    }
  return { values: out, batch: query.batch, steps: T, channels: outDim };
}

/** Keras LayerNormalization over the last axis: (x − mean) / √(var + ε) · γ + β. */
export function layerNorm(x: Seq, gamma: ArrayLike<number>, beta: ArrayLike<number>, epsilon: number): Seq {
  const out = new Float64Array(x.values.length);
  const c = x.channels;
  for (let r = 0; r < x.batch * x.steps; r++) {
    let mean = 0;
    for (let i = 0; i < c; i++) mean += x.values[r * c + i]! / c;
    let variance = 0;
    for (let i = 0; i < c; i++) variance += (x.values[r * c + i]! - mean) ** 2 / c;
    for (let i = 0; i < c; i++) out[r * c + i] = ((x.values[r * c + i]! - mean) / Math.sqrt(variance + epsilon)) * gamma[i]! + beta[i]!;
  }
  return { ...x, values: out };
}

/** Elementwise a + b of two tensors of the same shape. */
export function add(a: Seq, b: Seq): Seq {
  return { ...a, values: a.values.map((v, i) => v + b.values[i]!) };
}

/** Keras GlobalAveragePooling1D: the mean over the steps (one step left). */
export function globalAveragePool1d(x: Seq): Seq {
  const out = new Float64Array(x.batch * x.channels);
  for (let b = 0; b < x.batch; b++) for (let t = 0; t < x.steps; t++) for (let c = 0; c < x.channels; c++) out[b * x.channels + c]! += x.values[(b * x.steps + t) * x.channels + c]! / x.steps;
  return { values: out, batch: x.batch, steps: 1, channels: x.channels };
}
