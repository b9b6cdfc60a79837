// Runs decoded models (layers, or compiled to a graph) through the stock TF.js loaders and
// compares their outputs: the graph compiler's tests measure every lowering this way.
import type * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import type { DecodedModel } from '../../converter/model.ts';
import { encodeAndShard, loadConverted } from './keras.ts';

/** The first output of a decoded model on x, loaded as stock TF.js would load its files. */
export async function predictDecoded(model: DecodedModel, x: tf.Tensor): Promise<{ values: Float32Array; shape: number[] }> {
  const loaded = await loadConverted(encodeAndShard(model));
  try {
    const [y] = await loaded.predict([x]);
    const out = { values: (await y!.data()) as Float32Array, shape: y!.shape };
    y!.dispose();
    return out;
  } finally {
    loaded.dispose();
  }
}

/** The largest difference divided by max(1, largest |a|); the lengths must match. */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(b.length).toBe(a.length);
  let diff = 0;
  let peak = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    peak = Math.max(peak, Math.abs(a[i]!));
  }
  return diff / Math.max(1, peak);
}
