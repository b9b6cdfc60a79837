// The linear layers of a model (Dense / MatMul, Conv2D, DepthwiseConv2D, and SeparableConv2D's
// two kernels) and the statistics of their inputs on calibration data, for error-compensating
// rounding: per kernel, H = E[x xᵀ] and E[x] over the vectors that kernel multiplies (a Dense
// row, or a convolution's patch in the kernel's (row, column, channel) order, zero where it is
// padding). Depthwise kernels have one H per channel. Layers models are read from their topology
// (top level only), graph models from their nodes (NHWC, no transposes); the inputs are captured
// by running the float32 model with its intermediate tensors as outputs. Patches are subsampled
// (a fixed budget per kernel).
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import * as tfl from '@tensorflow/tfjs-layers';
import { memoryHandler } from '../../shared/model-loader.ts';
import { readTopology } from '../../shared/schemas/model-json.ts';
import { graphNodes, readAttr } from '../../shared/graph/graphdef.ts';
import type { Calibration } from '../calibration.ts';
import type { DecodedModel, DecodedWeight } from '../model.ts';
import type { ModelFiles } from '../shard.ts';
import { NO_PAUSE, type Pause } from '../pace.ts';
import { accumulate, symmetrize } from './gptq.ts';

export interface LinearSite {
  kernel: string;
  /** The bias added to this kernel's output, when the layer has one. */
  bias?: string;
  kind: 'dense' | 'conv' | 'depthwise';
  /** Where the input is read: a layer's name (layers models) or a node's input (graph models). */
  input: string;
  strides: [number, number];
  dilations: [number, number];
  /** 'same', 'valid', or explicit [top, bottom, left, right]. */
  padding: 'same' | 'valid' | [number, number, number, number];
  /** SeparableConv2D's pointwise kernel: its input is the captured input through this depthwise site first. */
  through?: LinearSite;
}

/** One kernel's input statistics; the kernel read as groups of [d inputs × o outputs] matrices. */
export interface LayerInputs {
  site: LinearSite;
  d: number;
  o: number;
  /** One per group (depthwise: per channel): H = E[x xᵀ] (d × d, symmetric) and E[x]. */
  hessians: Float64Array[];
  means: Float64Array[];
}

/** Patches kept per kernel over the whole calibration set. */
const PATCH_BUDGET = 4096;
/** Kernels with more inputs than this are rounded to nearest (their H alone would be ≥ 32 MB). */
export const MAX_INPUTS = 2048;

const pair = (value: unknown, fallback: number): [number, number] => {
  const list = Array.isArray(value) ? value.map(Number) : value === undefined ? [fallback] : [Number(value)];
  return [list[0] ?? fallback, list[1] ?? list[0] ?? fallback];
};

function layersSites(model: DecodedModel, weights: Map<string, DecodedWeight>): LinearSite[] {
  const topology = readTopology(model.modelJson.modelTopology);
  if (!topology) return [];
  const sites: LinearSite[] = [];
  for (const layer of topology.layers) {
    const { config } = layer;
    if (config.data_format !== undefined && config.data_format !== 'channels_last') continue;
    const padding: 'same' | 'valid' | null = config.padding === 'same' ? 'same' : config.padding === 'valid' || config.padding === undefined ? 'valid' : null;
    if (!padding) continue;
    const geometry = { input: config.name, strides: pair(config.strides, 1), dilations: pair(config.dilation_rate, 1), padding };
    const bias = config.use_bias === false || !weights.has(`${config.name}/bias`) ? undefined : `${config.name}/bias`;
    const float = (name: string) => weights.get(name)?.dtype === 'float32';
    if (layer.class_name === 'SeparableConv2D') {
      // Depthwise on the layer's input, then a 1x1 convolution (with the bias) on its output.
      const depthwise: LinearSite = { kernel: `${config.name}/depthwise_kernel`, kind: 'depthwise', ...geometry };
      if (!float(depthwise.kernel) || !float(`${config.name}/pointwise_kernel`)) continue;
      sites.push(depthwise, {
        kernel: `${config.name}/pointwise_kernel`,
        ...(bias ? { bias } : {}),
        kind: 'conv',
        input: config.name,
        strides: [1, 1],
        dilations: [1, 1],
        padding: 'valid',
        through: depthwise,
      });
      continue;
    }
    const kind = layer.class_name === 'Dense' ? 'dense' : layer.class_name === 'Conv2D' ? 'conv' : layer.class_name === 'DepthwiseConv2D' ? 'depthwise' : null;
    if (!kind) continue;
    const kernel = `${config.name}/${kind === 'depthwise' ? 'depthwise_kernel' : 'kernel'}`;
    if (float(kernel)) sites.push({ kernel, ...(bias ? { bias } : {}), kind, ...geometry });
  }
  return sites;
}

