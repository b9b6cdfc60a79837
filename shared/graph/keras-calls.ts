// A Keras layers topology (Sequential or functional, as tfjs-layers and Keras 2 serialize it)
// as a list of layer calls in an order where every call comes after the calls it reads, with
// each call's inputs and the number of calls (and model outputs) that read its output. The
// graph compiler lowers the calls one by one and fuses a call into its only reader.
import { readTopology, type TopologyLayer } from '../schemas/model-json.ts';

export interface LayerCall {
  layer: TopologyLayer;
  /** Names of the layers whose (only) output this call reads, in argument order. */
  inputs: string[];
  /** Tensors passed by keyword (MultiHeadAttention's value / key, a TFOpLambda's y): argument → layer name. */
  kwargs?: Record<string, string>;
  /** Other keyword arguments as recorded (a TFOpLambda's constant `y`, `name`, ...). */
  args?: Record<string, unknown>;
}

export interface KerasCalls {
  calls: LayerCall[];
  /** Input layer names (functional) or the single synthetic input (Sequential), with their shapes. */
  inputs: { name: string; shape: (number | null)[]; dtype: string }[];
  /** Names of the layers whose outputs are the model's outputs, in order. */
  outputs: string[];
  /** How many calls read each layer's output, plus one per model output it is. */
  readers: Map<string, number>;
}

/** Why a topology cannot be compiled (the graph compiler falls back to the layers model, or says so). */
export class NotCompilable extends Error {}

function batchShape(config: Record<string, unknown>): (number | null)[] | undefined {
  const shape = (config.batch_input_shape ?? config.batch_shape) as (number | null)[] | undefined;
  if (Array.isArray(shape)) return shape;
  const inputShape = config.input_shape as (number | null)[] | undefined;
  return Array.isArray(inputShape) ? [null, ...inputShape] : undefined;
}

const isRef = (value: unknown): value is [string, number, number, unknown?] => Array.isArray(value) && typeof value[0] === 'string' && value[1] === 0 && value[2] === 0 && value.length <= 4;

/**
 * `[[["dense", 0, 0, {}], ...]]` → inputs ["dense", ...] and the tensors passed by keyword
 * (`{"value": ["x", 0, 0]}`, as MultiHeadAttention and TFOpLambda calls record them). Also reads
 * the one-level form TFOpLambda nodes take (`[["x", 0, 0, {"y": ...}]]`). Refuses shared layers and
 * multi-output tensors.
 */
function inbound(layer: TopologyLayer): { inputs: string[]; kwargs: Record<string, string>; args: Record<string, unknown> } {
  const nodes = layer.inbound_nodes ?? [];
  if (nodes.length === 0) return { inputs: [], kwargs: {}, args: {} };
  const flat = nodes.length >= 1 && Array.isArray(nodes[0]) && typeof (nodes[0] as unknown[])[0] === 'string';
  if (nodes.length > 1) throw new NotCompilable(`layer ${JSON.stringify(layer.config.name)} is called ${nodes.length} times (shared layers are not compiled)`);
  const node = flat ? [nodes[0]] : nodes[0];
  if (!Array.isArray(node)) throw new NotCompilable(`layer ${JSON.stringify(layer.config.name)} has inbound nodes in a form the compiler does not read`);
  const kwargs: Record<string, string> = {};
  const args: Record<string, unknown> = {};
  const inputs = node.map((entry) => {
    if (!isRef(entry)) {
      throw new NotCompilable(`layer ${JSON.stringify(layer.config.name)} reads a tensor the compiler does not follow (${JSON.stringify(entry).slice(0, 80)})`);
    }
    const extra = entry[3];
    if (extra && typeof extra === 'object') {
      for (const [key, value] of Object.entries(extra as Record<string, unknown>)) {
        if (isRef(value)) kwargs[key] = value[0];
        else if (!Array.isArray(value) || !value.some(Array.isArray)) args[key] = value;
        else throw new NotCompilable(`layer ${JSON.stringify(layer.config.name)} takes argument ${key} in a form the compiler does not follow`);
      }
    }
    return entry[0];
  });
  return { inputs, kwargs, args };
}

export function kerasCalls(modelTopology: unknown): KerasCalls {
  const topology = readTopology(modelTopology);
  if (!topology) throw new NotCompilable('the model has no layers topology');
  const readers = new Map<string, number>();
  const read = (name: string) => readers.set(name, (readers.get(name) ?? 0) + 1);

  if (topology.sequential) {
    const layers = topology.layers;
    const first = layers[0];
    if (!first) throw new NotCompilable('the Sequential model has no layers');
    const shape = batchShape(first.config);
    if (!shape) throw new NotCompilable('the Sequential model has no input shape (it was saved before it was built)');
    const inputName = first.class_name === 'InputLayer' ? first.config.name : `${first.config.name}_input`;
    const inputs = [{ name: inputName, shape, dtype: String(first.config.dtype ?? 'float32') }];
    const calls: LayerCall[] = [];
    let previous = inputName;
    for (const layer of layers) {
      if (layer.class_name === 'InputLayer') continue;
      calls.push({ layer, inputs: [previous] });
      read(previous);
      previous = layer.config.name;
    }
    read(previous);
    return { calls, inputs, outputs: [previous], readers };
  }

  const byName = new Map(topology.layers.map((layer) => [layer.config.name, layer]));
  const inputs = topology.inputs.map((name) => {
    const layer = byName.get(name);
    const shape = layer && batchShape(layer.config);
    if (!shape) throw new NotCompilable(`input ${JSON.stringify(name)} has no shape`);
    return { name, shape, dtype: String(layer!.config.dtype ?? 'float32') };
  });
  const pending = topology.layers.filter((layer) => layer.class_name !== 'InputLayer').map((layer) => ({ layer, ...inbound(layer) }));
  // Kahn's order: a call is ready once every layer it reads has been placed.
  const placed = new Set(topology.inputs);
  const calls: LayerCall[] = [];
  while (pending.length > 0) {
    const ready = pending.findIndex((call) => [...call.inputs, ...Object.values(call.kwargs)].every((name) => placed.has(name)));
    if (ready < 0) throw new NotCompilable(`layers ${pending.map((c) => JSON.stringify(c.layer.config.name)).join(', ')} read layers that are never computed`);
    const [call] = pending.splice(ready, 1);
    calls.push(call!);
    placed.add(call!.layer.config.name);
    [...call!.inputs, ...Object.values(call!.kwargs)].forEach(read);
  }
  topology.outputs.forEach(read);
  return { calls, inputs, outputs: topology.outputs, readers };
}
