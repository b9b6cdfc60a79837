// Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight
// Equalization and Bias Correction"): for two linear layers in a chain A → (ReLU, pooling,
// upsampling, padding, dropout) → B, output channel c of A (kernel and bias) is divided by s_c and
// input channel c of B multiplied by s_c, with s_c = √(r_A(c) / r_B(c)) (r: a channel's largest
// |weight|), so that both kernels' channels span similar ranges and one per-tensor uint8 grid, all
// that stock TF.js dequantizes, fits every channel. Exact in real arithmetic: a positive
// per-channel scale commutes with every op allowed between A and B. The model keeps its topology;
// only weight values change. Layers models: Conv2D / Dense layers of the top-level topology; graph
// models: Conv2D / MatMul nodes, fused or not (as the graph compiler and tensorflowjs_converter emit them).
import { kerasCalls, NotCompilable, type LayerCall } from '../../shared/graph/keras-calls.ts';
import { graphNodes, readAttr, type GraphNode } from '../../shared/graph/graphdef.ts';
import type { DecodedModel, DecodedWeight } from '../model.ts';

/** Layers that commute with a positive per-channel scale of their (only) input. */
const PASS_THROUGH = new Set([
  'MaxPooling2D',
  'GlobalMaxPooling2D',
  'GlobalAveragePooling2D',
  'AveragePooling2D',
  'UpSampling2D',
  'ZeroPadding2D',
  'Dropout',
  'SpatialDropout2D',
  'GaussianDropout',
  'GaussianNoise',
  'AlphaDropout',
]);

/** Activations f with f(s·x) = s·f(x) for s > 0. */
const HOMOGENEOUS = new Set(['linear', 'relu']);

export interface Equalization {
  model: DecodedModel;
  /** The equalized pairs as `A → B` (layer names). */
  pairs: string[];
}

const config = (call: LayerCall) => call.layer.config as Record<string, unknown>;

function homogeneous(call: LayerCall): boolean {
  const c = config(call);
  const kind = call.layer.class_name;
  if (kind === 'Activation') return HOMOGENEOUS.has(String(c.activation));
  if (kind === 'ReLU') return (c.max_value === undefined || c.max_value === null) && Number(c.threshold ?? 0) === 0;
  return kind === 'LeakyReLU' || PASS_THROUGH.has(kind);
}

/** A Conv2D (one group, channels_last) or Dense whose output is scaled exactly by its kernel's last axis. */
function linear(call: LayerCall): boolean {
  const c = config(call);
  if (call.layer.class_name === 'Dense') return true;
  if (call.layer.class_name !== 'Conv2D') return false;
  return (c.data_format === undefined || c.data_format === null || c.data_format === 'channels_last') && Number(c.groups ?? 1) === 1;
}

/** Largest |w| per channel of `axis` in a row-major kernel of `shape`. */
function channelRanges(values: Float32Array, shape: number[], axis: number): Float64Array {
  const channels = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const ranges = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const v = Math.abs(values[i]!);
    if (v > ranges[c]!) ranges[c] = v;
  }
  return ranges;
}

/** Multiplies channel c of `axis` by factors[c], in place. */
function scaleChannels(values: Float32Array, shape: number[], axis: number, factors: Float64Array): void {
  const channels = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < values.length; i++) values[i] = values[i]! * factors[Math.floor(i / inner) % channels]!;
}

/** A pair found in a model: A's kernel (and bias) by weight name, B's kernel, and how to name the pair. */
interface Pair {
  kernelA: string;
  biasA?: string;
  kernelB: string;
  label: string;
}

/** Conv2D / Dense pairs of a layers model's top-level topology. */
function layersPairs(model: DecodedModel): Pair[] {
  let calls: ReturnType<typeof kerasCalls>;
  try {
    calls = kerasCalls(model.modelJson.modelTopology);
  } catch (error) {
    if (error instanceof NotCompilable) return [];
    throw error;
  }
  const readersOf = new Map<string, LayerCall[]>();
  for (const call of calls.calls) for (const input of call.inputs) readersOf.set(input, [...(readersOf.get(input) ?? []), call]);
  // The only call reading a layer's output, when nothing else (another call, a model output) does.
  const onlyReader = (name: string) => (calls.readers.get(name) === 1 && readersOf.get(name)?.length === 1 ? readersOf.get(name)![0] : undefined);
  const pairs: Pair[] = [];
  for (const a of calls.calls) {
    if (!linear(a) || !HOMOGENEOUS.has(String(config(a).activation ?? 'linear'))) continue;
    let next = onlyReader(a.layer.config.name);
    while (next && !linear(next) && homogeneous(next) && next.inputs.length === 1) next = onlyReader(next.layer.config.name);
    if (!next || !linear(next) || next.inputs.length !== 1) continue;
    const name = a.layer.config.name;
    pairs.push({
      kernelA: `${name}/kernel`,
      ...(config(a).use_bias === false ? {} : { biasA: `${name}/bias` }),
      kernelB: `${next.layer.config.name}/kernel`,
      label: `${name} → ${next.layer.config.name}`,
    });
  }
  return pairs;
}

/** Graph ops that commute with a positive per-channel scale of their first input. */
const GRAPH_PASS_THROUGH = new Set(['Relu', 'MaxPool', 'AvgPool', 'ResizeNearestNeighbor', 'ResizeBilinear']);