function graphSites(model: DecodedModel, weights: Map<string, DecodedWeight>): LinearSite[] {
  const nodes = graphNodes(model.modelJson.modelTopology);
  const sites: LinearSite[] = [];
  for (const node of nodes) {
    const kind = { Conv2D: 'conv', _FusedConv2D: 'conv', DepthwiseConv2dNative: 'depthwise', FusedDepthwiseConv2dNative: 'depthwise', MatMul: 'dense', _FusedMatMul: 'dense' }[node.op] as
      | LinearSite['kind']
      | undefined;
    const [input, kernel, bias] = node.input ?? [];
    if (!kind || !input || !kernel || weights.get(kernel)?.dtype !== 'float32') continue;
    const attr = node.attr ?? {};
    if (readAttr.bool(attr.transpose_a) || readAttr.bool(attr.transpose_b) || readAttr.string(attr.data_format, 'NHWC') !== 'NHWC') continue;
    const fused = readAttr.strings(attr.fused_ops);
    const hasBias = fused[0] === 'BiasAdd' && bias !== undefined && weights.get(bias)?.dtype === 'float32';
    const paddingName = readAttr.string(attr.padding);
    const explicit = readAttr.ints(attr.explicit_paddings);
    const padding: LinearSite['padding'] | null =
      kind === 'dense' || paddingName === 'VALID'
        ? 'valid'
        : paddingName === 'SAME'
          ? 'same'
          : paddingName === 'EXPLICIT' && explicit.length === 8
            ? [explicit[2]!, explicit[3]!, explicit[4]!, explicit[5]!]
            : null;
    if (!padding) continue;
    const strides = readAttr.ints(attr.strides);
    const dilations = readAttr.ints(attr.dilations);
    sites.push({
      kernel,
      ...(hasBias ? { bias } : {}),
      kind,
      input,
      strides: [strides[1] ?? 1, strides[2] ?? 1],
      dilations: [dilations[1] ?? 1, dilations[2] ?? 1],
      padding,
    });
  }
  return sites;
}

/** The model's linear layers whose kernel and bias are float32 weights. */
export function linearSites(model: DecodedModel): LinearSite[] {
  const weights = new Map(model.weights.map((w) => [w.name, w]));
  const sites = model.format === 'layers-model' ? layersSites(model, weights) : graphSites(model, weights);
  // A kernel shared by two layers is left alone (its rounding would serve two inputs).
  const counts = new Map<string, number>();
  for (const site of sites) counts.set(site.kernel, (counts.get(site.kernel) ?? 0) + 1);
  return sites.filter((site) => counts.get(site.kernel) === 1);
}

/** Layers models: the sites whose layer is called once (its input is one tensor). */
function capturable(loaded: tfl.LayersModel, sites: LinearSite[]): { site: LinearSite; tensor: tfl.SymbolicTensor }[] {
  return sites.flatMap((site) => {
    try {
      const input = loaded.getLayer(site.input).input;
      return Array.isArray(input) ? [] : [{ site, tensor: input }];
    } catch {
      return [];
    }
  });
}

/**
 * The float32 model (files) with the sites' inputs as outputs (each input once), and the sites
 * it can capture; run gives one tensor per captured site, in order.
 */
async function captureRunner(model: DecodedModel, files: ModelFiles, sites: LinearSite[]) {
  const handler = memoryHandler(files.modelJson, (path) => files.files.get(path)!);
  const uniqueInputs = (captured: LinearSite[]) => [...new Set(captured.map((site) => site.input))];
  const perSite = (captured: LinearSite[], outputs: tf.Tensor[]) => {
    const names = uniqueInputs(captured);
    return captured.map((site) => outputs[names.indexOf(site.input)]!);
  };
  if (model.format === 'layers-model') {
    const loaded = await tfl.loadLayersModel(handler);
    const captured = capturable(loaded, sites);
    if (captured.length === 0) return { sites: [], run: async () => [], dispose: () => loaded.dispose() };
    // Layers can share an input tensor (a branch): each tensor is an output once.
    const tensors = [...new Set(captured.map((c) => c.tensor))];
    const capture = tfl.model({ inputs: loaded.inputs, outputs: tensors });
    return {
      sites: captured.map((c) => c.site),
      run: async (inputs: tf.Tensor[]): Promise<tf.Tensor[]> => {
        const result = capture.predict(inputs.length === 1 ? inputs[0]! : inputs);
        const outputs = Array.isArray(result) ? result : [result];
        return captured.map((c) => outputs[tensors.indexOf(c.tensor)]!);
      },
      dispose: () => loaded.dispose(),
    };
  }
  const loaded = await loadGraphModel(handler);
  const names = uniqueInputs(sites);
  return {
    sites,
    run: async (inputs: tf.Tensor[]): Promise<tf.Tensor[]> => {
      const feed = inputs.length === 1 ? inputs[0]! : Object.fromEntries(loaded.inputs.map((input, i) => [input.name, inputs[i]!]));
      // Graph models without control flow run synchronously; others need executeAsync.
      let result: tf.Tensor | tf.Tensor[];
      try {
        result = loaded.execute(feed, names);
      } catch {
        result = await loaded.executeAsync(feed, names);
      }
      return perSite(sites, Array.isArray(result) ? result : [result]);
    },
    dispose: () => loaded.dispose(),
  };
}

