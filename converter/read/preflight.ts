// Resource accounting before anything is built: a model read from any format is checked against
// the conversion budgets (converter/limits.ts) and refused as `unconvertible`, naming the input,
// layer or op and the figure, when it would cost more than they allow or cannot be built at all
// (graph ops stock TF.js does not run). Nothing here allocates in proportion to the model's shapes.
import { OperationMapper } from '@tensorflow/tfjs-converter/dist/operations/operation_mapper.js';
import { getRegisteredOp } from '@tensorflow/tfjs-converter/dist/operations/custom_op/register.js';
import { readTopology, type TopologyLayer } from '../../shared/schemas/model-json.ts';
import { ConversionError } from '../../shared/errors.ts';
import { tooDeepAt } from '../../shared/json-depth.ts';
import { DEFAULT_FREE_DIMENSION, DEFAULT_SAMPLES } from '../calibration.ts';
import { DEFAULT_LIMITS, mib, type ConversionLimits } from '../limits.ts';
import type { DecodedModel } from '../model.ts';

/** Refuses JSON past the size or nesting budget before it is parsed (deep nesting overflows the stack of every walker after it). */
export function checkJsonBytes(bytes: Uint8Array, path: string, limits: ConversionLimits = DEFAULT_LIMITS): void {
  if (bytes.length > limits.maxJsonBytes)
    throw new ConversionError(`${path} is ${mib(bytes.length)}, more than the ${mib(limits.maxJsonBytes)} of JSON the converter parses (the budget ${limits.scope}): refused`);
  if (tooDeepAt(bytes, limits.maxJsonDepth) >= 0) throw new ConversionError(`${path} nests arrays / objects more than ${limits.maxJsonDepth} deep: refused`);
}

type Dim = number | null;

/** A shape's dimensions checked: null / -1 (unknown) or an integer from 0 to maxDimension. */
function checkShape(shape: unknown, what: string, limits: ConversionLimits): Dim[] {
  if (!Array.isArray(shape)) throw new ConversionError(`${what} has no shape list: refused`);
  if (shape.length > 8) throw new ConversionError(`${what} has ${shape.length} dimensions, more than 8: refused`);
  return shape.map((d) => {
    const n = typeof d === 'string' ? Number(d) : d;
    if (n === null || n === -1) return null;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > limits.maxDimension) {
      throw new ConversionError(`${what} has dimension ${JSON.stringify(d)} in [${shape.map((x) => JSON.stringify(x)).join(', ')}]: dimensions must be whole numbers up to ${limits.maxDimension}`);
    }
    return n;
  });
}

/** Elements of one sample (the batch dimension left out by the caller); unknown dimensions as calibration fills them. */
const elements = (shape: Dim[]) => shape.reduce<number>((product, d) => product * (d ?? DEFAULT_FREE_DIMENSION), 1);

/** The widths a layer declares (units, filters, ...), checked like dimensions. */
const WIDTH_KEYS = ['units', 'filters', 'output_dim', 'input_dim', 'depth_multiplier', 'num_heads', 'key_dim'] as const;

function layerWidths(layer: TopologyLayer, limits: ConversionLimits): number {
  let widest = 1;
  for (const key of WIDTH_KEYS) {
    const value = layer.config[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > limits.maxDimension) {
      throw new ConversionError(`layer ${JSON.stringify(layer.config.name)} (${layer.class_name}) has ${key} ${JSON.stringify(value)}: must be a whole number up to ${limits.maxDimension}`);
    }
    widest = Math.max(widest, value);
  }
  for (const key of ['target_shape', 'dims', 'size', 'kernel_size'] as const) {
    if (Array.isArray(layer.config[key])) checkShape(layer.config[key], `layer ${JSON.stringify(layer.config.name)}'s ${key}`, limits);
  }
  return widest;
}

/** The estimate, refused past the budget with the figure and what drove it. */
function checkActivation(bytes: number, what: string, limits: ConversionLimits): void {
  if (bytes > limits.maxActivationBytes) {
    throw new ConversionError(
      `${what}: about ${mib(bytes)} of activations for a calibration batch of ${DEFAULT_SAMPLES}, more than the ${mib(limits.maxActivationBytes)} budget of a conversion (maxActivationBytes): refused`,
    );
  }
}

const product = (value: unknown): number =>
  Array.isArray(value) ? value.reduce<number>((p, v) => p * (typeof v === 'number' && v > 0 ? v : 1), 1) : typeof value === 'number' && value > 0 ? value : 1;

/** How a layer scales the positions (pixels, steps) after it: strides and pools shrink them, upsampling and transposed convolutions grow them. */
function positionScale(layer: TopologyLayer): number {
  const c = layer.config;
  if (/Transpose|UpSampling/.test(layer.class_name)) return product(c.strides ?? c.size);
  if (c.strides !== undefined && c.strides !== null) return 1 / product(c.strides);
  if (c.pool_size !== undefined && c.pool_size !== null) return 1 / product(c.pool_size);
  return 1;
}

