// Whether the graph compiler lowers a Keras layer class with a given config: the Keras reader asks
// before refusing a layer TF.js layers cannot build (GRU reset_after=True), so such a model reaches
// the pipeline, which compiles it to a graph model (or refuses it naming what the compiler cannot lower).
import { RECURRENT_CLASSES, recurrentRefusal } from './lower/recurrent.ts';

export function canLower(className: string, config: Record<string, unknown>): boolean {
  if (RECURRENT_CLASSES.has(className)) return recurrentRefusal(className, config) === undefined;
  return false;
}
