// The transfer-learning steps of the training job (lab 5; the plan is a model's `transfer`, see
// types.ts): train the source model, give its base to the new model frozen, unfreeze the layers
// to fine-tune, and train the same model from scratch on the same data for comparison.
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Dataset, ModelDefinition, Regularization, Transfer } from '../types.ts';

/** Trains the source model on data.source; returns it (the caller disposes it) and its last training accuracy. */
export async function trainSource(
  definition: ModelDefinition,
  transfer: Transfer,
  data: Dataset,
  regularization: Regularization,
  optimizer: tf.Optimizer,
): Promise<{ source: LayersModel; accuracy: number }> {
  const source = transfer.buildSource(regularization);
  source.compile({ optimizer, loss: definition.loss, metrics: ['accuracy'] });
  const history = await source.fit(data.source!.x, data.source!.y, { epochs: transfer.sourceEpochs, batchSize: transfer.sourceBatchSize, shuffle: true, verbose: 0 });
  const accuracy = history.history.acc ?? history.history.accuracy ?? [];
  return { source, accuracy: Number(accuracy[accuracy.length - 1] ?? Number.NaN) };
}

/** Copies the base layers' weights from `source` into `model` and freezes them (recompile after). */
export function takeFrozenBase(source: LayersModel, model: LayersModel, transfer: Transfer): void {
  for (const name of transfer.baseLayers) {
    const layer = model.getLayer(name);
    layer.setWeights(source.getLayer(name).getWeights());
    layer.trainable = false;
  }
}

/** Makes the fine-tuning layers trainable again (recompile after). */
export function unfreezeForFineTuning(model: LayersModel, transfer: Transfer): void {
  for (const name of transfer.fineTuneLayers) model.getLayer(name).trainable = true;
}

/**
 * Trains `model` (its base frozen by takeFrozenBase, compiled) for `epochs`: the new head for
 * transfer.headEpochs, then, recompiled by `recompile(rateFactor)` with the fine-tuning layers
 * unfrozen, the rest. `fitEpochs(from, to)` runs model.fit over those epochs.
 */
export async function fitInPhases(
  model: LayersModel,
  transfer: Transfer,
  epochs: number,
  fitEpochs: (from: number, to: number) => Promise<unknown>,
  recompile: (rateFactor: number) => void,
): Promise<void> {
  await fitEpochs(0, Math.min(epochs, transfer.headEpochs));
  if (epochs <= transfer.headEpochs) return;
  unfreezeForFineTuning(model, transfer);
  recompile(transfer.fineTuneRate);
  await fitEpochs(transfer.headEpochs, epochs);
}

/** The same model trained from scratch, as long and on the same data; its predictions on the test inputs. */
export async function fromScratch(definition: ModelDefinition, data: Dataset, regularization: Regularization, optimizer: tf.Optimizer, epochs: number, batchSize: number): Promise<tf.Tensor> {
  const model = definition.build(regularization);
  model.compile({ optimizer, loss: definition.loss, metrics: [...definition.metrics] });
  await model.fit(data.train.x, data.train.y, { epochs, batchSize, shuffle: true, verbose: 0 });
  const predictions = model.predict(data.test.x) as tf.Tensor;
  model.dispose();
  return predictions;
}
