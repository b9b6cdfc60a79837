// Conv1D and Conv1DTranspose as their 2-D forms over a height-1 image: ExpandDims (axis 1), then
// _FusedConv2D (bias and a fusable activation fused) or Conv2DBackpropInput + BiasAdd, then Squeeze.
// 'causal' Conv1D pads (k−1)·dilation on the left first. The transposed convolution's output size
// [batch, 1, length, filters] is built at run time (Shape → StridedSlice → ConcatV2) as the batch is unknown.
// Grouped, channels_first, dilated transposed and output_padding configs raise NotCompilable.
import { attr } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { FUSABLE_ACTIVATIONS, type LowerContext, layerConfig, layerName, type Tensor } from './context.ts';
import { batchAndShape } from './conv2d.ts';

export const CONV1D_CLASSES = new Set(['Conv1D', 'Conv1DTranspose']);

const first = (value: unknown, fallback: number): number => Number(Array.isArray(value) ? value[0] : (value ?? fallback));

/** Why a Conv1D / Conv1DTranspose config cannot be lowered, or undefined when it can. */
export function conv1dRefusal(className: string, c: Record<string, unknown>): string | undefined {
  if (!CONV1D_CLASSES.has(className)) return `${className} is not a 1-D convolution`;
  if (c.data_format !== undefined && c.data_format !== null && c.data_format !== 'channels_last') return `data_format=${JSON.stringify(c.data_format)}`;
  if (first(c.groups, 1) !== 1) return `groups=${JSON.stringify(c.groups)}`;
  const padding = String(c.padding ?? 'valid');
  if (!['valid', 'same', ...(className === 'Conv1D' ? ['causal'] : [])].includes(padding)) return `padding=${JSON.stringify(padding)}`;
  if (className === 'Conv1DTranspose') {
    if (first(c.dilation_rate, 1) !== 1) return `dilation_rate=${JSON.stringify(c.dilation_rate)}`;
    if (c.output_padding !== undefined && c.output_padding !== null) return `output_padding=${JSON.stringify(c.output_padding)}`;
  }
  return undefined;
}

export function lowerConv1d(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const kind = layer.class_name;
  const refusal = conv1dRefusal(kind, c);
  if (refusal) throw new NotCompilable(`${kind} ${JSON.stringify(base)} has ${refusal}`);
  if (x.shape.length !== 3) throw new NotCompilable(`${kind} ${JSON.stringify(base)} on a rank-${x.shape.length} input`);
  const g = ctx.graph;
  const F = { T: attr.float() };
  const kernel = ctx.weight(layer, 'kernel')!;
  const [k, a, b] = kernel.shape as [number, number, number];
  const transpose = kind === 'Conv1DTranspose';
  const filters = transpose ? a : b;
  const stride = first(c.strides, 1);
  const dilation = first(c.dilation_rate, 1);
  let padding = String(c.padding ?? 'valid');
  const bias = c.use_bias === false ? new Float32Array(filters) : Float32Array.from(ctx.weight(layer, 'bias')!.values);
  const activation = String(c.activation ?? 'linear');
  const length = x.shape[1]!;

  let input = x.name;
  let inputLength = length;
  if (padding === 'causal') {
    const left = (k - 1) * dilation;
    const paddings = g.constant(`${base}/causal_paddings`, [3, 2], Int32Array.from([0, 0, left, 0, 0, 0]));
    input = g.op(`${base}/causal_pad`, 'Pad', [input, paddings], { ...F, Tpaddings: attr.dtype('int32') });
    inputLength = length < 0 ? -1 : length + left;
    padding = 'valid';
  }
  const axis = g.constant(`${base}/expand_axis`, [], Int32Array.of(1));
  const expanded = g.op(`${base}/ExpandDims`, 'ExpandDims', [input, axis], { ...F, Tdim: attr.dtype('int32') });
  const kernelConst = g.constant(`${base}/kernel`, [1, k, a, b], kernel.values);
  const biasConst = g.constant(`${base}/bias`, [filters], bias);
  const fused = FUSABLE_ACTIVATIONS[activation];
  let conv: string;
  let outLength: number;
  if (!transpose) {
    outLength = inputLength < 0 ? -1 : padding === 'same' ? Math.ceil(inputLength / stride) : Math.floor((inputLength - (k - 1) * dilation - 1) / stride) + 1;
    conv = g.op(`${base}/conv`, '_FusedConv2D', [expanded, kernelConst, biasConst], {
      ...F,
      num_args: attr.int(1),
      fused_ops: attr.strings(['BiasAdd', ...(fused ? [fused] : [])]),
      epsilon: attr.number(0),
      padding: attr.string(padding.toUpperCase()),
      strides: attr.ints([1, 1, stride, 1]),
      dilations: attr.ints([1, 1, dilation, 1]),
      data_format: attr.string('NHWC'),
      use_cudnn_on_gpu: attr.bool(true),
    });
  } else {
    if (length < 0) throw new NotCompilable(`Conv1DTranspose ${JSON.stringify(base)} on an input of unknown length`);
    outLength = padding === 'same' ? length * stride : (length - 1) * stride + k;
    const sizes = batchAndShape(g, base, x.name, [1, outLength, filters]);
    const deconv = g.op(`${base}/conv_transpose`, 'Conv2DBackpropInput', [sizes, kernelConst, expanded], {
      ...F,
      padding: attr.string(padding.toUpperCase()),
      strides: attr.ints([1, 1, stride, 1]),
      dilations: attr.ints([1, 1, 1, 1]),
      data_format: attr.string('NHWC'),
    });
    conv = g.op(`${base}/BiasAdd`, 'BiasAdd', [deconv, biasConst], { ...F, data_format: attr.string('NHWC') });
    if (fused) conv = g.op(`${base}/${fused}`, fused, [conv], F);
  }
  const squeezed = g.op(fused || activation === 'linear' ? base : `${base}/squeeze`, 'Squeeze', [conv], { ...F, squeeze_dims: attr.ints([1]) });
  const result = { name: squeezed, shape: [x.shape[0]!, outLength, filters] };
  return fused ? result : ctx.activation(base, result, activation);
}
