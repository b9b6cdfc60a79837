// Trains the demo mnist-cnn (scripts/demo-models.ts) once and writes its weights to
// scripts/demo-mnist-cnn.bin (float32 little-endian, in getWeights order), so `npm start` and the
// tests serve a CNN that reads digits without training at start-up (training takes minutes on a
// pure backend). Starts from the demo's seeded weights; 4,000 of the `mnist` package's digits in
// a seeded order, 3 epochs of Adam; prints its accuracy on 1,000 other digits.
// Run: `npx tsx scripts/train-demo-mnist.ts`.
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { useNodeBackend } from '../cli/backend.ts';
import { installFastGradients, permutation, readDigits } from '../models/index.ts';
import { MNIST_WEIGHTS_PATH, mnistCnnLayers, setSeededWeights } from './demo-models.ts';

const TRAIN = 4000;
const TEST = 1000;

console.log(await useNodeBackend());
const restore = installFastGradients();
const digits = readDigits();
const order = permutation(digits.labels.length, 5);
const batch = (ids: number[]) => {
  const pixels = new Float32Array(ids.length * 784);
  ids.forEach((id, k) => pixels.set(digits.pixels.subarray(id * 784, (id + 1) * 784), k * 784));
  return {
    x: tf.tensor4d(pixels, [ids.length, 28, 28, 1]),
    y: tf.oneHot(
      tf.tensor1d(
        ids.map((i) => digits.labels[i]!),
        'int32',
      ),
      10,
    ),
  };
};
const train = batch(order.slice(0, TRAIN));
const test = batch(order.slice(TRAIN, TRAIN + TEST));
const model = mnistCnnLayers();
setSeededWeights(model, 11);
model.compile({ optimizer: tf.train.adam(0.005), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
const started = Date.now();
await model.fit(train.x, train.y, { epochs: 3, batchSize: 64, shuffle: false, verbose: 0 });
const accuracy = (model.evaluate(test.x, test.y) as tf.Scalar[])[1]!.dataSync()[0]!;
const weights = model.getWeights();
const bytes = new Uint8Array(weights.reduce((n, w) => n + w.size * 4, 0));
let offset = 0;
for (const w of weights) {
  bytes.set(new Uint8Array((w.dataSync() as Float32Array).slice().buffer), offset);
  offset += w.size * 4;
}
writeFileSync(MNIST_WEIGHTS_PATH, bytes);
restore();
console.log(
  `trained ${TRAIN} digits x 3 epochs in ${((Date.now() - started) / 1000).toFixed(1)} s; accuracy on ${TEST} others ${(accuracy * 100).toFixed(1)}%; ${bytes.length} bytes → ${MNIST_WEIGHTS_PATH}`,
);
