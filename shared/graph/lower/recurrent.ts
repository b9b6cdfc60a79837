// GRU (reset_after True and False), LSTM and SimpleRNN lowered by unrolling over the input's known
// timesteps. The input is unpacked into its T steps, each projected by a _FusedMatMul per gate
// group; each step then adds h·U (MatMul) and applies the gates with
// Sigmoid / Tanh / Mul / AddV2 / Sub / Split, starting from h0 = 0 (step 0 skips the h·U terms).
// Keras formulas (GRUCell, kernel columns z | r | h, bias [2, 3u] = input row, recurrent row):
//   z = σ(x·Wz + bz + h·Uz + bz'), r likewise,
//   reset_after=True:  hh = tanh(x·Wh + bh + r ⊙ (h·Uh + bh')),  reset_after=False: hh = tanh(x·Wh + bh + (r ⊙ h)·Uh)
//   h' = z ⊙ h + (1 − z) ⊙ hh, computed as hh + z ⊙ (h − hh).
// LSTM (columns i | f | c | o): c' = f ⊙ c + i ⊙ tanh(·), h' = o ⊙ tanh(c'). SimpleRNN: h' = act(x·W + b + h·U).
// Stateful layers, return_state and unknown timesteps raise NotCompilable naming the layer and option.
// Bidirectional(GRU / LSTM / SimpleRNN): the forward layer, and the backward one (go_backwards flipped,
// its sequence output reversed back with ReverseV2), merged by concat / sum / mul / ave (merge_mode=None refused).
import { attr } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { type LowerContext, layerConfig, layerName, type Tensor } from './context.ts';

/** About 13 ops a step: longer sequences would make graphs of thousands of nodes. */
const MAX_UNROLLED_STEPS = 512;

export const RECURRENT_CLASSES = new Set(['GRU', 'LSTM', 'SimpleRNN']);

/** Why a recurrent layer config cannot be lowered, or undefined when it can. */
export function recurrentRefusal(className: string, c: Record<string, unknown>): string | undefined {
  if (!RECURRENT_CLASSES.has(className)) return `${className} is not a recurrent layer`;
  if (c.stateful === true) return 'stateful=True (state carried between calls)';
  if (c.return_state === true) return 'return_state=True (several outputs)';
  if (c.time_major === true) return 'time_major=True';
  for (const key of ['activation', 'recurrent_activation']) {
    const value = c[key] ?? (key === 'activation' ? 'tanh' : 'sigmoid');
    if (className === 'SimpleRNN' && key === 'recurrent_activation') continue;
    if (typeof value !== 'string' || !['tanh', 'sigmoid', 'relu', 'linear', 'elu', 'softsign', 'softplus', 'selu'].includes(value)) return `${key}=${JSON.stringify(value)} (not lowered)`;
  }
  if (className === 'GRU' && c.reset_after !== undefined && typeof c.reset_after !== 'boolean') return `reset_after=${JSON.stringify(c.reset_after)}`;
  return undefined;
}

/** Columns [start, end) of a row-major [rows, cols] matrix. */
function columns(values: Float32Array, rows: number, cols: number, start: number, end: number): Float32Array {
  const out = new Float32Array(rows * (end - start));
  for (let r = 0; r < rows; r++) out.set(values.subarray(r * cols + start, r * cols + end), r * (end - start));
  return out;
}

