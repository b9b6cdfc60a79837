// Stock TF.js in Node as the reference: the original model files loaded with
// tf.loadLayersModel on the cpu backend, predicting the same inputs the servers get.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import type { FileSet } from '../../converter/model.ts';
import { memoryHandler } from '../../shared/model-loader.ts';
import { seededRandom } from '../../shared/random.ts';
import type { ModelJson } from '../../shared/schemas/model-json.ts';

function memoryIO(files: FileSet): tf.io.IOHandler {
  // Not validated: the stock loaders read model.json as it is.
  const modelJson = JSON.parse(new TextDecoder().decode(files.get('model.json')!)) as ModelJson;
  return memoryHandler(modelJson, (p) => files.get(p)!);
}

/** Predictions of a layers or graph model (model.json + its shards) on the cpu backend. */
export async function stockPredict(files: FileSet, input: { values: Float32Array; shape: number[] }, kind: 'layers' | 'graph' = 'layers'): Promise<number[][]> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    const model = kind === 'layers' ? await loadLayersModel(memoryIO(files)) : await loadGraphModel(memoryIO(files));
    try {
      return tf.tidy(() => (model.predict(tf.tensor(input.values, input.shape)) as tf.Tensor).arraySync() as number[][]);
    } finally {
      model.dispose();
    }
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}

/** Deterministic images in [0, 1), shape [batch, size, size, 3]. */
export function testImages(batch: number, size = 224, seed = 5): { values: Float32Array; shape: number[]; nested: number[][][][] } {
  const random = seededRandom(seed);
  const values = new Float32Array(batch * size * size * 3);
  for (let i = 0; i < values.length; i++) values[i] = Math.fround(random());
  const nested: number[][][][] = [];
  let k = 0;
  for (let b = 0; b < batch; b++) {
    const image: number[][][] = [];
    for (let y = 0; y < size; y++) {
      const row: number[][] = [];
      for (let x = 0; x < size; x++) row.push([values[k++]!, values[k++]!, values[k++]!]);
      image.push(row);
    }
    nested.push(image);
  }
  return { values, shape: [batch, size, size, 3], nested };
}

export function maxAbsDiff(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, i) => row.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i]![j]!)))));
  return max;
}
