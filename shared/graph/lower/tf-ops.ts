// TFOpLambda: the plain TensorFlow calls Keras records as layers (config.function). Elementwise
// binary ops are lowered, with `y` a tensor (passed by keyword, `{"y": ["layer", 0, 0]}`) or a
// number (`{"y": 2.0}`): add, subtract, multiply, truediv, maximum, minimum. Any other function,
// or another keyword argument, raises NotCompilable naming the layer and the function.
import { attr } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { type LowerContext, layerConfig, layerName, type Tensor } from './context.ts';

const BINARY: Record<string, string> = {
  '__operators__.add': 'AddV2',
  'math.add': 'AddV2',
  'math.subtract': 'Sub',
  'math.multiply': 'Mul',
  'math.truediv': 'RealDiv',
  'math.divide': 'RealDiv',
  'math.maximum': 'Maximum',
  'math.minimum': 'Minimum',
};

/** Why a TFOpLambda config cannot be lowered, or undefined when it can. */
export function tfOpRefusal(c: Record<string, unknown>): string | undefined {
  return typeof c.function === 'string' && BINARY[c.function] ? undefined : `function ${JSON.stringify(c.function)} (not lowered)`;
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

export function lowerTfOp(ctx: LowerContext, layer: TopologyLayer, x: Tensor, y: Tensor | undefined, args: Record<string, unknown>): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const refusal = tfOpRefusal(c);
  if (refusal) throw new NotCompilable(`TFOpLambda ${JSON.stringify(base)} calls ${refusal}`);
  const other = Object.keys(args).filter((k) => k !== 'y' && k !== 'name');
  if (other.length > 0) throw new NotCompilable(`TFOpLambda ${JSON.stringify(base)} (${String(c.function)}) has arguments ${other.join(', ')} (not compiled)`);
  let operand: Tensor;
  if (y) operand = y;
  else if (typeof args.y === 'number') operand = { name: ctx.graph.constant(`${base}/y`, [], Float32Array.of(args.y)), shape: [] };
  else throw new NotCompilable(`TFOpLambda ${JSON.stringify(base)} (${String(c.function)}) has y=${JSON.stringify(args.y)} (a tensor or a number is compiled)`);
  if (x.dtype === 'int32' || operand.dtype === 'int32') throw new NotCompilable(`TFOpLambda ${JSON.stringify(base)} on int32 tensors`);
  return { name: ctx.graph.op(base, BINARY[String(c.function)]!, [x.name, operand.name], { T: attr.float() }), shape: broadcast(x.shape, operand.shape) };
}
