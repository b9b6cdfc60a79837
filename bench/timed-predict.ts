// One in-process prediction, timed as the benches count it: tensor in, predict, read back, dispose.
import * as tf from '@tensorflow/tfjs-core';
import type { LoadedModel } from '../shared/model-loader.ts';

export interface BenchInput {
  values: Float32Array;
  shape: number[];
}

/** Milliseconds of one batch through `model`, from the input tensor's creation to its outputs read. */
export async function timedPredict(model: LoadedModel, input: BenchInput): Promise<number> {
  const start = performance.now();
  const tensor = tf.tensor(input.values, input.shape);
  const outputs = await model.predict([tensor]);
  await Promise.all(outputs.map((t) => t.data()));
  tf.dispose([tensor, ...outputs]);
  return performance.now() - start;
}