/** A pointwise site's input: the captured tensor through its float32 depthwise kernel first. */
function throughDepthwise(site: LinearSite, input: tf.Tensor, weights: Map<string, DecodedWeight>): tf.Tensor {
  const depthwise = site.through;
  if (!depthwise) return input;
  const kernel = weights.get(depthwise.kernel)!;
  return tf.tidy(() =>
    tf.depthwiseConv2d(
      input as tf.Tensor4D,
      tf.tensor4d(kernel.values as Float32Array, kernel.shape as [number, number, number, number]),
      depthwise.strides,
      depthwise.padding === 'same' ? 'same' : 'valid',
      'NHWC',
      depthwise.dilations,
    ),
  );
}

interface Geometry {
  kh: number;
  kw: number;
  channels: number;
  outH: number;
  outW: number;
  top: number;
  left: number;
}

function geometry(site: LinearSite, kernelShape: number[], inputShape: number[]): Geometry {
  const [kh, kw] = [kernelShape[0]!, kernelShape[1]!];
  const [h, w, channels] = [inputShape[1]!, inputShape[2]!, inputShape[3]!];
  const [sh, sw] = site.strides;
  const [dh, dw] = site.dilations;
  const span = (k: number, dil: number) => (k - 1) * dil + 1;
  if (site.padding === 'valid') return { kh, kw, channels, outH: Math.ceil((h - span(kh, dh) + 1) / sh), outW: Math.ceil((w - span(kw, dw) + 1) / sw), top: 0, left: 0 };
  if (site.padding === 'same') {
    const outH = Math.ceil(h / sh);
    const outW = Math.ceil(w / sw);
    const padH = Math.max((outH - 1) * sh + span(kh, dh) - h, 0);
    const padW = Math.max((outW - 1) * sw + span(kw, dw) - w, 0);
    return { kh, kw, channels, outH, outW, top: Math.floor(padH / 2), left: Math.floor(padW / 2) };
  }
  const [top, bottom, left, right] = site.padding;
  return { kh, kw, channels, outH: Math.floor((h + top + bottom - span(kh, dh)) / sh) + 1, outW: Math.floor((w + left + right - span(kw, dw)) / sw) + 1, top, left };
}

/** Up to `count` patches (evenly spread over every output position), each in (row, column, channel) order. */
function patches(values: Float32Array, shape: number[], site: LinearSite, g: Geometry, count: number): Float32Array {
  const [h, w] = [shape[1]!, shape[2]!];
  const positions = shape[0]! * g.outH * g.outW;
  const taken = Math.min(count, positions);
  const d = g.kh * g.kw * g.channels;
  const rows = new Float32Array(taken * d);
  for (let p = 0; p < taken; p++) {
    const position = Math.floor((p * positions) / taken);
    const n = Math.floor(position / (g.outH * g.outW));
    const oy = Math.floor(position / g.outW) % g.outH;
    const ox = position % g.outW;
    for (let i = 0; i < g.kh; i++) {
      const y = oy * site.strides[0] - g.top + i * site.dilations[0];
      if (y < 0 || y >= h) continue;
      for (let j = 0; j < g.kw; j++) {
        const x = ox * site.strides[1] - g.left + j * site.dilations[1];
        if (x < 0 || x >= w) continue;
        const from = ((n * h + y) * w + x) * g.channels;
        rows.set(values.subarray(from, from + g.channels), p * d + (i * g.kw + j) * g.channels);
      }
    }
  }
  return rows;
}

interface Accumulator {
  site: LinearSite;
  d: number;
  o: number;
  hessians: Float64Array[];
  sums: Float64Array[];
  count: number;
}

