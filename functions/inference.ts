// Runs one request's prediction: through the model's micro-batcher when the runtime gave it one
// (runtime/batcher.ts: concurrent requests merged along the batch axis), else on its own.
import type { LoadedModel } from '../shared/model-loader.ts';
import { batcherOf } from './runtime/batcher.ts';
import { predictOnce, type InputTensor, type OutputTensor } from './runtime/predict.ts';

export type { InputTensor, OutputTensor };

/** Inputs in the model's signature order; outputs in the signature's order. */
export function runModel(model: LoadedModel, inputs: InputTensor[]): Promise<OutputTensor[]> {
  const batcher = batcherOf(model);
  return batcher ? batcher.run(inputs) : predictOnce(model, inputs);
}
