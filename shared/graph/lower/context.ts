// What a lowering module gets from the graph compiler (shared/graph/compile.ts): the graph being
// built, the layer's weights, and the shared activation lowering. Each module under lower/ lowers
// one family of layers with it, so compile.ts stays a dispatcher.
import type { GraphBuilder } from '../graphdef.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';

export interface Tensor {
  name: string;
  /** -1 for unknown dimensions. */
  shape: number[];
  /** Set for int32 tensors (model inputs declared int32); float32 otherwise. */
  dtype?: 'int32';
  /** A ZeroPadding2D deferred into the convolution that reads it: [top, bottom, left, right]. */
  pad?: { input: Tensor; pads: [number, number, number, number] };
}

export interface LowerContext {
  graph: GraphBuilder;
  /** The layer's float32 weight `<layer>/<key>`; throws NotCompilable when a required one is missing. */
  weight(layer: TopologyLayer, key: string, required?: boolean): { shape: number[]; values: Float32Array } | undefined;
  /** A Keras activation by name applied to x ('linear' returns x); throws NotCompilable for one it cannot lower. */
  activation(base: string, x: Tensor, activation: string): Tensor;
}

export const layerName = (layer: TopologyLayer): string => layer.config.name;
export const layerConfig = (layer: TopologyLayer): Record<string, unknown> => layer.config as Record<string, unknown>;

/** Keras activations a _FusedConv2D / _FusedMatMul fuses, by the TF op name they fuse as. */
export const FUSABLE_ACTIVATIONS: Record<string, string> = { relu: 'Relu', relu6: 'Relu6', sigmoid: 'Sigmoid', elu: 'Elu' };

/** A Keras 2-D option (kernel_size, strides, dilation_rate): a number or a list, as [h, w]. */
export const pair = (value: unknown, fallback: number): [number, number] => {
  if (Array.isArray(value)) return [Number(value[0] ?? fallback), Number(value[1] ?? value[0] ?? fallback)];
  return value === undefined || value === null ? [fallback, fallback] : [Number(value), Number(value)];
};
