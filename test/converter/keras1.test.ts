// Keras 1 configs (converter/read/keras/keras1.ts) rewritten as Keras 2: a generated Keras-1-style
// Sequential (bare layer list, Convolution2D / nb_filter / border_mode / subsample / output_dim / p /
// dim_ordering / init) and a functional model with a Merge, translated and built by stock TF.js,
// compute what the same networks built directly in TF.js compute with the same weights (1e-6);
// what Keras 1 cannot give Keras 2 (channels first, recurrent per-gate weights, merge modes, BN
// mode 2) is refused naming the layer and what to do.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { translateModelConfig } from '../../converter/read/keras/config.ts';
import { keras1ToKeras2 } from '../../converter/read/keras/keras1.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { relativeDifference } from '../helpers/graph-compare.ts';

beforeAll(async () => {
  await useNodeBackend();
});

const L = (class_name: string, config: Record<string, unknown>, inbound?: unknown[]) => ({ class_name, config, ...(inbound ? { name: config.name, inbound_nodes: inbound } : {}) });
const keras1 = { init: 'glorot_uniform', W_regularizer: null, b_regularizer: null, activity_regularizer: null, W_constraint: null, b_constraint: null, trainable: true };

/** Keras 1 config → Keras 2 → the model TF.js builds from it. */
async function build(config: unknown): Promise<tfl.LayersModel> {
  const { config: rewritten, problems } = keras1ToKeras2(config, 'tensorflow');
  expect(problems).toEqual([]);
  const modelConfig = translateModelConfig(rewritten, { kerasMajor: 2, source: 'model.h5' });
  return tfl.models.modelFromJSON({ modelTopology: { keras_version: '1.2.1', backend: 'tensorflow', model_config: modelConfig } } as never);
}

/** Both models on the same input, with the translated one given the direct one's weights. */
async function compare(translated: tfl.LayersModel, direct: tfl.LayersModel, inputShape: number[]): Promise<number> {
  setFixedWeights(direct, 5);
  translated.setWeights(direct.getWeights());
  const x = tf.tensor(fixedValues(2 * inputShape.reduce((a, b) => a * b, 1), 9), [2, ...inputShape]);
  const [a, b] = [translated.predict(x) as tf.Tensor, direct.predict(x) as tf.Tensor];
  expect(a.shape).toEqual(b.shape);
  const drift = relativeDifference(await b.data(), await a.data());
  tf.dispose([x, a, b]);
  return drift;
}

