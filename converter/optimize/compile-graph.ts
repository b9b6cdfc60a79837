// The converter's side of the graph compiler (shared/graph/compile.ts): a decoded layers model
// becomes a decoded graph model, its weights the compiled graph's constants (float32, BN folded,
// plus the int32 shape and axis constants), ready for the quantize, shard and verify stages.
import { compileLayersModel, NotCompilable, type CompiledGraph } from '../../shared/graph/compile.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import type { DecodedModel } from '../model.ts';

export interface GraphCompilation {
  model: DecodedModel;
  summary: CompiledGraph['summary'];
}

/** The graph model of a layers model; throws NotCompilable (naming the layer) when it cannot be lowered. */
export function compileToGraph(model: DecodedModel): GraphCompilation {
  if (model.format !== 'layers-model') throw new NotCompilable('the model is a graph model already');
  const weights = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const weight of model.weights) {
    if (weight.values instanceof Float32Array) weights.set(weight.name, { shape: weight.shape, values: weight.values });
  }
  const compiled = compileLayersModel(model.modelJson.modelTopology, weights, model.modelJson.generatedBy as string | undefined);
  return {
    model: { format: 'graph-model', modelJson: compiled.modelJson as DecodedModel['modelJson'], weights: compiled.weights, source: model.source },
    summary: compiled.summary,
  };
}

/** compileToGraph for `--format graph`: a model that cannot be lowered is refused by name. */
export function requireGraph(model: DecodedModel): GraphCompilation {
  try {
    return compileToGraph(model);
  } catch (error) {
    if (error instanceof NotCompilable) throw new EdgeflowError('unconvertible', `--format graph: ${error.message}; convert with --format layers (or auto) instead`);
    throw error;
  }
}
