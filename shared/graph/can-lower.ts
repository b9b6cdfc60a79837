// Whether the graph compiler lowers a Keras layer class with a given config: the Keras reader asks
// before refusing a layer TF.js layers cannot build (GRU reset_after=True), so such a model reaches
// the pipeline, which compiles it to a graph model (or refuses it naming what the compiler cannot lower).
import { attentionRefusal } from './lower/attention.ts';
import { CONV1D_CLASSES, conv1dRefusal } from './lower/conv1d.ts';
import { RECURRENT_CLASSES, recurrentRefusal } from './lower/recurrent.ts';
import { tfOpRefusal } from './lower/tf-ops.ts';

export function canLower(className: string, config: Record<string, unknown>): boolean {
  if (RECURRENT_CLASSES.has(className)) return recurrentRefusal(className, config) === undefined;
  if (className === 'TFOpLambda') return tfOpRefusal(config) === undefined;
  if (className === 'MultiHeadAttention') return attentionRefusal(config) === undefined;
  if (CONV1D_CLASSES.has(className)) return conv1dRefusal(className, config) === undefined;
  return false;
}