/**
 * Layers model: the input's positions (every dimension but the batch and the channels), scaled
 * by each layer's strides / pools / upsampling in the topology's order, times the layer's
 * declared width (units, filters), bound every activation; the largest is checked.
 */
function preflightLayers(model: DecodedModel, limits: ConversionLimits): void {
  const topology = readTopology(model.modelJson.modelTopology);
  if (!topology) return;
  if (topology.layers.length > limits.maxNodes) throw new ConversionError(`the model has ${topology.layers.length} layers, more than the ${limits.maxNodes} the converter builds: refused`);
  let input: { name: string; shape: Dim[]; elements: number } | undefined;
  let scale = 1;
  let worst = { elements: 0, layer: '' };
  for (const layer of topology.layers) {
    if (!layer || typeof layer.config !== 'object' || layer.config === null) throw new ConversionError('a layer of the model has no config: refused');
    const name = JSON.stringify(String(layer.config.name));
    const width = layerWidths(layer, limits);
    const shape = layer.config.batch_input_shape ?? layer.config.batch_shape;
    if (shape !== undefined) {
      const dims = checkShape(shape, `input ${name}`, limits);
      const perSample = elements(dims.slice(1));
      if (!input || perSample > input.elements) input = { name, shape: dims, elements: perSample };
      if (perSample > worst.elements) worst = { elements: perSample, layer: '' };
    }
    if (!input) continue;
    const last = input.shape[input.shape.length - 1] ?? DEFAULT_FREE_DIMENSION;
    const positions = Math.max(1, (last > 0 ? input.elements / last : input.elements) * scale * positionScale(layer));
    const out = positions * width;
    if (out > worst.elements) worst = { elements: out, layer: ` through layer ${name} (${layer.class_name}, width ${width})` };
    scale *= positionScale(layer);
  }
  if (!input) return;
  const shape = `[${input.shape.map((d) => (d === null ? 'null' : d)).join(', ')}]`;
  checkActivation(4 * DEFAULT_SAMPLES * worst.elements, `input ${input.name} of shape ${shape}${worst.layer}`, limits);
}

/** Graph models declare no widths: an input's activations are bounded as this many times the input. */
const GRAPH_WIDENING = 4;

interface GraphNode {
  name?: string;
  op?: string;
  attr?: { shape?: { shape?: { dim?: { size?: unknown }[]; unknownRank?: boolean } } };
}

/** The ops stock TF.js runs (its op mappers, and ops registered at run time). */
function knownOp(op: string): boolean {
  const mappers = (OperationMapper as unknown as { Instance: { opMappers: Record<string, unknown> } }).Instance.opMappers;
  return op in mappers || getRegisteredOp(op) !== undefined;
}

/** Graph model: node count, every op one TF.js runs, placeholder shapes within the budget. */
function preflightGraph(model: DecodedModel, limits: ConversionLimits): void {
  const topology = model.modelJson.modelTopology as { node?: unknown; library?: { function?: { nodeDef?: unknown[] }[] } };
  const nodes = (Array.isArray(topology.node) ? topology.node : []) as GraphNode[];
  const functionNodes = (topology.library?.function ?? []).flatMap((f) => (Array.isArray(f?.nodeDef) ? (f.nodeDef as GraphNode[]) : []));
  const all = [...nodes, ...functionNodes];
  if (all.length > limits.maxNodes) throw new ConversionError(`the graph has ${all.length} nodes, more than the ${limits.maxNodes} the converter builds: refused`);
  const unknown = new Set<string>();
  for (const node of all) {
    if (typeof node?.op !== 'string') throw new ConversionError(`graph node ${JSON.stringify(node?.name ?? '?')} has no op: refused`);
    if (!knownOp(node.op)) unknown.add(node.op);
  }
  if (unknown.size > 0) {
    const list = [...unknown];
    throw new ConversionError(
      `the graph uses op${list.length === 1 ? '' : 's'} ${list.slice(0, 5).join(', ')}${list.length > 5 ? ` and ${list.length - 5} more` : ''}, which TF.js does not run: the model cannot be converted`,
    );
  }
  for (const node of nodes) {
    if (node.op !== 'Placeholder') continue;
    const dims = node.attr?.shape?.shape?.dim;
    if (!Array.isArray(dims)) continue;
    const shape = checkShape(
      dims.map((d) => d?.size ?? null),
      `input ${JSON.stringify(node.name)}`,
      limits,
    );
    const estimate = 4 * DEFAULT_SAMPLES * elements(shape.slice(1)) * GRAPH_WIDENING;
    checkActivation(estimate, `input ${JSON.stringify(node.name)} of shape [${shape.map((d) => (d === null ? -1 : d)).join(', ')}]`, limits);
  }
}

/** Refuses a decoded model past the conversion budgets, naming the input, layer or op and the figure. */
export function preflight(model: DecodedModel, limits: ConversionLimits = DEFAULT_LIMITS): void {
  if (model.format === 'graph-model') preflightGraph(model, limits);
  else preflightLayers(model, limits);
}
