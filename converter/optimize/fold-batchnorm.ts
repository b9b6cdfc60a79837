// Folds inference-mode BatchNormalization layers of a layers model into the Conv2D /
// DepthwiseConv2D / SeparableConv2D / Conv1D / Dense layer just before them, as
// tensorflowjs_converter does for graph models: BN(x) = (x − mean)·γ/√(var + ε) + β is affine
// per output channel, so with s = γ/√(var + ε) the kernel's channel c is scaled by s[c] and
// the bias becomes (b − mean)·s + β. Keras models (MobileNet, ResNet, Xception) put a BN after
// nearly every convolution; TF.js runs it as its own kernel, about a third of MobileNetV2's
// inference time. A pair is folded only where that is exact: the producer has a linear
// activation and channels-last data, feeds the BN and nothing else, is called once, and the
// BN normalizes its channel axis and is not a model output (its name stays part of the API).
// Nested models are left as they are.
import { readTopology, type TopologyLayer } from '../../shared/schemas/model-json.ts';
import type { DecodedModel, DecodedWeight } from '../model.ts';

/** Where each foldable producer keeps the kernel to scale, and which axes count as its channels. */
const PRODUCERS: Record<string, { kernel: string; channelAxes: number[] }> = {
  Conv2D: { kernel: 'kernel', channelAxes: [-1, 3] },
  DepthwiseConv2D: { kernel: 'depthwise_kernel', channelAxes: [-1, 3] },
  SeparableConv2D: { kernel: 'pointwise_kernel', channelAxes: [-1, 3] },
  Conv1D: { kernel: 'kernel', channelAxes: [-1, 2] },
  Dense: { kernel: 'kernel', channelAxes: [-1] },
};

/** One fold about to be made: the kernel before and after, and the per-channel factor applied. */
export interface FoldCandidate {
  kernel: DecodedWeight;
  folded: DecodedWeight;
  scale: Float64Array;
}

export interface FoldResult {
  model: DecodedModel;
  /** Names of the BatchNormalization layers folded away. */
  folded: string[];
}

/** [layer, node, tensor, kwargs] entries of a layer's only call, or null if it is called more than once. */
function onlyCallInputs(layer: TopologyLayer): unknown[][] | null {
  const nodes = layer.inbound_nodes ?? [];
  if (nodes.length !== 1 || !Array.isArray(nodes[0])) return null;
  return nodes[0] as unknown[][];
}

const axisOf = (config: Record<string, unknown>) => (Array.isArray(config.axis) ? (config.axis.length === 1 ? config.axis[0] : undefined) : (config.axis ?? -1));

function isFoldablePair(producer: TopologyLayer, bn: TopologyLayer): boolean {
  const kind = PRODUCERS[producer.class_name];
  if (!kind || bn.class_name !== 'BatchNormalization') return false;
  const activation = producer.config.activation;
  if (activation !== undefined && activation !== null && activation !== 'linear') return false;
  if (producer.config.data_format !== undefined && producer.config.data_format !== 'channels_last') return false;
  return kind.channelAxes.includes(axisOf(bn.config) as number);
}

/** The values of a producer's and a BN's weights, or null when a name is missing. */
function pairWeights(byName: Map<string, DecodedWeight>, producer: TopologyLayer, bn: TopologyLayer) {
  const p = producer.config.name;
  const b = bn.config.name;
  const kernel = byName.get(`${p}/${PRODUCERS[producer.class_name]!.kernel}`);
  const bias = producer.config.use_bias === false ? undefined : byName.get(`${p}/bias`);
  const gamma = bn.config.scale === false ? undefined : byName.get(`${b}/gamma`);
  const beta = bn.config.center === false ? undefined : byName.get(`${b}/beta`);
  const mean = byName.get(`${b}/moving_mean`);
  const variance = byName.get(`${b}/moving_variance`);
  const all = [kernel, mean, variance, ...(producer.config.use_bias === false ? [] : [bias]), ...(bn.config.scale === false ? [] : [gamma]), ...(bn.config.center === false ? [] : [beta])];
  if (all.some((w) => w?.dtype !== 'float32')) return null;
  const channels = mean!.values.length;
  if (kernel!.values.length % channels !== 0 || [variance, gamma, beta, bias].some((w) => w && w.values.length !== channels)) return null;
  return { kernel: kernel!, bias, gamma, beta, mean: mean!, variance: variance!, channels };
}

/** The folded kernel and bias of one pair (kernel channel = flat index mod channels in every producer's layout). */
function foldWeights(w: NonNullable<ReturnType<typeof pairWeights>>, epsilon: number, producerName: string): { kernel: DecodedWeight; bias: DecodedWeight; scale: Float64Array } {
  const scale = new Float64Array(w.channels);
  const bias = new Float32Array(w.channels);
  for (let c = 0; c < w.channels; c++) {
    scale[c] = (w.gamma ? w.gamma.values[c]! : 1) / Math.sqrt(w.variance.values[c]! + epsilon);
    bias[c] = ((w.bias ? w.bias.values[c]! : 0) - w.mean.values[c]!) * scale[c]! + (w.beta ? w.beta.values[c]! : 0);
  }
  const source = w.kernel.values as Float32Array;
  const kernel = new Float32Array(source.length);
  for (let i = 0; i < source.length; i++) kernel[i] = source[i]! * scale[i % w.channels]!;
  return {
    kernel: { name: w.kernel.name, shape: w.kernel.shape, dtype: 'float32', values: kernel },
    bias: { name: `${producerName}/bias`, shape: [w.channels], dtype: 'float32', values: bias },
    scale,
  };
}

