// What a layers model tells about the values its inputs expect, so that synthetic calibration
// inputs look like real ones: a Rescaling layer right after an input says its range (pixels in
// [0, 255] for Rescaling(1/255)), a Normalization layer its mean and variance, an Embedding its
// vocabulary (token ids, whatever the input's dtype). Inputs with no such layer get no hint.
import { readTopology, type TopologyLayer } from '../shared/schemas/model-json.ts';
import type { DecodedWeight } from './model.ts';

export type InputHint =
  | { kind: 'range'; low: number; high: number; reason: string }
  | { kind: 'normal'; mean: number[]; std: number[]; reason: string }
  | { kind: 'tokens'; vocabulary: number; reason: string };

const NESTED_MODELS = new Set(['Sequential', 'Functional', 'Model']);

/** The first layer that reads the model's input `index` (descending into nested models), or undefined. */
function firstConsumer(topology: unknown, index: number): TopologyLayer | undefined {
  const model = readTopology(topology);
  if (!model) return undefined;
  let layer: TopologyLayer | undefined;
  if (model.sequential) {
    layer = model.layers.find((l) => l.class_name !== 'InputLayer');
  } else {
    const input = model.inputs[index];
    layer = model.layers.find((l) => l.class_name !== 'InputLayer' && JSON.stringify(l.inbound_nodes ?? []).includes(JSON.stringify(input)));
  }
  if (layer && NESTED_MODELS.has(layer.class_name)) return firstConsumer(layer, 0) ?? layer;
  return layer;
}

const numbers = (value: unknown): number[] | undefined => {
  const flat = Array.isArray(value) ? value.flat(8) : typeof value === 'number' ? [value] : undefined;
  return flat?.every((v) => typeof v === 'number') ? (flat as number[]) : undefined;
};

/** Normalization's mean / variance: in its config (Keras 3 `mean=`), else in its weights. */
function normalizationHint(layer: TopologyLayer, weights: DecodedWeight[]): InputHint | undefined {
  const name = layer.config.name;
  const fromWeights = (suffix: string) => {
    const weight = weights.find((w) => w.name === `${name}/${suffix}` || w.name.endsWith(`/${name}/${suffix}`));
    return weight ? Array.from(weight.values as ArrayLike<number>) : undefined;
  };
  const mean = numbers(layer.config.mean) ?? fromWeights('mean');
  const variance = numbers(layer.config.variance) ?? fromWeights('variance');
  if (!mean || !variance || mean.length !== variance.length) return undefined;
  const reason = `Normalization layer ${JSON.stringify(name)}`;
  return { kind: 'normal', mean, std: variance.map((v) => Math.sqrt(Math.max(v, 0))), reason };
}

function hintFor(layer: TopologyLayer | undefined, weights: DecodedWeight[]): InputHint | undefined {
  if (!layer) return undefined;
  const config = layer.config;
  const name = JSON.stringify(config.name);
  if (layer.class_name === 'Embedding' && typeof config.input_dim === 'number' && config.input_dim > 0) {
    return { kind: 'tokens', vocabulary: config.input_dim, reason: `Embedding layer ${name} (vocabulary ${config.input_dim})` };
  }
  if (layer.class_name === 'Rescaling') {
    const scale = Number(config.scale ?? 1);
    const offset = Number(config.offset ?? 0);
    if (!Number.isFinite(scale) || scale === 0 || !Number.isFinite(offset)) return undefined;
    // The layer maps the input to [0, 1] (offset ≥ 0) or [-1, 1] (offset < 0), as Keras's preprocessing does.
    const [lo, hi] = offset < 0 ? [-1, 1] : [0, 1];
    const [a, b] = [(lo - offset) / scale, (hi - offset) / scale];
    return { kind: 'range', low: Math.min(a, b), high: Math.max(a, b), reason: `Rescaling layer ${name} (scale ${scale}, offset ${offset})` };
  }
  if (layer.class_name === 'Normalization') return normalizationHint(layer, weights);
  return undefined;
}

/** One hint (or undefined) per model input, in the order of the model's inputs; [] for graph models. */
export function inputHints(modelTopology: unknown, inputCount: number, weights: DecodedWeight[]): (InputHint | undefined)[] {
  if (!readTopology(modelTopology)) return [];
  return Array.from({ length: inputCount }, (_, i) => hintFor(firstConsumer(modelTopology, i), weights));
}
