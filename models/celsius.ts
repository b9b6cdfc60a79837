// Celsius → Fahrenheit: the classic first network. One Dense unit learns F = 1.8·C + 32 with Adam and MSE.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { seededRandom } from './data/random.ts';
import type { DataOptions, Dataset, ModelDefinition, Regularization } from './types.ts';

export const toFahrenheit = (celsius: number) => celsius * 1.8 + 32;

function temperatures(count: number, seed: number): { x: tf.Tensor; y: tf.Tensor } {
  const random = seededRandom(seed);
  // Centred on 0 °C: the slope and the offset then learn independently (uncorrelated gradients).
  const celsius = Float32Array.from({ length: count }, () => -100 + random() * 200);
  return { x: tf.tensor2d(celsius, [count, 1]), y: tf.tensor2d(celsius.map(toFahrenheit), [count, 1]) };
}

async function loadData({ limit, seed }: DataOptions): Promise<Dataset> {
  const trainCount = Math.min(limit ?? 1000, 1000);
  return {
    train: temperatures(trainCount, seed),
    test: temperatures(200, seed + 1),
    description: `${trainCount} random temperatures in -100..100 °C for training, 200 others held out (F = 1.8·C + 32)`,
    targetScale: 1,
    unit: '°F',
    preprocessing: { input: 'temperature in °C, shape [n, 1]', output: 'temperature in °F' },
  };
}

function build({ l2 = 0 }: Regularization): tfl.LayersModel {
  return tfl.sequential({
    name: 'celsius_to_fahrenheit',
    layers: [tfl.layers.inputLayer({ inputShape: [1], name: 'celsius' }), tfl.layers.dense({ units: 1, name: 'fahrenheit', ...(l2 > 0 ? { kernelRegularizer: tfl.regularizers.l2({ l2 }) } : {}) })],
  });
}

export const celsius: ModelDefinition = {
  name: 'celsius',
  summary: 'celsius → fahrenheit, one Dense unit (Adam, MSE)',
  task: 'regression',
  defaults: { epochs: 60, batchSize: 16, learningRate: 0.1, validationSplit: 0.1, lrSchedule: 'exponential:0.94' },
  supports: ['l2'],
  loadData,
  build,
  loss: 'meanSquaredError',
  metrics: ['mae'],
};