describe('Keras 1 configs', () => {
  it('a Keras-1-style Sequential (Convolution2D, BatchNormalization, MaxPooling2D, Flatten, Dropout, Dense) builds in TF.js and equals the same network within 1e-6', async () => {
    const config = {
      class_name: 'Sequential',
      config: [
        L('Convolution2D', {
          ...keras1,
          name: 'convolution2d_1',
          nb_filter: 4,
          nb_row: 3,
          nb_col: 2,
          border_mode: 'same',
          subsample: [2, 2],
          dim_ordering: 'tf',
          activation: 'relu',
          bias: true,
          batch_input_shape: [null, 8, 8, 3],
          input_dtype: 'float32',
        }),
        L('BatchNormalization', { name: 'bn', mode: 0, axis: -1, epsilon: 0.001, momentum: 0.99, beta_init: 'zero', gamma_init: 'one', gamma_regularizer: null, beta_regularizer: null }),
        L('MaxPooling2D', { name: 'pool', pool_size: [2, 2], strides: null, border_mode: 'valid', dim_ordering: 'default' }),
        L('Flatten', { name: 'flatten' }),
        L('Dropout', { name: 'drop', p: 0.5 }),
        L('Dense', { ...keras1, name: 'dense_1', output_dim: 3, activation: 'softmax', input_dim: 16, bias: true }),
      ],
    };
    const translated = await build(config);
    const direct = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: [3, 2], padding: 'same', strides: 2, activation: 'relu' }),
        tfl.layers.batchNormalization({ epsilon: 0.001 }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    expect(translated.layers.map((l) => l.getClassName())).toEqual(['Conv2D', 'BatchNormalization', 'MaxPooling2D', 'Flatten', 'Dropout', 'Dense']);
    expect(await compare(translated, direct, [8, 8, 3])).toBeLessThan(1e-6);
  });

  it('a Keras 1 functional Model with a Merge (concat) and three-element inbound nodes equals the same network within 1e-6', async () => {
    const config = {
      class_name: 'Model',
      config: {
        name: 'model_1',
        input_layers: [['input_1', 0, 0]],
        output_layers: [['dense_1', 0, 0]],
        layers: [
          L('InputLayer', { name: 'input_1', input_dtype: 'float32', batch_input_shape: [null, 6, 2], sparse: false }, []),
          L('Convolution1D', { ...keras1, name: 'conv_a', nb_filter: 3, filter_length: 3, border_mode: 'same', subsample_length: 1, activation: 'tanh', bias: true, input_dim: 2 }, [
            [['input_1', 0, 0]],
          ]),
          L('Convolution1D', { ...keras1, name: 'conv_b', nb_filter: 2, filter_length: 1, border_mode: 'valid', subsample_length: 1, activation: 'linear', bias: false }, [[['input_1', 0, 0]]]),
          L(
            'Merge',
            {
              name: 'merge_1',
              mode: 'concat',
              concat_axis: -1,
              dot_axes: -1,
              mode_type: 'raw',
              output_shape: null,
              output_shape_type: 'raw',
              output_mask: null,
              output_mask_type: 'raw',
              arguments: {},
            },
            [
              [
                ['conv_a', 0, 0],
                ['conv_b', 0, 0],
              ],
            ],
          ),
          L('Flatten', { name: 'flatten_1' }, [[['merge_1', 0, 0]]]),
          L('Dense', { ...keras1, name: 'dense_1', output_dim: 2, activation: 'sigmoid', bias: true, input_dim: 30 }, [[['flatten_1', 0, 0]]]),
        ],
      },
    };
    const translated = await build(config);
    const input = tfl.input({ shape: [6, 2] });
    const a = tfl.layers.conv1d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'tanh' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv1d({ filters: 2, kernelSize: 1, useBias: false }).apply(input) as tfl.SymbolicTensor;
    const merged = tfl.layers.concatenate({ axis: -1 }).apply([a, b]) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, activation: 'sigmoid' }).apply(tfl.layers.flatten().apply(merged)) as tfl.SymbolicTensor;
    const direct = tfl.model({ inputs: input, outputs: out });
    expect(await compare(translated, direct, [6, 2])).toBeLessThan(1e-6);
  });

  it('refuses channels-first layers, Keras 1 recurrent layers, merge modes Keras 2 lacks and BatchNormalization mode 2, by name', () => {
    const config = {
      class_name: 'Sequential',
      config: [
        L('Convolution2D', { name: 'conv_th', nb_filter: 2, nb_row: 3, nb_col: 3, dim_ordering: 'th', batch_input_shape: [null, 3, 8, 8] }),
        L('BatchNormalization', { name: 'bn2', mode: 2 }),
        L('LSTM', { name: 'lstm_1', output_dim: 4 }),
        L('Merge', { name: 'merge_cos', mode: 'cos' }),
      ],
    };
    const { problems } = keras1ToKeras2(config, 'tensorflow');
    expect(problems).toEqual([
      expect.stringMatching(/layer conv_th \(Convolution2D\) uses dim_ordering='th'.*save it again/),
      expect.stringMatching(/layer bn2 \(BatchNormalization\) has mode=2/),
      expect.stringMatching(/layer lstm_1 \(LSTM\) is a Keras 1 recurrent layer.*load the file in Keras 2 and save it again/),
      expect.stringMatching(/layer merge_cos \(Merge\) merges with mode="cos"/),
    ]);
    // With the Theano backend, dim_ordering 'default' meant channels first.
    const pool = { class_name: 'Sequential', config: [L('MaxPooling2D', { name: 'pool', dim_ordering: 'default', batch_input_shape: [null, 3, 4, 4] })] };
    expect(keras1ToKeras2(pool, 'theano').problems).toEqual([expect.stringMatching(/layer pool \(MaxPooling2D\) uses dim_ordering='th'/)]);
  });
});
