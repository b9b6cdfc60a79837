// TFOpLambda / SlicingOpLambda: the plain TensorFlow calls Keras 2 records as layers (config.function,
// the arguments after the first as keywords of the inbound node). Lowered: elementwise binary ops
// (y a tensor or a number), unary math, softmax over the last axis, reduce_mean / sum / max / min /
// prod, reshape, transpose, expand_dims, squeeze, matmul, concat, cast to float32 and
// `x[...]` slicing (__operators__.getitem → StridedSlice). Any other function, argument or argument
// form raises NotCompilable naming the layer and the function.
import { attr } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { type LowerContext, layerConfig, layerName, type Tensor } from './context.ts';

const BINARY: Record<string, string> = {
  add: 'AddV2',
  subtract: 'Sub',
  multiply: 'Mul',
  truediv: 'RealDiv',
  divide: 'RealDiv',
  maximum: 'Maximum',
  minimum: 'Minimum',
  pow: 'Pow',
  squared_difference: 'SquaredDifference',
};
const UNARY: Record<string, string> = {
  abs: 'Abs',
  exp: 'Exp',
  log: 'Log',
  sqrt: 'Sqrt',
  rsqrt: 'Rsqrt',
  square: 'Square',
  negative: 'Neg',
  reciprocal: 'Reciprocal',
  tanh: 'Tanh',
  sigmoid: 'Sigmoid',
  relu: 'Relu',
  relu6: 'Relu6',
  elu: 'Elu',
  selu: 'Selu',
  softplus: 'Softplus',
  sin: 'Sin',
  cos: 'Cos',
  floor: 'Floor',
  ceil: 'Ceil',
  sign: 'Sign',
};
const REDUCE: Record<string, string> = { reduce_mean: 'Mean', reduce_sum: 'Sum', reduce_max: 'Max', reduce_min: 'Min', reduce_prod: 'Prod' };
const SHAPE_OPS = new Set(['softmax', 'reshape', 'transpose', 'expand_dims', 'squeeze', 'matmul', 'concat', 'cast', 'getitem']);

/** `math.reduce_mean`, `reduce_mean` → `reduce_mean`; `__operators__.add` → `add`. */
const functionKey = (fn: unknown): string => (typeof fn === 'string' ? fn.replace(/^(math|nn|linalg|__operators__)\./, '') : '');

/** Why a TFOpLambda / SlicingOpLambda config cannot be lowered, or undefined when its function can be. */
export function tfOpRefusal(c: Record<string, unknown>): string | undefined {
  const key = functionKey(c.function);
  return BINARY[key] || UNARY[key] || REDUCE[key] || SHAPE_OPS.has(key) ? undefined : `function ${JSON.stringify(c.function)} (not lowered)`;
}

/** Right-aligned broadcast of two shapes (-1 unknown). */
function broadcast(a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    return x === 1 ? y : y === 1 ? x : x === y ? x : -1;
  });
}

const F = { T: attr.float() };
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);

interface Call {
  ctx: LowerContext;
  base: string;
  fn: string;
  /** The first argument's tensors (one, or a list for concat). */
  inputs: Tensor[];
  /** Tensors passed by keyword (`y`, `b`). */
  tensors: Record<string, Tensor>;
  args: Record<string, unknown>;
}

function refuse(call: Call, why: string): never {
  throw new NotCompilable(`TFOpLambda ${JSON.stringify(call.base)} (${call.fn}) ${why}`);
}

/** The value of argument `key`, refusing arguments other than `allowed` (and `name`). */
function argsOf(call: Call, allowed: string[]): Record<string, unknown> {
  const other = [...Object.keys(call.args), ...Object.keys(call.tensors)].filter((k) => k !== 'name' && !allowed.includes(k));
  if (other.length > 0) refuse(call, `has arguments ${other.join(', ')} (not compiled)`);
  return call.args;
}

function axisOf(call: Call, axis: number, rank: number): number {
  const resolved = axis < 0 ? rank + axis : axis;
  if (!(resolved >= 0 && resolved < rank)) refuse(call, `has axis ${axis} for a rank-${rank} tensor`);
  return resolved;
}

function single(call: Call): Tensor {
  if (call.inputs.length !== 1) refuse(call, `takes ${call.inputs.length} tensors as its first argument`);
  return call.inputs[0]!;
}

function floatInput(call: Call, x: Tensor): Tensor {
  if (x.dtype === 'int32') refuse(call, 'on an int32 tensor (cast it to float32 first)');
  return x;
}

