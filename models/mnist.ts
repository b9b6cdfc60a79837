// MNIST CNN: two Conv2D + MaxPooling blocks, then Dense layers with Dropout; 10-way softmax.
import * as tfl from '@tensorflow/tfjs-layers';
import { loadMnist } from './data/mnist.ts';
import type { ModelDefinition, Regularization } from './types.ts';

export interface CnnOptions {
  name: string;
  classes: number;
  /** Name of the output layer. */
  output: string;
  /** Names the base's weight layers conv_1, conv_2, dense_1, so that another CNN can take their weights. */
  namedBase?: boolean;
}

/** The CNN with a softmax head of `classes` units (the transfer lab builds it with 5). */
export function buildCnn({ dropout = 0, batchNorm = false, l2 = 0 }: Regularization, { name, classes, output, namedBase = false }: CnnOptions): tfl.LayersModel {
  const kernelRegularizer = l2 > 0 ? tfl.regularizers.l2({ l2 }) : undefined;
  const named = (name: string) => (namedBase ? { name } : {});
  const model = tfl.sequential({ name });
  // The ReLU stays inside Conv2D: TF.js fuses a linear Conv2D + bias into FusedConv2D while
  // training, whose gradient calls the slow Conv2DBackpropFilter kernel directly (see
  // train/fast-gradients.ts). BatchNormalization therefore follows the activation.
  const block = (filters: number, first: boolean) => {
    model.add(tfl.layers.conv2d({ ...(first ? { inputShape: [28, 28, 1] } : {}), ...named(`conv_${first ? 1 : 2}`), filters, kernelSize: 3, padding: 'same', activation: 'relu', kernelRegularizer }));
    if (batchNorm) model.add(tfl.layers.batchNormalization());
    model.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  };
  block(16, true);
  block(32, false);
  model.add(tfl.layers.flatten());
  if (dropout > 0) model.add(tfl.layers.dropout({ rate: dropout / 2 }));
  model.add(tfl.layers.dense({ ...named('dense_1'), units: 128, activation: 'relu', kernelRegularizer }));
  if (dropout > 0) model.add(tfl.layers.dropout({ rate: dropout }));
  model.add(tfl.layers.dense({ units: classes, activation: 'softmax', name: output }));
  return model;
}

const build = (regularization: Regularization) => buildCnn(regularization, { name: 'mnist_cnn', classes: 10, output: 'digit' });

export const mnist: ModelDefinition = {
  name: 'mnist',
  summary: 'handwritten digits, CNN (Conv2D, MaxPooling, Dense, Dropout)',
  task: 'multiclass-classification',
  classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  defaults: { epochs: 10, batchSize: 64, learningRate: 0.002, validationSplit: 0.1, dropout: 0.5, lrSchedule: 'exponential:0.75' },
  supports: ['dropout', 'batchNorm', 'l2'],
  loadData: loadMnist,
  build,
  loss: 'categoricalCrossentropy',
  metrics: ['accuracy'],
};
