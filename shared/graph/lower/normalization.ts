// LayerNormalization over the given (trailing) axes: y = (x − mean) · rsqrt(var + ε) · γ + β, with
// mean and var by Mean (keep_dims) and SquaredDifference. rms_scaling and axes that are not the
// trailing ones (γ / β would not broadcast) raise NotCompilable naming the layer and the option.
import { attr } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { type LowerContext, layerConfig, layerName, type Tensor } from './context.ts';

/** Why a LayerNormalization config cannot be lowered, or undefined when it can (axes are checked against the input). */
export function layerNormRefusal(c: Record<string, unknown>): string | undefined {
  if (c.rms_scaling === true) return 'rms_scaling=True';
  const axes = Array.isArray(c.axis) ? c.axis : [c.axis ?? -1];
  if (axes.length === 0 || !axes.every((a) => Number.isInteger(a))) return `axis=${JSON.stringify(c.axis)}`;
  return undefined;
}

export function lowerLayerNorm(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const refusal = layerNormRefusal(c);
  if (refusal) throw new NotCompilable(`LayerNormalization ${JSON.stringify(base)} has ${refusal}`);
  const rank = x.shape.length;
  const axes = [...new Set((Array.isArray(c.axis) ? c.axis : [c.axis ?? -1]).map((a) => (Number(a) < 0 ? rank + Number(a) : Number(a))))].sort((a, b) => a - b);
  if (axes.some((a, i) => a !== rank - axes.length + i) || axes[0]! < 1)
    throw new NotCompilable(`LayerNormalization ${JSON.stringify(base)} normalizes axes ${JSON.stringify(c.axis)} of a rank-${rank} input (only trailing axes are compiled)`);
  const normShape = axes.map((a) => x.shape[a]!);
  if (normShape.some((d) => d < 0)) throw new NotCompilable(`LayerNormalization ${JSON.stringify(base)} over unknown dimensions`);
  const g = ctx.graph;
  const F = { T: attr.float() };
  const reduce = { ...F, Tidx: attr.dtype('int32'), keep_dims: attr.bool(true) };
  const axesConst = g.ints(`${base}/axes`, axes);
  const mean = g.op(`${base}/mean`, 'Mean', [x.name, axesConst], reduce);
  const variance = g.op(`${base}/variance`, 'Mean', [g.op(`${base}/squared_difference`, 'SquaredDifference', [x.name, mean], F), axesConst], reduce);
  const epsilon = g.constant(`${base}/epsilon`, [], Float32Array.of(Number(c.epsilon ?? 1e-3)));
  const inverse = g.op(`${base}/rsqrt`, 'Rsqrt', [g.op(`${base}/add_epsilon`, 'AddV2', [variance, epsilon], F)], F);
  let y = g.op(`${base}/normalized`, 'Mul', [g.op(`${base}/centered`, 'Sub', [x.name, mean], F), inverse], F);
  if (c.scale !== false) y = g.op(`${base}/scaled`, 'Mul', [y, g.constant(`${base}/gamma`, normShape, ctx.weight(layer, 'gamma')!.values)], F);
  if (c.center !== false) y = g.op(`${base}/shifted`, 'AddV2', [y, g.constant(`${base}/beta`, normShape, ctx.weight(layer, 'beta')!.values)], F);
  return { name: y, shape: x.shape };
}
