// SeparableConv2D and Conv2DTranspose (channels_last). SeparableConv2D is Keras'
// tf.nn.separable_conv2d: DepthwiseConv2dNative (strides, padding, dilation) then a 1×1 _FusedConv2D
// with the bias and a fusable activation. Conv2DTranspose is Conv2DBackpropInput with the Keras
// output size ((L − 1)·s + k for 'valid', L·s for 'same'), its [batch, h, w, filters] built at run time
// (the batch is unknown), then BiasAdd and the activation. output_padding, dilated transposed
// convolutions and channels_first raise NotCompilable naming the layer and option.
import { attr, type GraphBuilder } from '../graphdef.ts';
import { NotCompilable } from '../keras-calls.ts';
import type { TopologyLayer } from '../../schemas/model-json.ts';
import { FUSABLE_ACTIVATIONS, type LowerContext, layerConfig, layerName, pair, type Tensor } from './context.ts';

const F = { T: attr.float() };

/** The int32 shape [batch of x, ...rest], built at run time (Shape → StridedSlice → ConcatV2). */
export function batchAndShape(g: GraphBuilder, base: string, x: string, rest: number[]): string {
  const I = { T: attr.dtype('int32') };
  const shape = g.op(`${base}/input_shape`, 'Shape', [x], { T: attr.float(), out_type: attr.dtype('int32') });
  const batch = g.op(`${base}/batch`, 'StridedSlice', [shape, g.ints(`${base}/batch/begin`, [0]), g.ints(`${base}/batch/end`, [1]), g.ints(`${base}/batch/strides`, [1])], {
    ...I,
    Index: attr.dtype('int32'),
    begin_mask: attr.int(0),
    end_mask: attr.int(0),
    ellipsis_mask: attr.int(0),
    new_axis_mask: attr.int(0),
    shrink_axis_mask: attr.int(0),
  });
  return g.op(`${base}/output_sizes`, 'ConcatV2', [batch, g.ints(`${base}/output_rest`, rest), g.constant(`${base}/output_axis`, [], Int32Array.of(0))], {
    ...I,
    N: attr.int(2),
    Tidx: attr.dtype('int32'),
  });
}

/** Why a SeparableConv2D / Conv2DTranspose config cannot be lowered, or undefined when it can. */
export function conv2dRefusal(className: string, c: Record<string, unknown>): string | undefined {
  if (c.data_format !== undefined && c.data_format !== null && c.data_format !== 'channels_last') return `data_format=${JSON.stringify(c.data_format)}`;
  if (!['valid', 'same'].includes(String(c.padding ?? 'valid'))) return `padding=${JSON.stringify(c.padding)}`;
  if (className === 'Conv2DTranspose') {
    if (pair(c.dilation_rate, 1).some((d) => d !== 1)) return `dilation_rate=${JSON.stringify(c.dilation_rate)}`;
    if (c.output_padding !== undefined && c.output_padding !== null) return `output_padding=${JSON.stringify(c.output_padding)}`;
  }
  return undefined;
}

function outSize(size: number, k: number, stride: number, dilation: number, padding: string): number {
  if (size < 0) return -1;
  return padding === 'SAME' ? Math.ceil(size / stride) : Math.floor((size - (k - 1) * dilation - 1) / stride) + 1;
}

/** BiasAdd and the activation after an op that cannot fuse them. */
function biasAndActivation(ctx: LowerContext, base: string, conv: string, bias: string, activation: string, shape: number[]): Tensor {
  const fused = FUSABLE_ACTIVATIONS[activation];
  const added = ctx.graph.op(fused || activation !== 'linear' ? `${base}/BiasAdd` : base, 'BiasAdd', [conv, bias], { ...F, data_format: attr.string('NHWC') });
  if (fused) return { name: ctx.graph.op(base, fused, [added], F), shape };
  return ctx.activation(base, { name: added, shape }, activation);
}

