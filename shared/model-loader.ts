// Loads a TF.js model from model.json + shard bytes and gives every kind one predict interface:
// a layers model compiled to a fused graph run as a plan of kernels, or with the stock loaders
// (tf.loadLayersModel / tf.loadGraphModel through an in-memory IO handler). Used by the
// converter's verify stage and the runtime.
import * as tf from '@tensorflow/tfjs-core';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { concatBytes, exactBuffer } from './bytes.ts';
import { modelKind, readTopology, topologyProblem, type ModelJson } from './schemas/model-json.ts';
import { ConversionError } from './errors.ts';
import type { TensorSignature } from './schemas/edgeflow-json.ts';
import { compileLayersModel, NotCompilable, type CompiledGraph } from './graph/compile.ts';
import { graphNodes, type GraphNode } from './graph/graphdef.ts';
import { kernelPlan, type KernelPlan } from './graph/kernel-plan.ts';
import { decodeWeights } from './weights.ts';
import { WeightTensors } from './weight-tensors.ts';

export interface LoadedModel {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** How it runs: the stock layers or graph runtime, or a layers model compiled to a fused graph at load. */
  runtime: 'layers' | 'graph' | 'compiled-graph';
  /** Inputs in signature order; outputs in signature order. The caller disposes them. */
  predict(inputs: tf.Tensor[]): Promise<tf.Tensor[]>;
  dispose(): void;
}

/** True when the parts are consecutive views that exactly tile one buffer (the converter's shards). */
function arePiecesOf(parts: Uint8Array[], total: number): boolean {
  const whole = parts[0]?.buffer;
  if (!(whole instanceof ArrayBuffer) || whole.byteLength !== total) return false;
  let offset = 0;
  for (const part of parts) {
    if (part.buffer !== whole || part.byteOffset !== offset) return false;
    offset += part.byteLength;
  }
  return true;
}

/** The shards in manifest order, as tf.io reads them (across shard ends, nothing concatenated). */
function weightData(modelJson: ModelJson, shard: (path: string) => Uint8Array): ArrayBuffer[] {
  const parts = modelJson.weightsManifest.flatMap((group) => group.paths.map(shard));
  const total = parts.reduce((sum, p) => sum + p.byteLength, 0);
  if (arePiecesOf(parts, total)) return [parts[0]!.buffer as ArrayBuffer];
  return parts.map(exactBuffer);
}

export function memoryHandler(modelJson: ModelJson, shard: (path: string) => Uint8Array): tf.io.IOHandler {
  return {
    load: () => tf.io.getModelArtifactsForJSON(modelJson as unknown as tf.io.ModelJSON, async (manifest) => [manifest.flatMap((group) => group.weights), weightData(modelJson, shard)]),
  };
}

const dims = (shape: readonly (number | null)[] | undefined): number[] => (shape ?? []).map((d) => (d === null || d === undefined || d < 0 ? -1 : d));

function graphSignature(model: GraphModel): { inputs: TensorSignature[]; outputs: TensorSignature[] } {
  return {
    inputs: model.inputs.map((t) => ({ name: t.name, dtype: t.dtype ?? 'float32', shape: dims(t.shape) })),
    outputs: model.outputs.map((t) => ({ name: t.name, dtype: t.dtype ?? 'float32', shape: t.shape ? dims(t.shape) : [] })),
  };
}

/**
 * Stable tensor names of a layers model, from its topology. The loaded model's own names
 * get a per-process uniquifier (`dense_input_3`, `out/out_2`) that changes with every load
 * of the same model, so they cannot be an API: Sequential models take `<first layer>_input`
 * (Keras's convention) and give the last layer's name; functional models use their
 * input_layers / output_layers.
 */
function topologyNames(modelJson: ModelJson): { inputs: string[]; outputs: string[] } | null {
  const topology = readTopology(modelJson.modelTopology);
  if (!topology?.sequential) return topology;
  const first = topology.layers[0];
  if (!first?.config?.name || topology.outputs.length === 0) return null;
  return { inputs: [first.class_name === 'InputLayer' ? first.config.name : `${first.config.name}_input`], outputs: topology.outputs };
}

function layersSignature(model: LayersModel, modelJson: ModelJson): { inputs: TensorSignature[]; outputs: TensorSignature[] } {
  const stable = topologyNames(modelJson);
  const inputNames = stable?.inputs.length === model.inputs.length ? stable.inputs : model.inputNames;
  const outputNames = stable?.outputs.length === model.outputs.length && new Set(stable.outputs).size === stable.outputs.length ? stable.outputs : model.outputNames;
  return {
    inputs: model.inputs.map((t, i) => ({ name: inputNames[i] ?? t.name, dtype: t.dtype, shape: dims(t.shape) })),
    outputs: model.outputs.map((t, i) => ({ name: outputNames[i] ?? t.name, dtype: t.dtype, shape: dims(t.shape) })),
  };
}

const asList = (result: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap): tf.Tensor[] => (result instanceof tf.Tensor ? [result] : Array.isArray(result) ? result : Object.values(result));

type Signature = ReturnType<typeof graphSignature>;

/**
 * A layers model compiled to a fused graph (shared/graph/compile.ts) from its dequantized
 * weights, as tensors: the stored files keep their precise quantization grid, and inference
 * runs the fused kernels. Null when a layer has no graph lowering (the caller runs the layers model).
 */
