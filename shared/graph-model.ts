// TF.js's GraphModel (tfjs-converter, about 1 MB of JavaScript), for the models the kernel plan
// cannot run and for stored graph models. The loader imports this module only when such a model
// loads, so a process serving compiled layers models never imports tfjs-converter.
import * as tf from '@tensorflow/tfjs-core';
import { GraphModel, loadGraphModel } from '@tensorflow/tfjs-converter';

export { type GraphModel, loadGraphModel };

/** A graph model over weights that are already tensors (it owns them from here: disposed with it, or on failure). */
export function graphModelOf(modelTopology: object, weights: tf.NamedTensorMap): GraphModel {
  const artifacts: tf.io.ModelArtifacts = { modelTopology, format: 'graph-model' };
  const model = new GraphModel(tf.io.fromMemory(artifacts));
  try {
    // GraphModel's own last step of a load, given the weights as tensors rather than bytes to decode.
    (model as unknown as { loadWithWeightMap(artifacts: tf.io.ModelArtifacts, weights: tf.NamedTensorMap): void }).loadWithWeightMap(artifacts, weights);
  } catch (error) {
    tf.dispose(weights);
    throw error;
  }
  return model;
}