/** A graph node computing x·kernel (+ bias): [kernel, bias?] input names when its output scales exactly with the kernel's last axis, else undefined. */
function graphLinear(node: GraphNode, asA: boolean): [string, string?] | undefined {
  const inputs = node.input ?? [];
  if (readAttr.bool(node.attr?.transpose_a) || readAttr.bool(node.attr?.transpose_b)) return undefined;
  if (node.op === 'Conv2D' || node.op === 'MatMul') return [inputs[1]!];
  if (node.op !== '_FusedConv2D' && node.op !== '_FusedMatMul') return undefined;
  const ops = readAttr.strings(node.attr?.fused_ops);
  if (ops[0] !== 'BiasAdd' || ops.length > 2 || inputs.length !== 3) return undefined;
  // As A, only a homogeneous fused activation keeps the scale; as B, the activation comes after it.
  if (asA && ops.length === 2 && ops[1] !== 'Relu') return undefined;
  return [inputs[1]!, inputs[2]!];
}

/** Convolution / MatMul pairs of a graph model's nodes (as the graph compiler and tensorflowjs_converter emit them). */
function graphPairs(model: DecodedModel): Pair[] {
  const nodes = graphNodes(model.modelJson.modelTopology);
  const source = (input: string) => input.replace(/^\^/, '').replace(/:0$/, '');
  const readers = new Map<string, GraphNode[]>();
  for (const node of nodes) for (const input of node.input ?? []) readers.set(source(input), [...(readers.get(source(input)) ?? []), node]);
  const signature = (model.modelJson as { signature?: { outputs?: Record<string, { name?: string }> } }).signature;
  const outputs = new Set(Object.values(signature?.outputs ?? {}).map((o) => source(o.name ?? '')));
  const onlyReader = (name: string) => (readers.get(name)?.length === 1 && !outputs.has(name) ? readers.get(name)![0] : undefined);
  // A weight read by another node too would change for that node as well.
  const own = (name: string | undefined) => name !== undefined && readers.get(name)?.length === 1;
  const pairs: Pair[] = [];
  for (const a of nodes) {
    const weightsA = graphLinear(a, true);
    if (!weightsA || !own(weightsA[0]) || (weightsA[1] !== undefined && !own(weightsA[1]))) continue;
    // Through pass-through ops to the next linear op, each reading the one before as its first input.
    let [previous, next] = [a.name, onlyReader(a.name)];
    while (next && GRAPH_PASS_THROUGH.has(next.op) && source(next.input?.[0] ?? '') === previous) [previous, next] = [next.name, onlyReader(next.name)];
    const weightsB = next && source(next.input?.[0] ?? '') === previous ? graphLinear(next, false) : undefined;
    if (!next || !weightsB || !own(weightsB[0])) continue;
    pairs.push({ kernelA: weightsA[0], ...(weightsA[1] ? { biasA: weightsA[1] } : {}), kernelB: weightsB[0], label: `${a.name} → ${next.name}` });
  }
  return pairs;
}

/** The model with every equalizable pair equalized (one pass in topological order); pairs empty when none is. */
export function equalizeChannels(model: DecodedModel): Equalization {
  const candidates = model.format === 'layers-model' ? layersPairs(model) : graphPairs(model);
  const copies = new Map<string, DecodedWeight>();
  const weight = (name: string | undefined): DecodedWeight | undefined => {
    const found = name === undefined ? undefined : (copies.get(name) ?? model.weights.find((w) => w.name === name));
    // A weight on a quantized source's grid would leave it: not equalized.
    if (found?.dtype !== 'float32' || found.sourceGrid) return undefined;
    if (!copies.has(found.name)) copies.set(found.name, { ...found, values: Float32Array.from(found.values as Float32Array) });
    return copies.get(found.name);
  };
  const pairs: string[] = [];
  for (const pair of candidates) {
    const [kernelA, kernelB, bias] = [weight(pair.kernelA), weight(pair.kernelB), weight(pair.biasA)];
    if (!kernelA || !kernelB || (pair.biasA !== undefined && !bias)) continue;
    const channels = kernelA.shape[kernelA.shape.length - 1]!;
    const inputAxis = kernelB.shape.length - 2;
    if (kernelB.shape[inputAxis] !== channels || (bias && bias.values.length !== channels)) continue;
    const rangesA = channelRanges(kernelA.values as Float32Array, kernelA.shape, kernelA.shape.length - 1);
    const rangesB = channelRanges(kernelB.values as Float32Array, kernelB.shape, inputAxis);
    const s = rangesA.map((r, c) => (r > 0 && rangesB[c]! > 0 ? Math.sqrt(r / rangesB[c]!) : 1));
    const inverse = s.map((v) => 1 / v);
    scaleChannels(kernelA.values as Float32Array, kernelA.shape, kernelA.shape.length - 1, inverse);
    if (bias) scaleChannels(bias.values as Float32Array, [channels], 0, inverse);
    scaleChannels(kernelB.values as Float32Array, kernelB.shape, inputAxis, s);
    pairs.push(pair.label);
  }
  if (pairs.length === 0) return { model, pairs };
  return { model: { ...model, weights: model.weights.map((w) => copies.get(w.name) ?? w) }, pairs };
}
