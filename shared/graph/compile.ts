// The graph compiler: lowers a Keras layers model (topology + float32 weights) to a TF.js graph
// model of standard TF ops that stock `tf.loadGraphModel` runs, fusing as tensorflowjs_converter
// does: a Conv2D / DepthwiseConv2D / Dense followed by BatchNormalization and an activation
// becomes one `_FusedConv2D` / `FusedDepthwiseConv2dNative` / `_FusedMatMul` (BN folded into the
// kernel and bias in float32 unless told not to, ReLU / ReLU6 / sigmoid / ELU fused), and a ZeroPadding2D before a
// 'valid' convolution becomes the convolution's explicit padding. TF.js's layers runtime runs
// each of those as its own kernel (MobileNetV2: 140 layers → 53 fused ops). A layer the compiler
// does not know raises NotCompilable naming it. Input and output names stay the layers model's.
import { type AttrValue, attr, GraphBuilder, type GraphWeight } from './graphdef.ts';
import { kerasCalls, NotCompilable, type LayerCall } from './keras-calls.ts';
import type { TopologyLayer } from '../schemas/model-json.ts';
import { FUSABLE_ACTIVATIONS, type LowerContext, pair, type Tensor } from './lower/context.ts';
import { lowerAttention } from './lower/attention.ts';
import { lowerConv1d } from './lower/conv1d.ts';
import { lowerConv2d } from './lower/conv2d.ts';
import { lowerLayerNorm } from './lower/normalization.ts';
import { lowerEmbedding, lowerPermute, lowerUpSampling2d } from './lower/ops.ts';
import { lowerBidirectional, lowerRecurrent } from './lower/recurrent.ts';
import { lowerTfOp } from './lower/tf-ops.ts';

export { NotCompilable } from './keras-calls.ts';
export type { GraphWeight } from './graphdef.ts';

export interface CompiledGraph {
  /** model.json fields of the graph model (format, modelTopology, ...) without the weights manifest. */
  modelJson: { format: 'graph-model'; generatedBy?: string; convertedBy: string; modelTopology: { node: unknown[]; library: object; versions: object } };
  /** Weights in manifest order, named like their Const nodes. */
  weights: GraphWeight[];
  /** What was emitted, for edgeflow.json: ops by type, and the layers fused away. */
  summary: { ops: Record<string, number>; fusedLayers: number; layers: number };
  /** The graph's inputs and outputs: the layers model's names, shapes (-1 unknown) and dtypes. */
  signature: { inputs: GraphTensor[]; outputs: GraphTensor[] };
}

export interface GraphTensor {
  name: string;
  dtype: string;
  shape: number[];
}

type Weights = Map<string, { shape: number[]; values: Float32Array }>;

const ACTIVATION_OPS: Record<string, string> = { ...FUSABLE_ACTIVATIONS, tanh: 'Tanh', selu: 'Selu', softplus: 'Softplus', exponential: 'Exp', softsign: 'Softsign' };
const IDENTITY_LAYERS = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'ActivityRegularization']);
const MERGE_OPS: Record<string, string> = { Add: 'AddV2', Subtract: 'Sub', Multiply: 'Mul', Maximum: 'Maximum', Minimum: 'Minimum' };

const name = (layer: TopologyLayer) => layer.config.name;
const config = (layer: TopologyLayer) => layer.config as Record<string, unknown>;
const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** The activation of a layer call: a Keras activation name ('linear' when none), or null when the layer is not an activation. */
function activationOf(layer: TopologyLayer): string | null {
  const c = config(layer);
  if (layer.class_name === 'Activation') return String(c.activation);
  if (layer.class_name === 'ReLU') {
    const maxValue = c.max_value === undefined || c.max_value === null ? null : Number(c.max_value);
    if (Number(c.negative_slope ?? 0) !== 0 || Number(c.threshold ?? 0) !== 0) return null;
    if (maxValue === null) return 'relu';
    return maxValue === 6 ? 'relu6' : null;
  }
  if (layer.class_name === 'ELU' && Number(c.alpha ?? 1) === 1) return 'elu';
  return null;
}

