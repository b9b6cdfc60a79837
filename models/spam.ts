// Spam vs ham text classifier: Embedding → GlobalAveragePooling1D → Dense → sigmoid.
import * as tfl from '@tensorflow/tfjs-layers';
import { loadSpam, SPAM_SEQUENCE, SPAM_VOCABULARY } from './data/spam.ts';
import type { ModelDefinition, Regularization } from './types.ts';

function build({ dropout = 0, batchNorm = false, l2 = 0 }: Regularization): tfl.LayersModel {
  const kernelRegularizer = l2 > 0 ? tfl.regularizers.l2({ l2 }) : undefined;
  const model = tfl.sequential({ name: 'spam_classifier' });
  model.add(tfl.layers.embedding({ inputDim: SPAM_VOCABULARY, outputDim: 32, inputLength: SPAM_SEQUENCE, ...(l2 > 0 ? { embeddingsRegularizer: tfl.regularizers.l2({ l2 }) } : {}) }));
  model.add(tfl.layers.globalAveragePooling1d());
  if (batchNorm) model.add(tfl.layers.batchNormalization());
  model.add(tfl.layers.dense({ units: 32, activation: 'relu', kernelRegularizer }));
  if (dropout > 0) model.add(tfl.layers.dropout({ rate: dropout }));
  model.add(tfl.layers.dense({ units: 1, activation: 'sigmoid', name: 'spam' }));
  return model;
}

export const spam: ModelDefinition = {
  name: 'spam',
  summary: 'spam vs ham mail, Embedding + pooling + Dense',
  task: 'binary-classification',
  classes: ['ham', 'spam'],
  defaults: { epochs: 15, batchSize: 32, learningRate: 0.002, validationSplit: 0.1, dropout: 0.3 },
  supports: ['dropout', 'batchNorm', 'l2'],
  loadData: loadSpam,
  build,
  loss: 'binaryCrossentropy',
  metrics: ['accuracy'],
};
