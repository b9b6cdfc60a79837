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
export const ACT: Record<string, (v: number) => number> = { linear: (v) => v, relu: (v) => Math.max(0, v), tanh: Math.tanh, sigmoid };

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