/**
 * values[i] *= scale[i mod channels], the last axis being the channel: a loop per channel row
 * instead of a modulo per element, the same bits (compiling MobileNetV2 at load, in a cold
 * process: 155-330 ms of CPU with the modulo, 77-104 ms this way).
 */
function scaleChannels(values: Float32Array, scale: Float64Array): void {
  const channels = scale.length;
  for (let row = 0; row < values.length; row += channels) {
    for (let c = 0; c < channels; c++) values[row + c] = values[row + c]! * scale[c]!;
  }
}

class Compiler {
  private readonly graph = new GraphBuilder();
  private readonly tensors = new Map<string, Tensor>();
  /** Layers fused into the call before them: their output is that call's. */
  private readonly absorbed = new Map<string, string>();
  private readonly calls: Map<string, LayerCall>;
  private readonly readersOf = new Map<string, LayerCall[]>();
  private fused = 0;

  constructor(
    private readonly model: ReturnType<typeof kerasCalls>,
    private readonly weights: Weights,
    private readonly foldBatchNorm: boolean,
    /** The weights' arrays are the compiler's to fold into (each layer is called once), instead of copies. */
    private readonly inPlace: boolean,
  ) {
    this.calls = new Map(model.calls.map((call) => [name(call.layer), call]));
    for (const call of model.calls) for (const input of call.inputs) this.readersOf.set(input, [...(this.readersOf.get(input) ?? []), call]);
  }

  private readonly inputSignature: GraphTensor[] = [];

  /** What the lowering modules under lower/ see of the compiler. */
  private readonly context: LowerContext = {
    graph: this.graph,
    weight: (layer, key, required) => this.weight(layer, key, required),
    activation: (base, x, activation) => this.applyActivation(base, x, activation),
  };

  compile(): CompiledGraph {
    // Input and output names are the model's API: reserved before any op can take them.
    this.graph.reserve(this.model.outputs);
    for (const input of this.model.inputs) {
      if (input.dtype !== 'float32' && input.dtype !== 'int32') throw new NotCompilable(`input ${input.name} has dtype ${input.dtype}`);
      const shape = input.shape.map((d) => (d === null ? -1 : d));
      this.tensors.set(input.name, { name: this.graph.placeholder(input.name, shape, input.dtype), shape, ...(input.dtype === 'int32' ? { dtype: 'int32' as const } : {}) });
      this.inputSignature.push({ name: input.name, dtype: input.dtype, shape });
    }
    for (const call of this.model.calls) {
      if (this.absorbed.has(name(call.layer))) continue;
      this.tensors.set(name(call.layer), this.lower(call));
    }
    const outputs = this.model.outputs.map((output) => {
      const tensor = this.materialize(this.tensor(output));
      this.graph.op(output, 'Identity', [tensor.name], { T: attr.float() }, { exact: true });
      return { name: output, dtype: 'float32', shape: tensor.shape };
    });
    const ops: Record<string, number> = {};
    for (const node of this.graph.nodes) if (node.op !== 'Const') ops[node.op] = (ops[node.op] ?? 0) + 1;
    return {
      modelJson: { format: 'graph-model', convertedBy: 'edgeflow graph compiler', modelTopology: { node: this.graph.nodes, library: {}, versions: { producer: 1395 } } },
      weights: this.graph.weights,
      summary: { ops, fusedLayers: this.fused, layers: this.model.calls.length },
      signature: { inputs: this.inputSignature, outputs },
    };
  }

  private tensor(layerName: string): Tensor {
    const found = this.tensors.get(this.absorbed.get(layerName) ?? layerName) ?? this.tensors.get(layerName);
    if (!found) throw new NotCompilable(`layer ${JSON.stringify(layerName)} is read before it is computed`);
    return found;
  }

