// Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight
// Equalization and Bias Correction") of a layers model: for two linear layers in a chain
// A → (ReLU, pooling, upsampling, padding, dropout) → B, output channel c of A (kernel and bias)
// is divided by s_c and input channel c of B multiplied by s_c, with s_c = √(r_A(c) / r_B(c))
// (r: a channel's largest |weight|), so that both kernels' channels span similar ranges and one
// per-tensor uint8 grid, all that stock TF.js dequantizes, fits every channel. Exact in real
// arithmetic: a positive per-channel scale commutes with every layer allowed between A and B.
// The model keeps its topology; only weight values change. Top-level layers only.
import { kerasCalls, NotCompilable, type LayerCall } from '../../shared/graph/keras-calls.ts';
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

/** The model with every equalizable pair equalized (one pass in topological order); pairs empty when none is. */
export function equalizeLayers(model: DecodedModel): Equalization {
  if (model.format !== 'layers-model') return { model, pairs: [] };
  let calls: ReturnType<typeof kerasCalls>;
  try {
    calls = kerasCalls(model.modelJson.modelTopology);
  } catch (error) {
    if (error instanceof NotCompilable) return { model, pairs: [] };
    throw error;
  }
  const readersOf = new Map<string, LayerCall[]>();
  for (const call of calls.calls) for (const input of call.inputs) readersOf.set(input, [...(readersOf.get(input) ?? []), call]);
  // The only call reading a layer's output, when nothing else (another call, a model output) does.
  const onlyReader = (name: string) => (calls.readers.get(name) === 1 && readersOf.get(name)?.length === 1 ? readersOf.get(name)![0] : undefined);
  const copies = new Map<string, DecodedWeight>();
  const weight = (name: string): DecodedWeight | undefined => {
    const found = copies.get(name) ?? model.weights.find((w) => w.name === name);
    // A weight on a quantized source's grid would leave it: not equalized.
    if (found?.dtype !== 'float32' || found.sourceGrid) return undefined;
    if (!copies.has(name)) copies.set(name, { ...found, values: Float32Array.from(found.values as Float32Array) });
    return copies.get(name);
  };
  const pairs: string[] = [];
  for (const a of calls.calls) {
    if (!linear(a) || !HOMOGENEOUS.has(String(config(a).activation ?? 'linear'))) continue;
    let next = onlyReader(a.layer.config.name);
    while (next && !linear(next) && homogeneous(next) && next.inputs.length === 1) next = onlyReader(next.layer.config.name);
    if (!next || !linear(next) || next.inputs.length !== 1) continue;
    const [kernelA, kernelB] = [weight(`${a.layer.config.name}/kernel`), weight(`${next.layer.config.name}/kernel`)];
    const bias = config(a).use_bias === false ? undefined : weight(`${a.layer.config.name}/bias`);
    if (!kernelA || !kernelB || (config(a).use_bias !== false && !bias)) continue;
    const channels = kernelA.shape[kernelA.shape.length - 1]!;
    const inputAxis = kernelB.shape.length - 2;
    if (kernelB.shape[inputAxis] !== channels) continue;
    const rangesA = channelRanges(kernelA.values as Float32Array, kernelA.shape, kernelA.shape.length - 1);
    const rangesB = channelRanges(kernelB.values as Float32Array, kernelB.shape, inputAxis);
    const s = rangesA.map((r, c) => (r > 0 && rangesB[c]! > 0 ? Math.sqrt(r / rangesB[c]!) : 1));
    scaleChannels(
      kernelA.values as Float32Array,
      kernelA.shape,
      kernelA.shape.length - 1,
      s.map((v) => 1 / v),
    );
    if (bias)
      scaleChannels(
        bias.values as Float32Array,
        bias.shape,
        0,
        s.map((v) => 1 / v),
      );
    scaleChannels(kernelB.values as Float32Array, kernelB.shape, inputAxis, s);
    pairs.push(`${a.layer.config.name} → ${next.layer.config.name}`);
  }
  if (pairs.length === 0) return { model, pairs };
  return { model: { ...model, weights: model.weights.map((w) => copies.get(w.name) ?? w) }, pairs };
}