/** Functional models: the producer→BN pairs where the BN is the producer's only consumer. */
function functionalPairs(layers: TopologyLayer[], outputs: Set<string>): [TopologyLayer, TopologyLayer][] {
  const byName = new Map(layers.map((l) => [l.config.name, l]));
  const uses = new Map<string, number>();
  for (const layer of layers) {
    for (const node of layer.inbound_nodes ?? []) {
      for (const input of Array.isArray(node) ? (node as unknown[][]) : []) uses.set(String(input[0]), (uses.get(String(input[0])) ?? 0) + 1);
    }
  }
  const pairs: [TopologyLayer, TopologyLayer][] = [];
  for (const bn of layers) {
    const inputs = bn.class_name === 'BatchNormalization' ? onlyCallInputs(bn) : null;
    if (inputs?.length !== 1 || outputs.has(bn.config.name)) continue;
    const [producerName, nodeIndex, tensorIndex] = inputs[0]!;
    const producer = byName.get(String(producerName));
    if (!producer || nodeIndex !== 0 || tensorIndex !== 0 || !onlyCallInputs(producer) || outputs.has(producer.config.name)) continue;
    if (uses.get(producer.config.name) === 1) pairs.push([producer, bn]);
  }
  return pairs;
}

function sequentialPairs(layers: TopologyLayer[], outputs: Set<string>): [TopologyLayer, TopologyLayer][] {
  const pairs: [TopologyLayer, TopologyLayer][] = [];
  for (let i = 1; i < layers.length; i++) {
    if (layers[i]!.class_name === 'BatchNormalization' && !outputs.has(layers[i]!.config.name)) pairs.push([layers[i - 1]!, layers[i]!]);
  }
  return pairs;
}

/** Points every input that named `from` at `to` (functional models). */
function rewire(layers: TopologyLayer[], from: string, to: string): void {
  for (const layer of layers) {
    for (const node of layer.inbound_nodes ?? []) {
      for (const input of Array.isArray(node) ? (node as unknown[][]) : []) if (input[0] === from) input[0] = to;
    }
  }
}

/** accept: whether to make one fold (e.g. unless it costs the kernel's storage dtype precision). */
export function foldBatchNorm(model: DecodedModel, accept: (candidate: FoldCandidate) => boolean = () => true): FoldResult {
  if (model.format !== 'layers-model') return { model, folded: [] };
  const modelJson = structuredClone(model.modelJson);
  const topology = readTopology(modelJson.modelTopology);
  if (!topology || (!topology.sequential && topology.className !== 'Model' && topology.className !== 'Functional')) return { model, folded: [] };
  const config = { ...topology, outputs: new Set(topology.outputs) };
  const byName = new Map(model.weights.map((w) => [w.name, w]));
  const candidates = (config.sequential ? sequentialPairs : functionalPairs)(config.layers, config.outputs);

  const replaced = new Map<string, DecodedWeight>();
  const added = new Map<string, DecodedWeight>();
  const dropped = new Set<string>();
  const folded: string[] = [];
  for (const [producer, bn] of candidates) {
    if (!isFoldablePair(producer, bn)) continue;
    const weights = pairWeights(byName, producer, bn);
    if (!weights) continue;
    const epsilon = typeof bn.config.epsilon === 'number' ? bn.config.epsilon : 1e-3;
    const { kernel, bias, scale } = foldWeights(weights, epsilon, producer.config.name);
    if (!accept({ kernel: weights.kernel, folded: kernel, scale })) continue;
    replaced.set(kernel.name, kernel);
    if (weights.bias) replaced.set(bias.name, bias);
    else added.set(weights.kernel.name, bias);
    for (const w of [weights.gamma, weights.beta, weights.mean, weights.variance]) if (w) dropped.add(w.name);
    producer.config.use_bias = true;
    config.layers.splice(config.layers.indexOf(bn), 1);
    if (!config.sequential) rewire(config.layers, bn.config.name, producer.config.name);
    folded.push(bn.config.name);
  }
  if (folded.length === 0) return { model, folded };

  // The new bias goes right after its kernel (TF.js matches layers-model weights by name).
  const weights = model.weights.flatMap((w) => {
    if (dropped.has(w.name)) return [];
    const kept = replaced.get(w.name) ?? w;
    const bias = added.get(w.name);
    return bias ? [kept, bias] : [kept];
  });
  return { model: { ...model, modelJson, weights }, folded };
}