  /** A deferred padding that ends up read by something other than a convolution becomes a Pad op. */
  private materialize(tensor: Tensor): Tensor {
    if (!tensor.pad) return tensor;
    const [t, b, l, r] = tensor.pad.pads;
    const paddings = this.graph.constant(`${tensor.name}/paddings`, [4, 2], Int32Array.from([0, 0, t, b, l, r, 0, 0]));
    return { name: this.graph.op(tensor.name, 'Pad', [tensor.pad.input.name, paddings], { T: attr.float(), Tpaddings: attr.dtype('int32') }), shape: tensor.shape };
  }

  private input(call: LayerCall, index = 0): Tensor {
    const inputName = call.inputs[index];
    if (inputName === undefined) throw new NotCompilable(`layer ${JSON.stringify(name(call.layer))} has no input ${index}`);
    return this.tensor(inputName);
  }

  private weight(layer: TopologyLayer, key: string, required = true): { shape: number[]; values: Float32Array } | undefined {
    const found = this.weights.get(`${name(layer)}/${key}`);
    if (!found && required) throw new NotCompilable(`layer ${JSON.stringify(name(layer))} has no weight ${key}`);
    return found;
  }

  /** The only call reading `layerName`'s output, when there is exactly one and the output is not a model output. */
  private onlyReader(layerName: string): LayerCall | undefined {
    const readers = this.readersOf.get(layerName) ?? [];
    return readers.length === 1 && this.model.readers.get(layerName) === 1 ? readers[0] : undefined;
  }

  private lower(call: LayerCall): Tensor {
    const layer = call.layer;
    const c = config(layer);
    const kwargs = call.kwargs ?? {};
    if (layer.class_name === 'MultiHeadAttention') {
      const query = this.materialize(this.input(call));
      const value = this.materialize(kwargs.value !== undefined ? this.tensor(kwargs.value) : this.input(call, 1));
      const key = kwargs.key !== undefined ? this.materialize(this.tensor(kwargs.key)) : call.inputs[2] !== undefined ? this.materialize(this.input(call, 2)) : value;
      const extra = Object.keys(kwargs).filter((k) => k !== 'value' && k !== 'key');
      return lowerAttention(this.context, layer, query, value, key, extra);
    }
    if (layer.class_name === 'TFOpLambda' || layer.class_name === 'SlicingOpLambda') {
      const inputs = call.inputs.map((_, i) => this.materialize(this.input(call, i)));
      const tensors = Object.fromEntries(Object.entries(kwargs).map(([key, source]) => [key, this.materialize(this.tensor(source))]));
      return lowerTfOp(this.context, layer, inputs, tensors, call.args ?? {});
    }
    if (Object.keys(kwargs).length > 0) throw new NotCompilable(`layer ${JSON.stringify(name(layer))} takes tensor arguments ${Object.keys(kwargs).join(', ')} (not compiled)`);
    const activation = activationOf(layer);
    if (activation !== null) return this.applyActivation(name(layer), this.materialize(this.input(call)), activation);
    if (IDENTITY_LAYERS.has(layer.class_name)) return this.input(call);
    if (MERGE_OPS[layer.class_name]) return this.merge(call, MERGE_OPS[layer.class_name]!);
    switch (layer.class_name) {
      case 'Conv2D':
      case 'DepthwiseConv2D':
      case 'Dense':
        return this.fusedProducer(call);
      case 'ZeroPadding2D':
        return this.zeroPadding(call);
      case 'BatchNormalization':
        return this.batchNorm(layer, this.materialize(this.input(call)));
      case 'MaxPooling2D':
      case 'AveragePooling2D':
        return this.pool(call);
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D':
      case 'GlobalAveragePooling1D':
      case 'GlobalMaxPooling1D':
        return this.globalPool(call);
      case 'Flatten':
      case 'Reshape':
        return this.reshape(call);
      case 'Concatenate':
        return this.concat(call);
      case 'Softmax':
        return this.softmax(name(layer), this.materialize(this.input(call)), Number(c.axis ?? -1));
      case 'LeakyReLU': {
        const x = this.materialize(this.input(call));
        const alpha = Number(c.alpha ?? c.negative_slope ?? 0.3);
        return { name: this.graph.op(name(layer), 'LeakyRelu', [x.name], { T: attr.float(), alpha: attr.number(alpha) }), shape: x.shape };
      }
      case 'Rescaling':
        return this.rescaling(call);
      case 'GRU':
      case 'LSTM':
      case 'SimpleRNN':
        return lowerRecurrent(this.context, layer, this.materialize(this.input(call)));
      case 'Bidirectional':
        return lowerBidirectional(this.context, layer, this.materialize(this.input(call)));
      case 'Embedding':
        return lowerEmbedding(this.context, layer, this.input(call));
      case 'Permute':
        return lowerPermute(this.context, layer, this.materialize(this.input(call)));
      case 'UpSampling2D':
        return lowerUpSampling2d(this.context, layer, this.materialize(this.input(call)));
      case 'LayerNormalization':
        return lowerLayerNorm(this.context, layer, this.materialize(this.input(call)));
      case 'Conv1D':
      case 'Conv1DTranspose':
        return lowerConv1d(this.context, layer, this.materialize(this.input(call)));
      case 'SeparableConv2D':
      case 'Conv2DTranspose':
        return lowerConv2d(this.context, layer, this.materialize(this.input(call)));
      default:
        throw new NotCompilable(`layer ${JSON.stringify(name(layer))} of class ${layer.class_name} has no graph lowering yet`);
    }
  }