/** A site's kernel as groups of [d × o] matrices, or null where its rank is unexpected or d is past MAX_INPUTS. */
function dimensions(site: LinearSite, kernel: DecodedWeight): { d: number; o: number; groups: number } | null {
  const shape = kernel.shape;
  const [d, o, groups] = site.kind === 'dense' ? [shape[0]!, shape[1]!, 1] : site.kind === 'conv' ? [shape[0]! * shape[1]! * shape[2]!, shape[3]!, 1] : [shape[0]! * shape[1]!, shape[3]!, shape[2]!];
  if ((site.kind === 'dense' ? shape.length !== 2 : shape.length !== 4) || d > MAX_INPUTS) return null;
  return { d, o, groups };
}

function newAccumulator(site: LinearSite, kernel: DecodedWeight): Accumulator {
  const { d, o, groups } = dimensions(site, kernel)!;
  return { site, d, o, hessians: Array.from({ length: groups }, () => new Float64Array(d * d)), sums: Array.from({ length: groups }, () => new Float64Array(d)), count: 0 };
}

function addBatch(acc: Accumulator, kernel: DecodedWeight, input: Float32Array, shape: number[], budget: number): void {
  if (acc.site.kind === 'dense') {
    const d = acc.d;
    if (shape[shape.length - 1] !== d) throw new Error(`${acc.site.kernel}: input width ${shape[shape.length - 1]} is not ${d}`);
    const total = input.length / d;
    const taken = Math.min(total, budget);
    const rows = new Float32Array(taken * d);
    for (let r = 0; r < taken; r++) {
      const from = Math.floor((r * total) / taken) * d;
      rows.set(input.subarray(from, from + d), r * d);
    }
    accumulate(acc.hessians[0]!, acc.sums[0]!, rows, d);
    acc.count += taken;
    return;
  }
  if (shape.length !== 4) throw new Error(`${acc.site.kernel}: input of rank ${shape.length}`);
  const g = geometry(acc.site, kernel.shape, shape);
  if (g.channels !== kernel.shape[2]) throw new Error(`${acc.site.kernel}: input has ${g.channels} channels, kernel ${kernel.shape[2]}`);
  const rows = patches(input, shape, acc.site, g, budget);
  const taken = rows.length / (g.kh * g.kw * g.channels);
  if (acc.site.kind === 'conv') accumulate(acc.hessians[0]!, acc.sums[0]!, rows, acc.d);
  else {
    // Depthwise: channel c's vector is every (row, column) tap of that channel.
    const taps = g.kh * g.kw;
    const vector = new Float32Array(taken * taps);
    for (let c = 0; c < g.channels; c++) {
      for (let p = 0; p < taken; p++) for (let t = 0; t < taps; t++) vector[p * taps + t] = rows[(p * taps + t) * g.channels + c]!;
      accumulate(acc.hessians[c]!, acc.sums[c]!, vector, taps);
    }
  }
  acc.count += taken;
}

/**
 * Input statistics of the sites' kernels over the calibration inputs, run through the float32
 * model (files: its float32 encoding). Sites whose input cannot be captured are left out.
 * pause (converter/pace.ts) is awaited before each batch, as runCalibration does.
 */
export async function layerInputs(model: DecodedModel, files: ModelFiles, sites: LinearSite[], calibration: Calibration, pause: Pause = NO_PAUSE): Promise<LayerInputs[]> {
  const weights = new Map(model.weights.map((w) => [w.name, w]));
  const candidates = sites.filter((site) => dimensions(site, weights.get(site.kernel)!) !== null);
  if (candidates.length === 0) return [];
  const runner = await captureRunner(model, files, candidates);
  // Allocated once the captured sites are known (H of a 2048-input kernel is 32 MB).
  const accumulators = runner.sites.map((site) => newAccumulator(site, weights.get(site.kernel)!));
  const budget = Math.ceil(PATCH_BUDGET / calibration.batches.length);
  try {
    for (const batch of calibration.batches) {
      await pause();
      const inputs = batch.map((t) => tf.tensor(t.values, t.shape, t.dtype));
      try {
        const outputs = await runner.run(inputs);
        try {
          for (let i = 0; i < accumulators.length; i++) {
            const site = accumulators[i]!.site;
            const output = throughDepthwise(site, outputs[i]!, weights);
            addBatch(accumulators[i]!, weights.get(site.kernel)!, (await output.data()) as Float32Array, output.shape, budget);
            if (output !== outputs[i]) output.dispose();
          }
        } finally {
          tf.dispose([...new Set(outputs)]);
        }
      } finally {
        tf.dispose(inputs);
      }
    }
  } finally {
    runner.dispose();
  }
  return accumulators
    .filter((a) => a.count > 0)
    .map((a) => {
      for (const h of a.hessians) {
        symmetrize(h, a.d);
        for (let i = 0; i < h.length; i++) h[i]! /= a.count;
      }
      return { site: a.site, d: a.d, o: a.o, hessians: a.hessians, means: a.sums.map((s) => s.map((v) => v / a.count)) };
    });
}
