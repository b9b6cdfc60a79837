// Demo models built in code with fixed weights, so `npm start`, the tests and the
// benchmarks have models on any clone (no ../shared/fixtures needed):
//   - iris-dense: Dense(4→16 relu) → Dense(16→3 softmax), the "tiny dense model", species labels
//     (weights from a seeded generator: the same bytes on every run)
//   - mnist-cnn:  Conv(8) → MaxPool → Conv(16) → MaxPool → Flatten → Dense(10 softmax), on 28x28x1,
//                 digit labels and a 28x28 grayscale image spec (pixels / 255), for :classify;
//                 trained: its weights are demo-mnist-cnn.bin, written by train-demo-mnist.ts
// Node only (needs a backend).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { FileSet } from '../converter/index.ts';
import type { ConversionOptions } from '../shared/options/conversion.ts';
import { modelFiles } from '../models/index.ts';
import { seededRandom } from '../shared/random.ts';

export interface DemoModel {
  name: string;
  description: string;
  files: FileSet;
  /** The converter's --quantize for it. */
  quantize: string;
  /** Class names (--labels) and image spec (--image), for :classify. */
  classifier?: Pick<ConversionOptions, 'labels' | 'image'>;
  /** A valid example instance (TF Serving row format) for curl examples and benches. */
  example: () => unknown;
}

export function setSeededWeights(model: tfl.LayersModel, seed: number): void {
  const random = seededRandom(seed);
  const weights = model.getWeights().map((w) => {
    const fanIn = w.shape.length > 1 ? w.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
    const scale = w.shape.length > 1 ? Math.sqrt(2 / fanIn) : 0.05;
    const values = new Float32Array(w.size);
    for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * scale;
    return tf.tensor(values, w.shape);
  });
  model.setWeights(weights);
  tf.dispose(weights);
}

export async function buildIrisDense(): Promise<FileSet> {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [4], units: 16, activation: 'relu', name: 'hidden' }), tfl.layers.dense({ units: 3, activation: 'softmax', name: 'species' })],
  });
  setSeededWeights(model, 7);
  try {
    return await modelFiles(model);
  } finally {
    model.dispose();
  }
}

/** The trained weights of mnist-cnn (float32 little-endian, in getWeights order). */
export const MNIST_WEIGHTS_PATH = path.join(path.dirname(new URL(import.meta.url).pathname), 'demo-mnist-cnn.bin');

export function mnistCnnLayers(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu', name: 'conv1' }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', name: 'conv2' }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 10, activation: 'softmax', name: 'digits' }),
    ],
  });
}

export async function buildMnistCnn(): Promise<FileSet> {
  const model = mnistCnnLayers();
  const bytes = readFileSync(MNIST_WEIGHTS_PATH);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let offset = 0;
  const weights = model.getWeights().map((w) => {
    const tensor = tf.tensor(all.subarray(offset, offset + w.size), w.shape);
    offset += w.size;
    return tensor;
  });
  if (offset !== all.length) throw new Error(`${MNIST_WEIGHTS_PATH}: ${all.length} weights, the model has ${offset}: run npx tsx scripts/train-demo-mnist.ts`);
  model.setWeights(weights);
  tf.dispose(weights);
  try {
    return await modelFiles(model);
  } finally {
    model.dispose();
  }
}

export async function demoModels(): Promise<DemoModel[]> {
  return [
    {
      name: 'iris-dense',
      description: 'tiny dense classifier: 4 features → 3 classes (fixed seeded weights)',
      files: await buildIrisDense(),
      quantize: 'float16',
      classifier: { labels: ['setosa', 'versicolor', 'virginica'] },
      example: () => [5.1, 3.5, 1.4, 0.2],
    },
    {
      name: 'mnist-cnn',
      description: 'MNIST CNN: 28x28x1 image → 10 digits (trained on 4,000 digits, uint8)',
      files: await buildMnistCnn(),
      quantize: 'uint8',
      classifier: { labels: Array.from({ length: 10 }, (_, digit) => String(digit)), image: { height: 28, width: 28, channels: 'grayscale', scale: 1 / 255, offset: 0 } },
      example: () => {
        const random = seededRandom(3);
        return Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => [Math.round(random() * 100) / 100]));
      },
    },
  ];
}