  private applyActivation(base: string, x: Tensor, activation: string): Tensor {
    if (activation === 'linear') return x;
    if (activation === 'softmax') return this.softmax(base, x, -1);
    if (activation === 'swish' || activation === 'silu') {
      const sigmoid = this.graph.op(`${base}/Sigmoid`, 'Sigmoid', [x.name], { T: attr.float() });
      return { name: this.graph.op(base, 'Mul', [x.name, sigmoid], { T: attr.float() }), shape: x.shape };
    }
    const op = ACTIVATION_OPS[activation];
    if (!op) throw new NotCompilable(`activation ${JSON.stringify(activation)} of ${JSON.stringify(base)} has no graph lowering yet`);
    return { name: this.graph.op(base, op, [x.name], { T: attr.float() }), shape: x.shape };
  }

  private softmax(base: string, x: Tensor, axis: number): Tensor {
    if (axis !== -1 && axis !== x.shape.length - 1) throw new NotCompilable(`softmax of ${JSON.stringify(base)} over axis ${axis} (only the last axis is compiled)`);
    return { name: this.graph.op(base, 'Softmax', [x.name], { T: attr.float() }), shape: x.shape };
  }

  /** BN(x) = x·s + t per channel, with s = γ/√(var + ε) and t = β − mean·s. */
  private batchNormFactors(bn: TopologyLayer, channels: number): { scale: Float64Array; shift: Float64Array } {
    const c = config(bn);
    const axis = Array.isArray(c.axis) ? (c.axis.length === 1 ? c.axis[0] : undefined) : (c.axis ?? -1);
    if (axis !== -1 && axis !== 3 && axis !== 1 && axis !== 2) throw new NotCompilable(`BatchNormalization ${JSON.stringify(name(bn))} normalizes axis ${JSON.stringify(axis)}`);
    const mean = this.weight(bn, 'moving_mean')!.values;
    const variance = this.weight(bn, 'moving_variance')!.values;
    const gamma = c.scale === false ? undefined : this.weight(bn, 'gamma')!.values;
    const beta = c.center === false ? undefined : this.weight(bn, 'beta')!.values;
    if (mean.length !== channels) throw new NotCompilable(`BatchNormalization ${JSON.stringify(name(bn))} has ${mean.length} channels for an input of ${channels}`);
    const epsilon = Number(c.epsilon ?? 1e-3);
    const scale = new Float64Array(channels);
    const shift = new Float64Array(channels);
    for (let i = 0; i < channels; i++) {
      scale[i] = (gamma ? gamma[i]! : 1) / Math.sqrt(variance[i]! + epsilon);
      shift[i] = (beta ? beta[i]! : 0) - mean[i]! * scale[i]!;
    }
    return { scale, shift };
  }

