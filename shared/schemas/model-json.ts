// zod schema of a TF.js model.json (layers or graph), as stock tf.loadLayersModel /
// tf.loadGraphModel read it. Unknown fields pass through untouched.
import * as z from 'zod';

/** Cap on a single weight's element count: refuse absurd shapes before allocating. */
export const MAX_WEIGHT_ELEMENTS = 1 << 28;

export const WeightDtype = z.enum(['float32', 'int32', 'bool', 'string', 'complex64']);
export type WeightDtype = z.infer<typeof WeightDtype>;

export const QuantizationDtype = z.enum(['uint8', 'uint16', 'float16']);
export type QuantizationDtype = z.infer<typeof QuantizationDtype>;

export const Quantization = z.object({
  dtype: QuantizationDtype,
  scale: z.number().finite().optional(),
  min: z.number().finite().optional(),
  original_dtype: z.string().optional(),
});

const Dimension = z.number().int().nonnegative().max(MAX_WEIGHT_ELEMENTS);

export const WeightSpec = z
  .object({
    name: z.string().min(1),
    shape: z.array(Dimension).max(8),
    dtype: WeightDtype,
    quantization: Quantization.optional(),
  })
  .loose();
export type WeightSpec = z.infer<typeof WeightSpec>;

export const WeightGroup = z.object({
  paths: z.array(z.string().min(1)),
  weights: z.array(WeightSpec),
});
export type WeightGroup = z.infer<typeof WeightGroup>;

export const ModelJson = z
  .object({
    format: z.string().optional(),
    generatedBy: z.string().optional(),
    convertedBy: z.string().nullable().optional(),
    modelTopology: z.record(z.string(), z.unknown()),
    weightsManifest: z.array(WeightGroup),
    signature: z.record(z.string(), z.unknown()).optional(),
    userDefinedMetadata: z.record(z.string(), z.unknown()).optional(),
    modelInitializer: z.record(z.string(), z.unknown()).optional(),
    trainingConfig: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
export type ModelJson = z.infer<typeof ModelJson>;

/** Layers models carry a Keras config (class_name + config); graph models a GraphDef (node). */
export function modelKind(modelJson: ModelJson): 'layers-model' | 'graph-model' {
  if (modelJson.format === 'graph-model' || Array.isArray((modelJson.modelTopology as { node?: unknown }).node)) return 'graph-model';
  return 'layers-model';
}

/** model.json without its weightsManifest: what a converted model keeps of its source. */
export const ModelJsonBody = ModelJson.omit({ weightsManifest: true });
export type ModelJsonBody = z.infer<typeof ModelJsonBody>;

/** One layer of a layers model's topology, as Keras and tfjs-layers serialize it. */
export interface TopologyLayer {
  class_name: string;
  config: Record<string, unknown> & { name: string };
  inbound_nodes?: unknown[];
}

export interface Topology {
  className: string | undefined;
  sequential: boolean;
  layers: TopologyLayer[];
  /** Functional models: input_layers / output_layers names. Sequential: [] and the last layer. */
  inputs: string[];
  outputs: string[];
}

/**
 * The top level of a layers model's topology (Keras's `model_config`, or the topology itself):
 * Sequential (config a list of layers, or {layers}) or functional ({layers, input_layers,
 * output_layers}); null when it has no config. The objects are the topology's own.
 */
export function readTopology(modelTopology: unknown): Topology | null {
  const topology = modelTopology as { model_config?: unknown } | undefined;
  const root = (topology?.model_config ?? topology) as { class_name?: string; config?: unknown } | undefined;
  const config = root?.config as { layers?: unknown; input_layers?: unknown[]; output_layers?: unknown[] } | unknown[] | undefined;
  if (!config) return null;
  if (root!.class_name === 'Sequential') {
    const layers = (Array.isArray(config) ? config : Array.isArray(config.layers) ? config.layers : []) as TopologyLayer[];
    const last = layers[layers.length - 1]?.config?.name;
    return { className: 'Sequential', sequential: true, layers, inputs: [], outputs: last ? [last] : [] };
  }
  if (Array.isArray(config)) return null;
  const names = (list: unknown[] | undefined) => (list ?? []).map((entry) => (Array.isArray(entry) ? entry[0] : undefined)).filter((n): n is string => typeof n === 'string');
  return {
    className: root!.class_name,
    sequential: false,
    layers: (Array.isArray(config.layers) ? config.layers : []) as TopologyLayer[],
    inputs: names(config.input_layers),
    outputs: names(config.output_layers),
  };
}

/** The layers a functional layer's inbound_nodes name (`[[["dense", 0, 0, {}], ...], ...]`). */
function inboundLayerNames(inboundNodes: unknown): string[] {
  const names: string[] = [];
  const walk = (node: unknown, depth: number): void => {
    if (!Array.isArray(node) || depth > 6) return;
    if (typeof node[0] === 'string' && typeof node[1] === 'number') names.push(node[0]);
    else for (const child of node) walk(child, depth + 1);
  };
  walk(inboundNodes, 0);
  return names;
}

/**
 * Checks a functional layers topology before TF.js builds it (TF.js loops forever on a cycle):
 * unique layer names, every inbound layer and every input/output layer defined, no cycle.
 * Returns the problem as a sentence, or null when the topology is sound (or not functional).
 */
export function topologyProblem(modelTopology: unknown): string | null {
  const topology = readTopology(modelTopology);
  if (!topology || topology.sequential) return null;
  const inbound = new Map<string, string[]>();
  for (const layer of topology.layers) {
    const name = layer?.config?.name;
    if (typeof name !== 'string') return 'a layer has no name';
    if (inbound.has(name)) return `two layers are named ${JSON.stringify(name)}`;
    inbound.set(name, inboundLayerNames(layer.inbound_nodes));
  }
  for (const [name, sources] of inbound) {
    const missing = sources.find((source) => !inbound.has(source));
    if (missing !== undefined) return `layer ${JSON.stringify(name)} takes its input from ${JSON.stringify(missing)}, which is not a layer of the model`;
  }
  for (const name of [...topology.inputs, ...topology.outputs]) {
    if (!inbound.has(name)) return `the model's inputs / outputs name ${JSON.stringify(name)}, which is not a layer of the model`;
  }
  // Iterative depth-first search: 0 unvisited, 1 on the current path, 2 done.
  const state = new Map<string, number>();
  for (const start of inbound.keys()) {
    if (state.get(start)) continue;
    const stack: { name: string; next: number }[] = [{ name: start, next: 0 }];
    state.set(start, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const sources = inbound.get(top.name)!;
      if (top.next === sources.length) {
        state.set(top.name, 2);
        stack.pop();
        continue;
      }
      const source = sources[top.next++]!;
      const seen = state.get(source) ?? 0;
      if (seen === 1) return `the layers form a cycle through ${JSON.stringify(source)} (${[...stack.map((s) => s.name), source].slice(stack.findIndex((s) => s.name === source)).join(' → ')})`;
      if (seen === 0) {
        state.set(source, 1);
        stack.push({ name: source, next: 0 });
      }
    }
  }
  return null;
}