function binary(call: Call, op: string): Tensor {
  const { ctx, base } = call;
  argsOf(call, ['y']);
  const x = floatInput(call, call.inputs[0]!);
  const second = call.tensors.y ?? call.inputs[1];
  let y: Tensor;
  if (second) y = floatInput(call, second);
  else if (typeof call.args.y === 'number') y = { name: ctx.graph.constant(`${base}/y`, [], Float32Array.of(call.args.y)), shape: [] };
  else if (Array.isArray(call.args.y) && call.args.y.every((v) => typeof v === 'number')) {
    const values = call.args.y as number[];
    y = { name: ctx.graph.constant(`${base}/y`, [values.length], Float32Array.from(values)), shape: [values.length] };
  } else refuse(call, `has y=${JSON.stringify(call.args.y)} (a tensor, a number or a list of numbers is compiled)`);
  return { name: ctx.graph.op(base, op, [x.name, y.name], F), shape: broadcast(x.shape, y.shape) };
}

function reduce(call: Call, op: string): Tensor {
  const { ctx, base } = call;
  const { axis, keepdims } = argsOf(call, ['axis', 'keepdims']);
  const x = floatInput(call, single(call));
  const rank = x.shape.length;
  let axes: number[];
  if (axis === undefined || axis === null) axes = Array.from({ length: rank }, (_, i) => i);
  else if (isInt(axis)) axes = [axisOf(call, axis, rank)];
  else if (isIntList(axis)) axes = axis.map((a) => axisOf(call, a, rank));
  else refuse(call, `has axis=${JSON.stringify(axis)}`);
  const keep = keepdims === true;
  const name = ctx.graph.op(base, op, [x.name, ctx.graph.ints(`${base}/axes`, axes)], { ...F, Tidx: attr.dtype('int32'), keep_dims: attr.bool(keep) });
  return { name, shape: keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i)) };
}

function reshape(call: Call): Tensor {
  const { ctx, base } = call;
  const { shape } = argsOf(call, ['shape']);
  const x = single(call);
  if (!isIntList(shape) || shape.filter((d) => d === -1).length > 1 || shape.some((d) => d < -1)) refuse(call, `has shape=${JSON.stringify(shape)} (a list of numbers, at most one -1, is compiled)`);
  const known = x.shape.every((d) => d >= 0);
  const size = x.shape.reduce((a, b) => a * b, 1);
  const fixed = shape.filter((d) => d >= 0).reduce((a, b) => a * b, 1);
  const out = shape.map((d) => (d >= 0 ? d : known && fixed > 0 ? size / fixed : -1));
  const name = ctx.graph.op(base, 'Reshape', [x.name, ctx.graph.ints(`${base}/shape`, shape)], { T: attr.dtype(x.dtype ?? 'float32'), Tshape: attr.dtype('int32') });
  return { name, shape: out, ...(x.dtype ? { dtype: x.dtype } : {}) };
}

function transpose(call: Call): Tensor {
  const { ctx, base } = call;
  const { perm, conjugate } = argsOf(call, ['perm', 'conjugate']);
  const x = floatInput(call, single(call));
  if (conjugate === true) refuse(call, 'has conjugate=True');
  const order = perm === undefined || perm === null ? x.shape.map((_, i) => x.shape.length - 1 - i) : perm;
  if (!isIntList(order) || order.length !== x.shape.length || [...order].sort((p, q) => p - q).some((p, i) => p !== i)) refuse(call, `has perm=${JSON.stringify(perm)}`);
  const name = ctx.graph.op(base, 'Transpose', [x.name, ctx.graph.ints(`${base}/perm`, order)], { ...F, Tperm: attr.dtype('int32') });
  return { name, shape: order.map((p) => x.shape[p]!) };
}

function expandDims(call: Call): Tensor {
  const { ctx, base } = call;
  const { axis } = argsOf(call, ['axis']);
  const x = floatInput(call, single(call));
  if (!isInt(axis)) refuse(call, `has axis=${JSON.stringify(axis)}`);
  const at = axisOf(call, axis, x.shape.length + 1);
  const name = ctx.graph.op(base, 'ExpandDims', [x.name, ctx.graph.constant(`${base}/axis`, [], Int32Array.of(at))], { ...F, Tdim: attr.dtype('int32') });
  return { name, shape: [...x.shape.slice(0, at), 1, ...x.shape.slice(at)] };
}