  private batchNorm(bn: TopologyLayer, x: Tensor): Tensor {
    const channels = x.shape[x.shape.length - 1]!;
    const axis = config(bn).axis;
    if (axis !== undefined && axis !== -1 && axis !== x.shape.length - 1 && !(Array.isArray(axis) && (axis[0] === -1 || axis[0] === x.shape.length - 1)))
      throw new NotCompilable(`BatchNormalization ${JSON.stringify(name(bn))} over a non-last axis`);
    if (!this.foldBatchNorm) return this.unfoldedBatchNorm(bn, x);
    const { scale, shift } = this.batchNormFactors(bn, channels);
    const s = this.graph.constant(`${name(bn)}/scale`, [channels], Float32Array.from(scale));
    const t = this.graph.constant(`${name(bn)}/offset`, [channels], Float32Array.from(shift));
    const scaled = this.graph.op(`${name(bn)}/mul`, 'Mul', [x.name, s], { T: attr.float() });
    return { name: this.graph.op(name(bn), 'AddV2', [scaled, t], { T: attr.float() }), shape: x.shape };
  }

  /**
   * BN as one FusedBatchNormV3 of its own four vectors (stock TF.js runs it as tf.batchNorm, as
   * its layers runtime does): quantized, they are the values a layers model would store.
   */
  private unfoldedBatchNorm(bn: TopologyLayer, x: Tensor): Tensor {
    const c = config(bn);
    const channels = x.shape[x.shape.length - 1]!;
    this.batchNormFactors(bn, channels); // checks the axis and the channel count
    const vector = (key: string, absent: number) =>
      this.graph.constant(`${name(bn)}/${key}`, [channels], (c[key === 'gamma' ? 'scale' : 'center'] === false ? undefined : this.weight(bn, key)!.values) ?? new Float32Array(channels).fill(absent));
    const inputs = [
      x.name,
      vector('gamma', 1),
      vector('beta', 0),
      this.graph.constant(`${name(bn)}/moving_mean`, [channels], this.weight(bn, 'moving_mean')!.values),
      this.graph.constant(`${name(bn)}/moving_variance`, [channels], this.weight(bn, 'moving_variance')!.values),
    ];
    return {
      name: this.graph.op(name(bn), 'FusedBatchNormV3', inputs, { T: attr.float(), U: attr.float(), epsilon: attr.number(Number(c.epsilon ?? 1e-3)), is_training: attr.bool(false) }),
      shape: x.shape,
    };
  }

