// Monthly CO2 forecaster: a recurrent layer (LSTM, or GRU for co2-gru) over the last 24 monthly
// changes, then Dense; trained to predict next month's change (see data/co2.ts).
import * as tfl from '@tensorflow/tfjs-layers';
import { CO2_WINDOW, loadCo2 } from './data/co2.ts';
import type { ModelDefinition, Regularization } from './types.ts';

function recurrentModel(cell: 'lstm' | 'gru') {
  return ({ dropout = 0, batchNorm = false, l2 = 0 }: Regularization): tfl.LayersModel => {
    const kernelRegularizer = l2 > 0 ? tfl.regularizers.l2({ l2 }) : undefined;
    const model = tfl.sequential({ name: `co2_${cell}` });
    // Glorot rather than the default Orthogonal recurrent initializer: tfjs-layers' Orthogonal calls
    // tensor.flatten(), a chained op that only the @tensorflow/tfjs union package registers.
    const options = { inputShape: [CO2_WINDOW, 1], units: 32, recurrentInitializer: 'glorotUniform' as const, kernelRegularizer, ...(dropout > 0 ? { dropout } : {}) };
    model.add(cell === 'lstm' ? tfl.layers.lstm(options) : tfl.layers.gru(options));
    if (batchNorm) model.add(tfl.layers.batchNormalization());
    model.add(tfl.layers.dense({ units: 16, activation: 'relu', kernelRegularizer }));
    model.add(tfl.layers.dense({ units: 1, name: 'change' }));
    return model;
  };
}

const shared = {
  task: 'regression',
  defaults: { epochs: 60, batchSize: 32, learningRate: 0.003, validationSplit: 0.1 },
  supports: ['dropout', 'batchNorm', 'l2'],
  loadData: loadCo2,
  loss: 'meanSquaredError',
  metrics: ['mae'],
} as const;

export const co2: ModelDefinition = { ...shared, name: 'co2', summary: 'monthly CO2 forecaster, LSTM', build: recurrentModel('lstm') };
export const co2Gru: ModelDefinition = { ...shared, name: 'co2-gru', summary: 'monthly CO2 forecaster, GRU', build: recurrentModel('gru') };
