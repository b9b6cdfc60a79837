// Small TF.js models built in code with fixed weights, saved the way tfjs saves them
// (model.json + one weights file, models/train/save.ts), for tests that need no fixture.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { fileURLToPath } from 'node:url';
import type { FileSet } from '../../converter/model.ts';
import { modelFiles } from '../../models/train/save.ts';

export { WEIGHTS_FILE } from '../../models/train/save.ts';

/** Deterministic pseudo-random values in [-1, 1). */
export function fixedValues(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  let state = seed;
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    values[i] = (state / 2147483648) * 2 - 1;
  }
  return values;
}

/** Dense 16 → 32 (relu) → 4 (softmax), about 2.7 KB of float32 weights. */
export async function tinyDenseModel(): Promise<FileSet> {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [16], units: 32, activation: 'relu', name: 'hidden' }), tfl.layers.dense({ units: 4, activation: 'softmax', name: 'probs' })],
  });
  model.setWeights(
    model.weights.map((w, i) => {
      const shape = w.shape as number[];
      return tf.tensor(
        fixedValues(
          shape.reduce((a, b) => a * b, 1),
          i + 1,
        ),
        shape,
      );
    }),
  );
  const files = await modelFiles(model);
  model.dispose();
  return files;
}

/** Gives every weight of a model fixed values: BatchNormalization variances positive and gammas around 1, so a wrong fold shows. */
export function setFixedWeights(model: tfl.LayersModel, seed: number): void {
  model.setWeights(
    model.weights.map((w, i) => {
      const shape = w.shape as number[];
      const values = fixedValues(
        shape.reduce((a, b) => a * b, 1),
        seed + i,
      );
      // Variable names get a _n suffix when a layer name is reused in the process.
      if (/moving_variance(_\d+)?$/.test(w.name)) values.forEach((v, j) => (values[j] = 0.2 + Math.abs(v)));
      if (/gamma(_\d+)?$/.test(w.name)) values.forEach((v, j) => (values[j] = 1 + 0.8 * v));
      return tf.tensor(values, shape);
    }),
  );
}

/** The repo's own small calibration PNGs (test/fixtures/images/calibration). */
export const OWN_CALIBRATION_IMAGES = fileURLToPath(new URL('../fixtures/images/calibration', import.meta.url));

/** Conv 3x3 → global average → Dense 3 over [batch, 8, 8, 3] images (batch fixed when given). */
export async function tinyImageModel(batch?: number) {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ ...(batch ? { batchInputShape: [batch, 8, 8, 3] } : { inputShape: [8, 8, 3] }), filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }),
      tfl.layers.globalAveragePooling2d({ name: 'pool' }),
      tfl.layers.dense({ units: 3, activation: 'softmax', name: 'probs' }),
    ],
  });
  model.setWeights(model.weights.map((w, i) => tf.tensor(fixedValues(w.shape.reduce((a, b) => a! * b!, 1)!, i + 5), w.shape as number[])));
  const files = await modelFiles(model);
  model.dispose();
  return files;
}
