// Keras MultiHeadAttention over rank-3 inputs (attention over axis 1): query / key / value
// projections (EinsumDense kernels [dim, heads, key_dim] + biases [heads, key_dim]) as _FusedMatMul
// over [batch·T, dim], reshaped and transposed to [batch, heads, T, key_dim]; scores =
// BatchMatMulV2(q, k, adj_y) / √key_dim, Softmax over the keys, BatchMatMulV2 with v, back to
// [batch·T, heads·value_dim] and the output projection ([heads, value_dim, dim] + [dim]).
// Weights are read as `<layer>/{query,key,value,attention_output}/{kernel,bias}`. Attention masks,
// causal masks, returned scores, other attention axes and output_shape raise NotCompilable.
import { attr } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { type LowerContext, layerConfig, layerName, type Tensor } from './context.ts';

/** Why a MultiHeadAttention config cannot be lowered, or undefined when it can. */
export function attentionRefusal(c: Record<string, unknown>): string | undefined {
  if (c.use_causal_mask === true) return 'use_causal_mask=True';
  if (c.return_attention_scores === true) return 'return_attention_scores=True';
  if (c.output_shape !== undefined && c.output_shape !== null) return `output_shape=${JSON.stringify(c.output_shape)}`;
  const axes = c.attention_axes;
  if (axes !== undefined && axes !== null && !(Array.isArray(axes) && axes.length === 1 && (axes[0] === 1 || axes[0] === -2))) return `attention_axes=${JSON.stringify(axes)}`;
  return undefined;
}

export function lowerAttention(ctx: LowerContext, layer: TopologyLayer, query: Tensor, value: Tensor, key: Tensor, extra: string[]): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const refusal = attentionRefusal(c) ?? (extra.length ? `tensor arguments ${extra.join(', ')} (masks are not compiled)` : undefined);
  if (refusal) throw new NotCompilable(`MultiHeadAttention ${JSON.stringify(base)} has ${refusal}`);
  for (const t of [query, value, key])
    if (t.shape.length !== 3 || t.shape.slice(1).some((d) => d < 0)) throw new NotCompilable(`MultiHeadAttention ${JSON.stringify(base)} on an input of shape [${t.shape}] (rank 3, known steps)`);
  const g = ctx.graph;
  const F = { T: attr.float() };
  const reshape = (name: string, x: string, shape: number[]) => g.op(name, 'Reshape', [x, g.ints(`${name}/shape`, shape)], { ...F, Tshape: attr.dtype('int32') });
  const fusedMatMul = (name: string, x: string, w: string, b: string) =>
    g.op(name, '_FusedMatMul', [x, w, b], { ...F, num_args: attr.int(1), fused_ops: attr.strings(['BiasAdd']), epsilon: attr.number(0), transpose_a: attr.bool(false), transpose_b: attr.bool(false) });
  const useBias = c.use_bias !== false;
  const weight = (part: string, key: 'kernel' | 'bias', size: number) => (key === 'bias' && !useBias ? new Float32Array(size) : ctx.weight(layer, `${part}/${key}`)!.values);
  const project = (part: string, x: Tensor) => {
    const kernel = ctx.weight(layer, `${part}/kernel`)!;
    const [dim, heads, size] = kernel.shape as [number, number, number];
    if (kernel.shape.length !== 3 || dim !== x.shape[2]) throw new NotCompilable(`MultiHeadAttention ${JSON.stringify(base)} has a ${part} kernel [${kernel.shape}] for inputs of ${x.shape[2]}`);
    const steps = x.shape[1]!;
    const flat = reshape(`${base}/${part}/flatten`, x.name, [-1, dim]);
    const w = g.constant(`${base}/${part}/kernel`, [dim, heads * size], kernel.values);
    const b = g.constant(`${base}/${part}/bias`, [heads * size], weight(part, 'bias', heads * size));
    const split = reshape(`${base}/${part}/heads`, fusedMatMul(`${base}/${part}/projection`, flat, w, b), [-1, steps, heads, size]);
    return { heads, size, steps, name: g.op(`${base}/${part}/transpose`, 'Transpose', [split, g.ints(`${base}/${part}/perm`, [0, 2, 1, 3])], { ...F, Tperm: attr.dtype('int32') }) };
  };
  const q = project('query', query);
  const k = project('key', key);
  const v = project('value', value);
  if (k.heads !== q.heads || v.heads !== q.heads || k.size !== q.size || k.steps !== v.steps)
    throw new NotCompilable(`MultiHeadAttention ${JSON.stringify(base)} has query / key / value kernels that do not match`);
  const scores = g.op(`${base}/scores`, 'BatchMatMulV2', [q.name, k.name], { ...F, adj_x: attr.bool(false), adj_y: attr.bool(true) });
  const scaled = g.op(`${base}/scaled`, 'Mul', [scores, g.constant(`${base}/scale`, [], Float32Array.of(1 / Math.sqrt(q.size)))], F);
  const probabilities = g.op(`${base}/softmax`, 'Softmax', [scaled], F);
  const attended = g.op(`${base}/attended`, 'BatchMatMulV2', [probabilities, v.name], { ...F, adj_x: attr.bool(false), adj_y: attr.bool(false) });
  const merged = g.op(`${base}/merge`, 'Transpose', [attended, g.ints(`${base}/merge/perm`, [0, 2, 1, 3])], { ...F, Tperm: attr.dtype('int32') });
  const output = ctx.weight(layer, 'attention_output/kernel')!;
  const outDim = output.shape[2]!;
  if (output.shape[0] !== q.heads || output.shape[1] !== v.size)
    throw new NotCompilable(`MultiHeadAttention ${JSON.stringify(base)} has an output kernel [${output.shape}] for ${q.heads} heads of ${v.size}`);
  const flat = reshape(`${base}/merge/flatten`, merged, [-1, q.heads * v.size]);
  const projected = fusedMatMul(
    `${base}/attention_output/projection`,
    flat,
    g.constant(`${base}/attention_output/kernel`, [q.heads * v.size, outDim], output.values),
    g.constant(`${base}/attention_output/bias`, [outDim], weight('attention_output', 'bias', outDim)),
  );
  return { name: reshape(base, projected, [-1, q.steps, outDim]), shape: [query.shape[0]!, q.steps, outDim] };
}