function compiledGraph(modelJson: ModelJson, shard: (path: string) => Uint8Array): { weights: tf.NamedTensorMap; signature: Signature; graph: CompiledGraph['modelJson']['modelTopology'] } | null {
  // Dequantized straight from the shards into the tensors' own memory (shared/weight-tensors.ts),
  // where the compiler folds in place: one fresh 4-byte copy of each weight in all. The compiler
  // is plain JavaScript: nothing allocates on the wasm heap (and detaches the views) before tensors().
  const groups = modelJson.weightsManifest;
  const arena = new WeightTensors();
  try {
    const weights = new Map<string, { shape: number[]; values: Float32Array }>();
    for (const w of decodeWeights(
      groups,
      groups.map((group) => concatBytes(group.paths.map(shard))),
      arena.target,
    ))
      if (w.values instanceof Float32Array) weights.set(w.name, { shape: w.shape, values: w.values });
    arena.settle(weights);
    const compiled = compileLayersModel(modelJson.modelTopology, weights, undefined, { inPlace: true });
    return { weights: arena.tensors(compiled.weights, weights), signature: compiled.signature, graph: compiled.modelJson.modelTopology };
  } catch (error) {
    arena.dispose();
    if (error instanceof NotCompilable) return null;
    throw error;
  }
}

/** A compiled graph as a plan of kernels, or (an op the plan does not run, or `plan: false`) as a GraphModel. */
async function compiledRunner({ weights, signature, graph }: NonNullable<ReturnType<typeof compiledGraph>>, usePlan: boolean): Promise<LoadedModel> {
  let plan: KernelPlan | null;
  try {
    plan = usePlan ? kernelPlan(graph.node as GraphNode[], weights, names(signature.inputs), names(signature.outputs)) : null;
  } catch (error) {
    tf.dispose(weights);
    throw error;
  }
  if (plan) return planRunner(plan, signature, 'compiled-graph', () => tf.dispose(weights));
  const { graphModelOf } = await import('./graph-model.ts');
  return graphRunner(graphModelOf(graph, weights), signature, 'compiled-graph', []);
}

export interface LoadModelOptions {
  /** Run a layers model as a graph model compiled at load (fused kernels); falls back to the layers runtime. */
  compile?: boolean;
  /** Run a graph of fused convolutional ops as a plan of kernels (graph/kernel-plan.ts), the default; false: GraphModel.execute, as stock TF.js runs it. */
  plan?: boolean;
}

export async function loadModel(modelJson: ModelJson, shard: (path: string) => Uint8Array, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const handler = memoryHandler(modelJson, shard);
  if (modelKind(modelJson) === 'layers-model') {
    const problem = topologyProblem(modelJson.modelTopology);
    if (problem) throw new ConversionError(`the model's topology is broken: ${problem}`);
    const compiled = options.compile ? compiledGraph(modelJson, shard) : null;
    if (compiled) return compiledRunner(compiled, options.plan !== false);
    // tfjs-layers is loaded only for a model run by the layers runtime: a process serving graph
    // or compiled models never pays its import (~1.4 MB of JavaScript) at start-up.
    const { loadLayersModel } = await import('@tensorflow/tfjs-layers');
    const model = await loadLayersModel(handler).catch(async (error: unknown) => {
      const { layersLoadError } = await import('./layers-load-error.ts');
      throw await layersLoadError(error, modelJson);
    });
    return {
      ...layersSignature(model, modelJson),
      runtime: 'layers',
      predict: async (inputs) => asList(model.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor | tf.Tensor[]),
      dispose: () => model.dispose(),
    };
  }
  const { loadGraphModel } = await import('./graph-model.ts');
  const model = await loadGraphModel(handler);
  return graphRunner(model, graphSignature(model), 'graph', options.plan === false ? [] : graphNodes(modelJson.modelTopology));
}

const names = (list: TensorSignature[]) => list.map((t) => t.name);

/** A plan of kernels; `release` frees what it runs on. */
function planRunner(plan: KernelPlan, signature: Signature, runtime: LoadedModel['runtime'], release: () => void): LoadedModel {
  return { ...signature, runtime, predict: async (inputs) => plan.run(inputs), dispose: release };
}

function graphRunner(model: GraphModel, signature: Signature, runtime: LoadedModel['runtime'], nodes: GraphNode[]): LoadedModel {
  const plan = Array.isArray(nodes) && nodes.length > 0 ? kernelPlan(nodes, model.weights, names(signature.inputs), names(signature.outputs)) : null;
  if (plan) return planRunner(plan, signature, runtime, () => model.dispose());
  // Graph models without control flow run synchronously; the first dynamic-op error switches to executeAsync.
  let dynamic = false;
  return {
    ...signature,
    runtime,
    predict: async (inputs) => {
      const feed: tf.NamedTensorMap = {};
      signature.inputs.forEach((input, i) => (feed[input.name] = inputs[i]!));
      if (!dynamic) {
        try {
          return asList(model.execute(feed));
        } catch (error) {
          if (!/executeAsync/.test((error as Error).message)) throw error;
          dynamic = true;
        }
      }
      return asList(await model.executeAsync(feed));
    },
    dispose: () => model.dispose(),
  };
}