export function lowerRecurrent(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const kind = layer.class_name;
  const refusal = recurrentRefusal(kind, c);
  if (refusal) throw new NotCompilable(`${kind} ${JSON.stringify(base)} has ${refusal}`);
  if (x.shape.length !== 3) throw new NotCompilable(`${kind} ${JSON.stringify(base)} on a rank-${x.shape.length} input`);
  const [, steps, inputs] = x.shape as [number, number, number];
  if (!(steps > 0) || !(inputs > 0)) throw new NotCompilable(`${kind} ${JSON.stringify(base)} has an unknown number of timesteps (the input shape must fix them to unroll)`);
  if (steps > MAX_UNROLLED_STEPS) throw new NotCompilable(`${kind} ${JSON.stringify(base)} runs over ${steps} timesteps (at most ${MAX_UNROLLED_STEPS} are unrolled)`);
  const g = ctx.graph;
  const F = { T: attr.float() };
  const kernel = ctx.weight(layer, 'kernel')!;
  const recurrent = ctx.weight(layer, 'recurrent_kernel')!;
  const bias = c.use_bias === false ? undefined : ctx.weight(layer, 'bias', false);
  const units = recurrent.shape[0]!;
  const gates = kind === 'GRU' ? 3 : kind === 'LSTM' ? 4 : 1;
  const width = gates * units;
  if (kernel.shape[0] !== inputs || kernel.shape[1] !== width || recurrent.shape[1] !== width)
    throw new NotCompilable(`${kind} ${JSON.stringify(base)} has weights [${kernel.shape}] / [${recurrent.shape}] for ${inputs} inputs and ${units} units`);
  const resetAfter = kind === 'GRU' && c.reset_after === true;
  const inputBias = new Float32Array(width);
  const recurrentBias = new Float32Array(width);
  if (bias) {
    if (resetAfter && (bias.shape.length !== 2 || bias.shape[1] !== width)) throw new NotCompilable(`GRU ${JSON.stringify(base)} has reset_after=True but a [${bias.shape}] bias`);
    if (!resetAfter && bias.values.length !== width) throw new NotCompilable(`${kind} ${JSON.stringify(base)} has a [${bias.shape}] bias for ${units} units`);
    inputBias.set(bias.values.subarray(0, width));
    if (resetAfter) recurrentBias.set(bias.values.subarray(width, 2 * width));
  }
  const activation = String(c.activation ?? 'tanh');
  const recurrentActivation = String(c.recurrent_activation ?? 'sigmoid');
  const matmul = (name: string, a: string, b: string) => g.op(name, 'MatMul', [a, b], { ...F, transpose_a: attr.bool(false), transpose_b: attr.bool(false) });
  const binary = (name: string, op: string, a: string, b: string) => g.op(name, op, [a, b], F);
  const act = (name: string, input: string, fn: string) => ctx.activation(name, { name: input, shape: [x.shape[0]!, units] }, fn).name;
  // Made on first use: stock TF.js takes any node nothing reads (an unused Const too) for a model output.
  let axisOne: string | undefined;
  const split = (name: string, input: string, parts: number): string[] => {
    axisOne ??= g.constant(`${base}/split_axis`, [], Int32Array.of(1));
    const node = g.op(name, 'Split', [axisOne, input], { ...F, num_split: attr.int(parts) });
    return Array.from({ length: parts }, (_, i) => `${node}:${i}`);
  };

  // The input is unpacked into its T steps (it is narrower than the projections: unpacking the
  // projected [batch, T, gates·units] along axis 1 measured 10-30x slower on the wasm backend at batch 32),
  // and each step's input projection is one _FusedMatMul per gate group.
  const unpacked = g.op(`${base}/unstack`, 'Unpack', [x.name], { ...F, num: attr.int(steps), axis: attr.int(1) });
  const xSteps = Array.from({ length: steps }, (_, t) => `${unpacked}:${t}`);
  const project = (group: string, start: number, end: number, biasValues: Float32Array): string[] => {
    const w = g.constant(`${base}/${group}/kernel`, [inputs, end - start], columns(kernel.values, inputs, width, start, end));
    const b = g.constant(`${base}/${group}/bias`, [end - start], biasValues);
    return xSteps.map((xt, t) =>
      g.op(`${base}/step${t}/${group}/projection`, '_FusedMatMul', [xt, w, b], {
        ...F,
        num_args: attr.int(1),
        fused_ops: attr.strings(['BiasAdd']),
        epsilon: attr.number(0),
        transpose_a: attr.bool(false),
        transpose_b: attr.bool(false),
      }),
    );
  };
  const recurrentConst = (group: string, start: number, end: number) => g.constant(`${base}/${group}/recurrent_kernel`, [units, end - start], columns(recurrent.values, units, width, start, end));

  const order = Array.from({ length: steps }, (_, t) => (c.go_backwards === true ? steps - 1 - t : t));
  const outputs: string[] = [];
  let h: string | undefined;
  if (kind === 'GRU') {
    // z and r: input and recurrent biases fold into the projection (they are summed); the h gate keeps its recurrent bias apart when reset_after.
    const zrBias = inputBias.slice(0, 2 * units);
    if (resetAfter) for (let i = 0; i < 2 * units; i++) zrBias[i] = zrBias[i]! + recurrentBias[i]!;
    const xzr = project('zr', 0, 2 * units, zrBias);
    const xh = project('h', 2 * units, width, inputBias.slice(2 * units));
    const uzr = recurrentConst('zr', 0, 2 * units);
    const uh = recurrentConst('h', 2 * units, width);
    const bh = resetAfter ? g.constant(`${base}/h/recurrent_bias`, [units], recurrentBias.slice(2 * units)) : undefined;
    for (const [i, t] of order.entries()) {
      const s = `${base}/step${i}`;
      const pre = h === undefined ? xzr[t]! : binary(`${s}/zr`, 'AddV2', xzr[t]!, matmul(`${s}/hU_zr`, h, uzr));
      const [z, r] = split(`${s}/split`, act(`${s}/gates`, pre, recurrentActivation), 2) as [string, string];
      let candidate: string;
      if (resetAfter) {
        const hu = h === undefined ? bh! : g.op(`${s}/hU_h`, 'BiasAdd', [matmul(`${s}/hU_h/MatMul`, h, uh), bh!], F);
        candidate = binary(`${s}/h_in`, 'AddV2', xh[t]!, binary(`${s}/reset`, 'Mul', r, hu));
      } else {
        candidate = h === undefined ? xh[t]! : binary(`${s}/h_in`, 'AddV2', xh[t]!, matmul(`${s}/rhU`, binary(`${s}/reset`, 'Mul', r, h), uh));
      }
      const hh = act(`${s}/candidate`, candidate, activation);
      h = h === undefined ? binary(`${s}/h`, 'Sub', hh, binary(`${s}/zhh`, 'Mul', z, hh)) : binary(`${s}/h`, 'AddV2', hh, binary(`${s}/zd`, 'Mul', z, binary(`${s}/d`, 'Sub', h, hh)));
      outputs.push(h);
    }
  } else if (kind === 'LSTM') {
    const xs = project('ifco', 0, width, inputBias);
    const u = recurrentConst('ifco', 0, width);
    let cell: string | undefined;
    for (const [i, t] of order.entries()) {
      const s = `${base}/step${i}`;
      const pre = h === undefined ? xs[t]! : binary(`${s}/pre`, 'AddV2', xs[t]!, matmul(`${s}/hU`, h, u));
      const [pi, pf, pc, po] = split(`${s}/split`, pre, 4) as [string, string, string, string];
      const ig = act(`${s}/i`, pi, recurrentActivation);
      const cc = binary(`${s}/ic`, 'Mul', ig, act(`${s}/cc`, pc, activation));
      cell = cell === undefined ? cc : binary(`${s}/c`, 'AddV2', binary(`${s}/fc`, 'Mul', act(`${s}/f`, pf, recurrentActivation), cell), cc);
      h = binary(`${s}/h`, 'Mul', act(`${s}/o`, po, recurrentActivation), act(`${s}/c_act`, cell, activation));
      outputs.push(h);
    }
  } else {
    const xs = project('input', 0, width, inputBias);
    const u = recurrentConst('input', 0, width);
    for (const [i, t] of order.entries()) {
      const s = `${base}/step${i}`;
      const pre = h === undefined ? xs[t]! : binary(`${s}/pre`, 'AddV2', xs[t]!, matmul(`${s}/hU`, h, u));
      h = act(`${s}/h`, pre, activation);
      if (h === pre) h = g.op(`${s}/h`, 'Identity', [pre], F);
      outputs.push(h);
    }
  }
  if (c.return_sequences === true) {
    return { name: g.op(base, 'Pack', outputs, { ...F, N: attr.int(steps), axis: attr.int(1) }), shape: [x.shape[0]!, steps, units] };
  }
  return { name: g.op(base, 'Identity', [h!], F), shape: [x.shape[0]!, units] };
}