  /** Conv2D / DepthwiseConv2D / Dense, with the BatchNormalization and activation after it fused when they are its only readers. */
  private fusedProducer(call: LayerCall): Tensor {
    const layer = call.layer;
    const c = config(layer);
    const kind = layer.class_name;
    const kernelKey = kind === 'DepthwiseConv2D' ? 'depthwise_kernel' : 'kernel';
    const kernel = this.weight(layer, kernelKey)!;
    const channels = kind === 'DepthwiseConv2D' ? kernel.shape[2]! * kernel.shape[3]! : kernel.shape[kernel.shape.length - 1]!;
    const bias = c.use_bias === false ? undefined : this.weight(layer, 'bias', false);
    let activation = String(c.activation ?? 'linear');
    let outputName = name(layer);
    const kernelValues = this.inPlace ? kernel.values : kernel.values.slice();
    const biasValues = bias ? (this.inPlace ? bias.values : bias.values.slice()) : new Float32Array(channels);

    // Fold a BatchNormalization that only this layer feeds (the layer must be linear).
    let next = this.onlyReader(name(layer));
    if (this.foldBatchNorm && next && next.layer.class_name === 'BatchNormalization' && activation === 'linear' && (kind !== 'Dense' || (config(next.layer).axis ?? -1) === -1)) {
      const { scale, shift } = this.batchNormFactors(next.layer, channels);
      scaleChannels(kernelValues, scale);
      for (let i = 0; i < channels; i++) biasValues[i] = biasValues[i]! * scale[i]! + shift[i]!;
      this.absorb(next.layer, layer);
      outputName = name(next.layer);
      next = this.onlyReader(name(next.layer));
    }
    // Fuse an activation layer that only this layer (and its BN) feeds.
    const nextActivation = next ? activationOf(next.layer) : null;
    if (next && activation === 'linear' && nextActivation !== null && FUSABLE_ACTIVATIONS[nextActivation]) {
      activation = nextActivation;
      this.absorb(next.layer, layer);
      outputName = name(next.layer);
    }
    const fusedActivation = FUSABLE_ACTIVATIONS[activation];
    const fusedOps = ['BiasAdd', ...(fusedActivation ? [fusedActivation] : [])];
    const input = this.input(call);
    const kernelConst = this.graph.constant(`${name(layer)}/${kernelKey}`, kernel.shape, kernelValues);
    const biasConst = this.graph.constant(`${name(layer)}/bias`, [channels], biasValues);
    const common = { T: attr.float(), num_args: attr.int(1), fused_ops: attr.strings(fusedOps), epsilon: attr.number(0) };
    let result: Tensor;
    if (kind === 'Dense') {
      const x = this.materialize(input);
      if (x.shape.length !== 2) throw new NotCompilable(`Dense ${JSON.stringify(name(layer))} on a rank-${x.shape.length} input (only rank 2 is compiled)`);
      const op = this.graph.op(fusedActivation ? outputName : `${outputName}/BiasAdd`, '_FusedMatMul', [x.name, kernelConst, biasConst], {
        ...common,
        transpose_a: attr.bool(false),
        transpose_b: attr.bool(false),
      });
      result = { name: op, shape: [x.shape[0]!, channels] };
    } else {
      result = this.convolution(layer, input, kernel.shape, channels, kernelConst, biasConst, fusedActivation ? outputName : `${outputName}/BiasAdd`, common);
    }
    return fusedActivation || activation === 'linear' ? result : this.applyActivation(outputName, result, activation);
  }

  private convolution(layer: TopologyLayer, input: Tensor, kernelShape: number[], channels: number, kernel: string, bias: string, opName: string, common: Record<string, AttrValue>): Tensor {
    const c = config(layer);
    if (c.data_format !== undefined && c.data_format !== 'channels_last') throw new NotCompilable(`${layer.class_name} ${JSON.stringify(name(layer))} is channels_first`);
    const [sh, sw] = pair(c.strides, 1);
    const [dh, dw] = pair(c.dilation_rate, 1);
    const padding = String(c.padding ?? 'valid').toUpperCase();
    const [kh, kw] = [kernelShape[0]!, kernelShape[1]!];
    let x = input;
    let pads: [number, number, number, number] = [0, 0, 0, 0];
    if (input.pad && padding === 'VALID') {
      x = input.pad.input;
      pads = input.pad.pads;
    } else x = this.materialize(input);
    const explicit = pads.some((p) => p !== 0);
    const padAttrs: Record<string, AttrValue> = explicit
      ? { padding: attr.string('EXPLICIT'), explicit_paddings: attr.ints([0, 0, pads[0], pads[1], pads[2], pads[3], 0, 0]) }
      : { padding: attr.string(padding) };
    const attrs = { ...common, ...padAttrs, strides: attr.ints([1, sh, sw, 1]), dilations: attr.ints([1, dh, dw, 1]), data_format: attr.string('NHWC') };
    const op = layer.class_name === 'DepthwiseConv2D' ? 'FusedDepthwiseConv2dNative' : '_FusedConv2D';
    const out = (size: number, k: number, stride: number, dilation: number, before: number, after: number) => {
      if (size < 0) return -1;
      if (padding === 'SAME') return Math.ceil(size / stride);
      return Math.floor((size + before + after - (k - 1) * dilation - 1) / stride) + 1;
    };
    const shape = [x.shape[0]!, out(x.shape[1]!, kh, sh, dh, pads[0], pads[1]), out(x.shape[2]!, kw, sw, dw, pads[2], pads[3]), channels];
    return { name: this.graph.op(opName, op, [x.name, kernel, bias], { ...attrs, ...(op === '_FusedConv2D' ? { use_cudnn_on_gpu: attr.bool(true) } : {}) }), shape };
  }

