// Whether the graph compiler lowers a Keras layer class with a given config: the Keras reader asks
// before refusing a layer TF.js layers cannot build (GRU reset_after=True, MultiHeadAttention,
// TFOpLambda, Conv1DTranspose), so such a model reaches the pipeline, which compiles it to a graph
// model (or refuses it naming what the compiler cannot lower).
import { attentionRefusal } from './lower/attention.ts';
import { CONV1D_CLASSES, conv1dRefusal } from './lower/conv1d.ts';
import { bidirectionalRefusal, RECURRENT_CLASSES, recurrentRefusal } from './lower/recurrent.ts';
import { tfOpRefusal } from './lower/tf-ops.ts';

/** Why the compiler cannot lower this class with this config (undefined: it can). */
export function lowerRefusal(className: string, config: Record<string, unknown>): string | undefined {
  if (RECURRENT_CLASSES.has(className)) return recurrentRefusal(className, config);
  if (className === 'Bidirectional') return bidirectionalRefusal(config);
  if (className === 'TFOpLambda' || className === 'SlicingOpLambda') return tfOpRefusal(config);
  if (className === 'MultiHeadAttention') return attentionRefusal(config);
  if (CONV1D_CLASSES.has(className)) return conv1dRefusal(className, config);
  return `${className} has no graph lowering`;
}

export function canLower(className: string, config: Record<string, unknown>): boolean {
  return lowerRefusal(className, config) === undefined;
}