const MERGES: Record<string, string> = { concat: 'ConcatV2', sum: 'AddV2', mul: 'Mul', ave: 'AddV2' };

/** Why a Bidirectional config cannot be lowered, or undefined when it can. */
export function bidirectionalRefusal(c: Record<string, unknown>): string | undefined {
  const inner = c.layer as { class_name?: unknown; config?: Record<string, unknown> } | undefined;
  const className = String(inner?.class_name);
  if (!RECURRENT_CLASSES.has(className)) return `a wrapped ${className} (GRU, LSTM and SimpleRNN are lowered)`;
  const mode = c.merge_mode === undefined ? 'concat' : c.merge_mode;
  if (typeof mode !== 'string' || !MERGES[mode]) return `merge_mode=${JSON.stringify(c.merge_mode)} (concat, sum, mul and ave are lowered)`;
  return recurrentRefusal(className, inner?.config ?? {});
}

export function lowerBidirectional(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const refusal = bidirectionalRefusal(c);
  if (refusal) throw new NotCompilable(`Bidirectional ${JSON.stringify(base)} has ${refusal}`);
  const inner = c.layer as { class_name: string; config: Record<string, unknown> };
  const innerName = String(inner.config.name);
  // Each direction is the inner layer named as TF.js names its weights: <wrapper>/forward_<inner>/kernel, ...
  const direction = (prefix: 'forward' | 'backward', goBackwards: boolean): TopologyLayer =>
    ({ class_name: inner.class_name, config: { ...inner.config, name: `${base}/${prefix}_${innerName}`, go_backwards: goBackwards } }) as TopologyLayer;
  const g = ctx.graph;
  const F = { T: attr.float() };
  const forward = lowerRecurrent(ctx, direction('forward', inner.config.go_backwards === true), x);
  let backward = lowerRecurrent(ctx, direction('backward', inner.config.go_backwards !== true), x);
  if (inner.config.return_sequences === true) {
    backward = { name: g.op(`${base}/backward/reverse`, 'ReverseV2', [backward.name, g.ints(`${base}/backward/axis`, [1])], { ...F, Tidx: attr.dtype('int32') }), shape: backward.shape };
  }
  const mode = String(c.merge_mode ?? 'concat');
  const last = forward.shape.length - 1;
  if (mode === 'concat') {
    const shape = forward.shape.map((d, i) => (i === last ? d + backward.shape[i]! : d));
    const axis = g.constant(`${base}/axis`, [], Int32Array.of(last));
    return { name: g.op(base, 'ConcatV2', [forward.name, backward.name, axis], { ...F, N: attr.int(2), Tidx: attr.dtype('int32') }), shape };
  }
  if (mode !== 'ave') return { name: g.op(base, MERGES[mode]!, [forward.name, backward.name], F), shape: forward.shape };
  const sum = g.op(`${base}/sum`, 'AddV2', [forward.name, backward.name], F);
  return { name: g.op(base, 'Mul', [sum, g.constant(`${base}/half`, [], Float32Array.of(0.5))], F), shape: forward.shape };
}