  private absorb(absorbed: TopologyLayer, into: TopologyLayer): void {
    this.absorbed.set(name(absorbed), this.absorbed.get(name(into)) ?? name(into));
    this.fused++;
  }

  private zeroPadding(call: LayerCall): Tensor {
    const c = config(call.layer);
    const x = this.materialize(this.input(call));
    const raw = c.padding;
    let pads: [number, number, number, number];
    if (Array.isArray(raw) && Array.isArray(raw[0])) pads = [Number(raw[0][0]), Number(raw[0][1]), Number((raw[1] as number[])[0]), Number((raw[1] as number[])[1])];
    else {
      const [h, w] = pair(raw, 1);
      pads = [h, h, w, w];
    }
    if (c.data_format !== undefined && c.data_format !== 'channels_last') throw new NotCompilable(`ZeroPadding2D ${JSON.stringify(name(call.layer))} is channels_first`);
    const shape = [x.shape[0]!, x.shape[1]! < 0 ? -1 : x.shape[1]! + pads[0] + pads[1], x.shape[2]! < 0 ? -1 : x.shape[2]! + pads[2] + pads[3], x.shape[3]!];
    // Deferred: a 'valid' convolution reading it takes the padding as its own; anything else gets a Pad op.
    return { name: name(call.layer), shape, pad: { input: x, pads } };
  }

  private merge(call: LayerCall, op: string): Tensor {
    const inputs = call.inputs.map((_, i) => this.materialize(this.input(call, i)));
    let result = inputs[0]!;
    for (let i = 1; i < inputs.length; i++) {
      const last = i === inputs.length - 1;
      result = { name: this.graph.op(last ? name(call.layer) : `${name(call.layer)}/${i}`, op, [result.name, inputs[i]!.name], { T: attr.float() }), shape: result.shape };
    }
    return result;
  }

  private pool(call: LayerCall): Tensor {
    const c = config(call.layer);
    const x = this.materialize(this.input(call));
    if (c.data_format !== undefined && c.data_format !== 'channels_last') throw new NotCompilable(`${call.layer.class_name} ${JSON.stringify(name(call.layer))} is channels_first`);
    const [ph, pw] = pair(c.pool_size, 2);
    const [sh, sw] = c.strides === null || c.strides === undefined ? [ph, pw] : pair(c.strides, 1);
    const padding = String(c.padding ?? 'valid').toUpperCase();
    const out = (size: number, k: number, s: number) => (size < 0 ? -1 : padding === 'SAME' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1);
    const op = call.layer.class_name === 'MaxPooling2D' ? 'MaxPool' : 'AvgPool';
    const node = this.graph.op(name(call.layer), op, [x.name], {
      T: attr.float(),
      ksize: attr.ints([1, ph, pw, 1]),
      strides: attr.ints([1, sh, sw, 1]),
      padding: attr.string(padding),
      data_format: attr.string('NHWC'),
    });
    return { name: node, shape: [x.shape[0]!, out(x.shape[1]!, ph, sh), out(x.shape[2]!, pw, sw), x.shape[3]!] };
  }

  private globalPool(call: LayerCall): Tensor {
    const c = config(call.layer);
    const x = this.materialize(this.input(call));
    const axes = x.shape.length === 4 ? [1, 2] : [1];
    const keep = c.keepdims === true;
    const axesConst = this.graph.ints(`${name(call.layer)}/axes`, axes);
    const op = call.layer.class_name.startsWith('GlobalMax') ? 'Max' : 'Mean';
    const node = this.graph.op(name(call.layer), op, [x.name, axesConst], { T: attr.float(), Tidx: attr.dtype('int32'), keep_dims: attr.bool(keep) });
    const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    return { name: node, shape };
  }

