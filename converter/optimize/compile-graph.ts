// The converter's side of the graph compiler (shared/graph/compile.ts): a decoded layers model
// becomes a decoded graph model, its weights the compiled graph's constants (float32, BN folded
// unless foldBatchNorm is false, plus the int32 shape and axis constants), ready for the quantize,
// shard and verify stages.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { compileLayersModel, NotCompilable, type CompiledGraph } from '../../shared/graph/compile.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import type { DecodedModel } from '../model.ts';

export interface GraphCompilation {
  model: DecodedModel;
  summary: CompiledGraph['summary'];
}

/** The graph model of a layers model; throws NotCompilable (naming the layer) when it cannot be lowered. */
export function compileToGraph(model: DecodedModel, options: { foldBatchNorm?: boolean } = {}): GraphCompilation {
  if (model.format !== 'layers-model') throw new NotCompilable('the model is a graph model already');
  const weights = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const weight of model.weights) {
    if (weight.values instanceof Float32Array) weights.set(weight.name, { shape: weight.shape, values: weight.values });
  }
  const compiled = compileLayersModel(model.modelJson.modelTopology, weights, model.modelJson.generatedBy as string | undefined, options);
  return {
    model: { format: 'graph-model', modelJson: compiled.modelJson as DecodedModel['modelJson'], weights: compiled.weights, source: model.source },
    summary: compiled.summary,
  };
}

/** compileToGraph for `--format graph`: a model that cannot be lowered is refused by name. */
export function requireGraph(model: DecodedModel, options: { foldBatchNorm?: boolean } = {}): GraphCompilation {
  try {
    return compileToGraph(model, options);
  } catch (error) {
    if (error instanceof NotCompilable) throw new EdgeflowError('unconvertible', `--format graph: ${error.message}; convert with --format layers (or auto) instead`);
    throw error;
  }
}

/** Layer configs TF.js layers knows by class but refuses to build. */
const UNBUILDABLE_CONFIGS: Record<string, (config: Record<string, unknown>) => boolean> = {
  GRU: (config) => config.reset_after === true,
};

/**
 * The layers of a layers model that stock TF.js layers cannot build (classes it does not have,
 * configs it refuses), as `name (class)`: such a model can only be served as a graph model.
 */
export function layersTfjsCannotBuild(model: DecodedModel): string[] {
  const known = (tf.serialization as unknown as { SerializationMap: { getMap(): { classNameMap: Record<string, unknown> } } }).SerializationMap.getMap().classNameMap;
  const found: string[] = [];
  const visit = (node: unknown, depth: number): void => {
    if (!node || typeof node !== 'object' || depth > 64) return;
    if (Array.isArray(node)) {
      for (const item of node) visit(item, depth + 1);
      return;
    }
    const record = node as { class_name?: unknown; config?: Record<string, unknown> };
    if (typeof record.class_name === 'string' && record.config && typeof record.config === 'object' && 'name' in record.config) {
      const refused = !(record.class_name in known) || UNBUILDABLE_CONFIGS[record.class_name]?.(record.config);
      if (refused) found.push(`${String(record.config.name)} (${record.class_name})`);
    }
    Object.values(record).forEach((value) => visit(value, depth + 1));
  };
  visit((model.modelJson.modelTopology as { model_config?: unknown })?.model_config ?? model.modelJson.modelTopology, 0);
  return found;
}