function squeeze(call: Call): Tensor {
  const { ctx, base } = call;
  const { axis } = argsOf(call, ['axis']);
  const x = floatInput(call, single(call));
  const list = isInt(axis) ? [axis] : axis;
  if (!isIntList(list) || list.length === 0) refuse(call, `has axis=${JSON.stringify(axis)} (squeezing every size-1 axis of a tensor with an unknown batch is not compiled)`);
  const axes = list.map((a) => axisOf(call, a, x.shape.length));
  if (axes.some((a) => x.shape[a] !== 1)) refuse(call, `squeezes axes ${JSON.stringify(axis)} of a [${x.shape}] tensor`);
  const name = ctx.graph.op(base, 'Squeeze', [x.name], { ...F, squeeze_dims: attr.ints(axes) });
  return { name, shape: x.shape.filter((_, i) => !axes.includes(i)) };
}

function matmul(call: Call): Tensor {
  const { ctx, base } = call;
  const args = argsOf(call, ['b', 'transpose_a', 'transpose_b', 'adjoint_a', 'adjoint_b']);
  const a = floatInput(call, single(call));
  const b = call.tensors.b;
  if (!b) refuse(call, `has b=${JSON.stringify(args.b)} (a tensor is compiled)`);
  floatInput(call, b);
  const ta = args.transpose_a === true || args.adjoint_a === true;
  const tb = args.transpose_b === true || args.adjoint_b === true;
  if (a.shape.length < 2 || b.shape.length < 2) refuse(call, `multiplies [${a.shape}] by [${b.shape}] (rank 2 or more each)`);
  const rows = a.shape[a.shape.length - (ta ? 1 : 2)]!;
  const cols = b.shape[b.shape.length - (tb ? 2 : 1)]!;
  const batch = broadcast(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const name = ctx.graph.op(base, 'BatchMatMulV2', [a.name, b.name], { ...F, adj_x: attr.bool(ta), adj_y: attr.bool(tb) });
  return { name, shape: [...batch, rows, cols] };
}

function concat(call: Call): Tensor {
  const { ctx, base } = call;
  const { axis } = argsOf(call, ['axis']);
  const inputs = call.inputs.map((t) => floatInput(call, t));
  const rank = inputs[0]!.shape.length;
  if (!isInt(axis) || inputs.some((t) => t.shape.length !== rank)) refuse(call, `has axis=${JSON.stringify(axis)} over tensors of shapes ${inputs.map((t) => `[${t.shape}]`).join(', ')}`);
  const at = axisOf(call, axis, rank);
  const size = inputs.some((t) => t.shape[at]! < 0) ? -1 : inputs.reduce((sum, t) => sum + t.shape[at]!, 0);
  const name = ctx.graph.op(base, 'ConcatV2', [...inputs.map((t) => t.name), ctx.graph.constant(`${base}/axis`, [], Int32Array.of(at))], {
    ...F,
    N: attr.int(inputs.length),
    Tidx: attr.dtype('int32'),
  });
  return { name, shape: inputs[0]!.shape.map((d, i) => (i === at ? size : d)) };
}

function cast(call: Call): Tensor {
  const { ctx, base } = call;
  const { dtype } = argsOf(call, ['dtype']);
  const x = single(call);
  if (dtype !== 'float32') refuse(call, `casts to ${JSON.stringify(dtype)} (only float32 is compiled)`);
  if (x.dtype !== 'int32') return x;
  return { name: ctx.graph.op(base, 'Cast', [x.name], { SrcT: attr.dtype('int32'), DstT: attr.float(), Truncate: attr.bool(false) }), shape: x.shape };
}

/**
 * `x[spec]` as Keras records it: slice_spec is one entry or a list of them, each {start, stop, step}
 * (a slice), an integer (an index: the axis is dropped), null (tf.newaxis) or {class_name: "__ellipsis__"}.
 */
function getitem(call: Call): Tensor {
  const { ctx, base } = call;
  const { slice_spec: raw } = argsOf(call, ['slice_spec']);
  const x = floatInput(call, single(call));
  const specs = Array.isArray(raw) ? raw : [raw];
  const begin: number[] = [];
  const end: number[] = [];
  const strides: number[] = [];
  const masks = { begin: 0, end: 0, ellipsis: 0, newAxis: 0, shrink: 0 };
  const shape: number[] = [];
  const isEllipsis = (s: unknown) => typeof s === 'object' && s !== null && (s as { class_name?: unknown }).class_name === '__ellipsis__';
  const ellipsisAt = specs.findIndex(isEllipsis);
  const consumed = specs.filter((s) => s !== null && !isEllipsis(s)).length;
  if (consumed > x.shape.length || specs.filter(isEllipsis).length > 1) refuse(call, `slices a rank-${x.shape.length} tensor with ${JSON.stringify(raw)}`);
  const entry = (b: number, e: number, stride: number) => {
    begin.push(b);
    end.push(e);
    strides.push(stride);
  };
  let dim = 0;
  specs.forEach((spec, i) => {
    const bit = 1 << i;
    if (spec === null) {
      masks.newAxis |= bit;
      entry(0, 0, 1);
      shape.push(1);
    } else if (isEllipsis(spec)) {
      masks.ellipsis |= bit;
      entry(0, 0, 1);
      const skipped = x.shape.length - consumed;
      shape.push(...x.shape.slice(dim, dim + skipped));
      dim += skipped;
    } else if (isInt(spec)) {
      masks.shrink |= bit;
      entry(spec, spec + 1, 1);
      dim++;
    } else if (typeof spec === 'object' && !Array.isArray(spec)) {
      const { start, stop, step } = spec as { start?: unknown; stop?: unknown; step?: unknown };
      const s = step === null || step === undefined ? 1 : step;
      if (![start, stop].every((v) => v === null || v === undefined || isInt(v)) || !isInt(s) || s === 0) refuse(call, `has slice ${JSON.stringify(spec)}`);
      if (start === null || start === undefined) masks.begin |= bit;
      if (stop === null || stop === undefined) masks.end |= bit;
      entry(isInt(start) ? start : 0, isInt(stop) ? stop : 0, s);
      const size = x.shape[dim]!;
      if (size < 0) shape.push(-1);
      else {
        // Python's slice.indices, then the element count.
        const clamp = (v: number, low: number, high: number) => Math.min(Math.max(v < 0 ? v + size : v, low), high);
        const first = isInt(start) ? clamp(start, s > 0 ? 0 : -1, s > 0 ? size : size - 1) : s > 0 ? 0 : size - 1;
        const last = isInt(stop) ? clamp(stop, s > 0 ? 0 : -1, s > 0 ? size : size - 1) : s > 0 ? size : -1;
        shape.push(Math.max(0, Math.ceil((last - first) / s)));
      }
      dim++;
    } else refuse(call, `has slice ${JSON.stringify(spec)}`);
  });
  if (ellipsisAt < 0) shape.push(...x.shape.slice(dim));
  const g = ctx.graph;
  const name = g.op(base, 'StridedSlice', [x.name, g.ints(`${base}/begin`, begin), g.ints(`${base}/end`, end), g.ints(`${base}/strides`, strides)], {
    ...F,
    Index: attr.dtype('int32'),
    begin_mask: attr.int(masks.begin),
    end_mask: attr.int(masks.end),
    ellipsis_mask: attr.int(masks.ellipsis),
    new_axis_mask: attr.int(masks.newAxis),
    shrink_axis_mask: attr.int(masks.shrink),
  });
  return { name, shape };
}

/**
 * Lowers one TFOpLambda call: `inputs` are the tensors of its first argument (a list for concat),
 * `tensors` those passed by keyword, `args` the other keyword arguments as recorded.
 */
export function lowerTfOp(ctx: LowerContext, layer: TopologyLayer, inputs: Tensor[], tensors: Record<string, Tensor>, args: Record<string, unknown>): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const refusal = tfOpRefusal(c);
  if (refusal) throw new NotCompilable(`TFOpLambda ${JSON.stringify(base)} calls ${refusal}`);
  const key = functionKey(c.function);
  const call: Call = { ctx, base, fn: String(c.function), inputs, tensors, args };
  if (inputs.length === 0) refuse(call, 'reads no tensor');
  if (BINARY[key]) return binary(call, BINARY[key]);
  if (REDUCE[key]) return reduce(call, REDUCE[key]);
  if (UNARY[key]) {
    argsOf(call, []);
    const x = floatInput(call, single(call));
    return { name: ctx.graph.op(base, UNARY[key], [x.name], F), shape: x.shape };
  }
  switch (key) {
    case 'softmax': {
      const { axis } = argsOf(call, ['axis', 'dim']);
      const x = floatInput(call, single(call));
      if (axis !== undefined && axis !== null && axis !== -1 && axis !== x.shape.length - 1) refuse(call, `has axis=${JSON.stringify(axis)} (only the last axis is compiled)`);
      return { name: ctx.graph.op(base, 'Softmax', [x.name], F), shape: x.shape };
    }
    case 'reshape':
      return reshape(call);
    case 'transpose':
      return transpose(call);
    case 'expand_dims':
      return expandDims(call);
    case 'squeeze':
      return squeeze(call);
    case 'matmul':
      return matmul(call);
    case 'concat':
      return concat(call);
    case 'cast':
      return cast(call);
    default:
      return getitem(call);
  }
}