  private reshape(call: LayerCall): Tensor {
    const x = this.materialize(this.input(call));
    const rest = x.shape.slice(1);
    let target: number[];
    if (call.layer.class_name === 'Flatten') {
      if (rest.some((d) => d < 0)) throw new NotCompilable(`Flatten ${JSON.stringify(name(call.layer))} of an input with unknown dimensions`);
      target = [product(rest)];
    } else {
      target = (config(call.layer).target_shape as number[]).map(Number);
      const unknown = target.filter((d) => d < 0).length;
      if (unknown > 1 || rest.some((d) => d < 0)) throw new NotCompilable(`Reshape ${JSON.stringify(name(call.layer))} with unknown dimensions`);
      if (unknown === 1) target = target.map((d) => (d < 0 ? product(rest) / product(target.filter((t) => t >= 0)) : d));
    }
    const shapeConst = this.graph.ints(`${name(call.layer)}/shape`, [-1, ...target]);
    return { name: this.graph.op(name(call.layer), 'Reshape', [x.name, shapeConst], { T: attr.float(), Tshape: attr.dtype('int32') }), shape: [x.shape[0]!, ...target] };
  }

  private concat(call: LayerCall): Tensor {
    const inputs = call.inputs.map((_, i) => this.materialize(this.input(call, i)));
    const rank = inputs[0]!.shape.length;
    const raw = Number(config(call.layer).axis ?? -1);
    const axis = raw < 0 ? rank + raw : raw;
    const axisConst = this.graph.constant(`${name(call.layer)}/axis`, [], Int32Array.of(axis));
    const shape = inputs[0]!.shape.map((d, i) => (i === axis ? (inputs.some((t) => t.shape[i]! < 0) ? -1 : inputs.reduce((sum, t) => sum + t.shape[i]!, 0)) : d));
    return {
      name: this.graph.op(name(call.layer), 'ConcatV2', [...inputs.map((t) => t.name), axisConst], { T: attr.float(), N: attr.int(inputs.length), Tidx: attr.dtype('int32') }),
      shape,
    };
  }

  private rescaling(call: LayerCall): Tensor {
    const c = config(call.layer);
    const x = this.materialize(this.input(call));
    const scale = this.graph.constant(`${name(call.layer)}/scale`, [], Float32Array.of(Number(c.scale ?? 1)));
    const offset = this.graph.constant(`${name(call.layer)}/offset`, [], Float32Array.of(Number(c.offset ?? 0)));
    const scaled = this.graph.op(`${name(call.layer)}/mul`, 'Mul', [x.name, scale], { T: attr.float() });
    return { name: this.graph.op(name(call.layer), 'AddV2', [scaled, offset], { T: attr.float() }), shape: x.shape };
  }
}

/**
 * Compiles a layers model to a graph model. `weights` holds every weight of the layers model by
 * its manifest name (`<layer>/kernel`, ...) as float32 (dequantized). Throws NotCompilable naming
 * the first layer (or construct) it cannot lower. `options.foldBatchNorm` false keeps each
 * BatchNormalization its own FusedBatchNormV3 op of its four vectors (default true).
 * `options.inPlace` lets it fold into the given arrays rather than copies (a loader's freshly
 * decoded weights: one 4-byte copy of every weight fewer to allocate at load).
 */
export function compileLayersModel(modelTopology: unknown, weights: Weights, generatedBy?: string, options: { foldBatchNorm?: boolean; inPlace?: boolean } = {}): CompiledGraph {
  const compiled = new Compiler(kerasCalls(modelTopology), weights, options.foldBatchNorm ?? true, options.inPlace ?? false).compile();
  if (generatedBy) compiled.modelJson.generatedBy = generatedBy;
  return compiled;
}