export function lowerConv2d(ctx: LowerContext, layer: TopologyLayer, x: Tensor): Tensor {
  const base = layerName(layer);
  const c = layerConfig(layer);
  const kind = layer.class_name;
  const refusal = conv2dRefusal(kind, c);
  if (refusal) throw new NotCompilable(`${kind} ${JSON.stringify(base)} has ${refusal}`);
  if (x.shape.length !== 4) throw new NotCompilable(`${kind} ${JSON.stringify(base)} on a rank-${x.shape.length} input`);
  const g = ctx.graph;
  const [sh, sw] = pair(c.strides, 1);
  const [dh, dw] = pair(c.dilation_rate, 1);
  const padding = String(c.padding ?? 'valid').toUpperCase();
  const activation = String(c.activation ?? 'linear');
  const geometry = { strides: attr.ints([1, sh, sw, 1]), padding: attr.string(padding), data_format: attr.string('NHWC') };
  const [, h, w] = x.shape as [number, number, number, number];

  if (kind === 'SeparableConv2D') {
    const depthwise = ctx.weight(layer, 'depthwise_kernel')!;
    const pointwise = ctx.weight(layer, 'pointwise_kernel')!;
    const filters = pointwise.shape[3]!;
    const bias = c.use_bias === false ? new Float32Array(filters) : ctx.weight(layer, 'bias')!.values;
    const [kh, kw] = depthwise.shape as [number, number];
    const dw0 = g.op(`${base}/depthwise`, 'DepthwiseConv2dNative', [x.name, g.constant(`${base}/depthwise_kernel`, depthwise.shape, depthwise.values)], {
      ...F,
      ...geometry,
      dilations: attr.ints([1, dh, dw, 1]),
    });
    const fused = FUSABLE_ACTIVATIONS[activation];
    const shape = [x.shape[0]!, outSize(h, kh, sh, dh, padding), outSize(w, kw, sw, dw, padding), filters];
    const pointwiseOp = g.op(
      fused || activation === 'linear' ? base : `${base}/BiasAdd`,
      '_FusedConv2D',
      [dw0, g.constant(`${base}/pointwise_kernel`, pointwise.shape, pointwise.values), g.constant(`${base}/bias`, [filters], bias)],
      {
        ...F,
        num_args: attr.int(1),
        fused_ops: attr.strings(['BiasAdd', ...(fused ? [fused] : [])]),
        epsilon: attr.number(0),
        strides: attr.ints([1, 1, 1, 1]),
        padding: attr.string('VALID'),
        dilations: attr.ints([1, 1, 1, 1]),
        data_format: attr.string('NHWC'),
        use_cudnn_on_gpu: attr.bool(true),
      },
    );
    const result = { name: pointwiseOp, shape };
    return fused ? result : ctx.activation(base, result, activation);
  }

  // Conv2DTranspose: kernel [kh, kw, filters, in], as Conv2DBackpropInput takes it.
  const kernel = ctx.weight(layer, 'kernel')!;
  const [kh, kw, filters] = kernel.shape as [number, number, number];
  if (!(h > 0 && w > 0)) throw new NotCompilable(`Conv2DTranspose ${JSON.stringify(base)} on an input of unknown height or width`);
  const size = (length: number, k: number, stride: number) => (padding === 'SAME' ? length * stride : (length - 1) * stride + k);
  const out = [size(h, kh, sh), size(w, kw, sw)];
  const sizes = batchAndShape(g, base, x.name, [out[0]!, out[1]!, filters]);
  const deconv = g.op(`${base}/conv_transpose`, 'Conv2DBackpropInput', [sizes, g.constant(`${base}/kernel`, kernel.shape, kernel.values), x.name], {
    ...F,
    ...geometry,
    dilations: attr.ints([1, 1, 1, 1]),
  });
  const bias = c.use_bias === false ? new Float32Array(filters) : ctx.weight(layer, 'bias')!.values;
  return biasAndActivation(ctx, base, deconv, g.constant(`${base}/bias`, [filters], bias), activation, [x.shape[0]!, out[0]!, out[1]!, filters]);
}
