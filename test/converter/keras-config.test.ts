// The Keras 3 config translator and the per-layer weight mapping, on hand-written Keras 3 configs
// for layers no fixture has (GRU, SimpleRNN, DepthwiseConv2D, Bidirectional, Add/Concatenate,
// nested models...). Each model is translated, built by tfjs-layers, given random weights through
// the same collectWeights the readers use, saved, reloaded with the stock loader and must predict
// exactly what the directly built model predicts: every array reached the right variable.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConversionError } from '../../shared/errors.ts';
import type { DecodedModel } from '../../converter/model.ts';
import { translateModelConfig } from '../../converter/read/keras/config.ts';
import type { KerasLayer } from '../../converter/read/keras/config-types.ts';
import type { NumericArray } from '../../converter/read/keras/hdf5.ts';
import { collectWeights, type WeightScope } from '../../converter/read/keras/weights.ts';
import { encodeAndShard, loadConverted } from '../helpers/keras.ts';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

const policy = (name = 'float32') => ({ module: 'keras', class_name: 'DTypePolicy', config: { name }, registered_name: null });
const init = (className: string, config: object = { seed: null }) => ({ module: 'keras.initializers', class_name: className, config, registered_name: null });

/** A layer as Keras 3 serializes it in config.json. */
function k3(className: string, config: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { module: 'keras.layers', class_name: className, config: { trainable: true, dtype: policy(), ...config }, registered_name: null, ...extra };
}

const tensor = (layer: string, shape: (number | null)[]) => ({ class_name: '__keras_tensor__', config: { shape, dtype: 'float32', keras_history: [layer, 0, 0] } });
const node = (...args: unknown[]) => ({ args, kwargs: {} });

const translate = (config: unknown, kerasMajor = 3) => translateModelConfig(config, { kerasMajor, source: 'config.json' });

function refusalOf(config: unknown): string {
  try {
    translate(config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConversionError);
    return (error as Error).message;
  }
  throw new Error('expected a ConversionError');
}

/** Serves each layer's arrays from a built tfjs model, with fresh random values (positive, so variances stay valid). */
class RandomScope implements WeightScope {
  constructor(
    private readonly model: tfl.LayersModel,
    private readonly seed: { value: number },
  ) {}
  weightsOf(layer: KerasLayer): NumericArray[] {
    const target = this.model.getLayer(String(layer.config.name));
    const arrays = target.weights.map((v) => ({
      shape: v.shape as number[],
      dtype: 'float32' as const,
      values: tf.tidy(() => tf.randomUniform(v.shape as number[], 0.2, 1, 'float32', this.seed.value++).dataSync() as Float32Array),
    }));
    target.setWeights(arrays.map((a) => tf.tensor(a.values, a.shape)));
    return arrays;
  }
  nested(model: KerasLayer): WeightScope {
    return new RandomScope(this.model.getLayer(String(model.config.name)) as unknown as tfl.LayersModel, this.seed);
  }
  finish(): void {}
}

/** Translate → build with tfjs → random weights via collectWeights → save → stock load → same predictions. */
async function roundTrip(raw: unknown, input: tf.Tensor): Promise<DecodedModel> {
  const modelConfig = translate(raw);
  const built = await tfl.models.modelFromJSON({ modelTopology: modelConfig as unknown as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  const weights = collectWeights(modelConfig, new RandomScope(built, { value: 1 }));
  expect(weights.map((w) => w.name).sort()).toEqual(built.weights.map((v) => v.originalName).sort());
  const model: DecodedModel = {
    format: 'layers-model',
    modelJson: { format: 'layers-model', generatedBy: 'keras v3.6.0', convertedBy: 'edgeflow', modelTopology: { keras_version: '3.6.0', backend: 'tensorflow', model_config: modelConfig } },
    weights,
    source: { format: 'keras-v3', files: ['model.keras'], bytes: 0 },
  };
  const loaded = await loadConverted(encodeAndShard(model));
  const expected = built.predict(input) as tf.Tensor;
  const [actual] = await loaded.predict([input]);
  expect(actual!.shape).toEqual(expected.shape);
  const a = await actual!.data();
  const e = await expected.data();
  let maxDiff = 0;
  for (let i = 0; i < e.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - e[i]!));
  expect(maxDiff).toBeLessThan(1e-5);
  tf.dispose([expected, actual!]);
  loaded.dispose();
  built.dispose();
  return model;
}

describe('Keras 3 configs → tfjs-layers, weights by name', () => {
  it('conv stack: Conv2D, BatchNormalization, ReLU, SeparableConv2D, DepthwiseConv2D, pooling, Activation, Dropout, Flatten, Dense', async () => {
    const raw = {
      module: 'keras',
      class_name: 'Sequential',
      registered_name: null,
      config: {
        name: 'convs',
        trainable: true,
        dtype: policy(),
        layers: [
          { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 12, 12, 3], dtype: 'float32', sparse: false, name: 'image' }, registered_name: null },
          k3(
            'Conv2D',
            {
              name: 'conv',
              filters: 4,
              kernel_size: [3, 3],
              strides: [1, 1],
              padding: 'same',
              data_format: 'channels_last',
              dilation_rate: [1, 1],
              groups: 1,
              activation: 'linear',
              use_bias: true,
              kernel_initializer: init('GlorotUniform'),
              bias_initializer: init('Zeros', {}),
              kernel_regularizer: { module: 'keras.regularizers', class_name: 'L2', config: { l2: 0.01 }, registered_name: null },
              bias_regularizer: null,
              activity_regularizer: null,
              kernel_constraint: null,
              bias_constraint: null,
            },
            { build_config: { input_shape: [null, 12, 12, 3] } },
          ),
          k3('BatchNormalization', {
            name: 'bn',
            axis: -1,
            momentum: 0.99,
            epsilon: 0.001,
            center: true,
            scale: true,
            beta_initializer: init('Zeros', {}),
            gamma_initializer: init('Ones', {}),
            moving_mean_initializer: init('Zeros', {}),
            moving_variance_initializer: init('Ones', {}),
            beta_regularizer: null,
            gamma_regularizer: null,
            beta_constraint: null,
            gamma_constraint: null,
            synchronized: false,
          }),
          k3('ReLU', { name: 'relu6', max_value: 6.0, negative_slope: 0.0, threshold: 0.0 }),
          k3('SeparableConv2D', {
            name: 'sep',
            filters: 6,
            kernel_size: [3, 3],
            strides: [1, 1],
            padding: 'valid',
            data_format: 'channels_last',
            dilation_rate: [1, 1],
            depth_multiplier: 1,
            activation: 'relu',
            use_bias: true,
            depthwise_initializer: init('GlorotUniform'),
            pointwise_initializer: init('GlorotUniform'),
            bias_initializer: init('Zeros', {}),
            depthwise_regularizer: null,
            pointwise_regularizer: null,
            bias_regularizer: null,
            activity_regularizer: null,
            depthwise_constraint: null,
            pointwise_constraint: null,
            bias_constraint: null,
          }),
          k3('DepthwiseConv2D', {
            name: 'dw',
            kernel_size: [3, 3],
            strides: [1, 1],
            padding: 'same',
            data_format: 'channels_last',
            dilation_rate: [1, 1],
            depth_multiplier: 2,
            activation: 'linear',
            use_bias: false,
            depthwise_initializer: init('GlorotUniform'),
            bias_initializer: init('Zeros', {}),
            depthwise_regularizer: null,
            bias_regularizer: null,
            activity_regularizer: null,
            depthwise_constraint: null,
            bias_constraint: null,
          }),
          k3('BatchNormalization', {
            name: 'bn_no_scale',
            axis: -1,
            momentum: 0.99,
            epsilon: 0.001,
            center: true,
            scale: false,
            beta_initializer: init('Zeros', {}),
            gamma_initializer: init('Ones', {}),
            moving_mean_initializer: init('Zeros', {}),
            moving_variance_initializer: init('Ones', {}),
          }),
          k3('MaxPooling2D', { name: 'maxpool', pool_size: [2, 2], padding: 'valid', strides: [2, 2], data_format: 'channels_last' }),
          k3('Activation', { name: 'silu', activation: 'silu' }),
          k3('AveragePooling2D', { name: 'avgpool', pool_size: [2, 2], padding: 'valid', strides: [1, 1], data_format: 'channels_last' }),
          k3('Dropout', { name: 'dropout', rate: 0.5, seed: 3, noise_shape: null }),
          k3('Flatten', { name: 'flatten', data_format: 'channels_last' }),
          k3('Dense', {
            name: 'logits',
            units: 5,
            activation: 'softmax',
            use_bias: true,
            kernel_initializer: init('HeNormal'),
            bias_initializer: init('Zeros', {}),
            lora_rank: null,
            quantization_config: null,
          }),
        ],
        build_input_shape: [null, 12, 12, 3],
      },
      build_config: { input_shape: [null, 12, 12, 3] },
    };
    const model = await roundTrip(raw, tf.randomUniform([2, 12, 12, 3], 0, 1, 'float32', 5));
    expect(model.weights.map((w) => w.name)).toEqual([
      'conv/kernel',
      'conv/bias',
      'bn/gamma',
      'bn/beta',
      'bn/moving_mean',
      'bn/moving_variance',
      'sep/depthwise_kernel',
      'sep/pointwise_kernel',
      'sep/bias',
      'dw/depthwise_kernel',
      'bn_no_scale/beta',
      'bn_no_scale/moving_mean',
      'bn_no_scale/moving_variance',
      'logits/kernel',
      'logits/bias',
    ]);
  });

  it('sequence stack without an InputLayer (shape from build_config): Embedding, SimpleRNN, GRU(reset_after=False), Bidirectional(LSTM), LSTM', async () => {
    const rnn = (className: string, name: string, units: number, extra: Record<string, unknown> = {}) =>
      k3(className, {
        name,
        units,
        activation: 'tanh',
        recurrent_activation: 'sigmoid',
        use_bias: true,
        return_sequences: true,
        return_state: false,
        go_backwards: false,
        stateful: false,
        unroll: false,
        kernel_initializer: init('GlorotUniform'),
        recurrent_initializer: 'glorot_uniform',
        bias_initializer: init('Zeros', {}),
        dropout: 0,
        recurrent_dropout: 0,
        seed: null,
        ...extra,
      });
    const raw = {
      module: 'keras',
      class_name: 'Sequential',
      registered_name: null,
      config: {
        name: 'text',
        trainable: true,
        dtype: policy(),
        layers: [
          k3(
            'Embedding',
            {
              name: 'embed',
              input_dim: 50,
              output_dim: 8,
              embeddings_initializer: init('RandomUniform', { minval: -0.05, maxval: 0.05, seed: null }),
              embeddings_regularizer: null,
              embeddings_constraint: null,
              mask_zero: false,
            },
            { build_config: { input_shape: [null, 7] } },
          ),
          rnn('SimpleRNN', 'simple', 6),
          rnn('GRU', 'gru', 5, { reset_after: false }),
          k3('Bidirectional', {
            name: 'bidi',
            merge_mode: 'concat',
            layer: rnn('LSTM', 'forward_lstm', 3, { unit_forget_bias: true }),
            backward_layer: rnn('LSTM', 'backward_lstm', 3, { go_backwards: true }),
          }),
          rnn('LSTM', 'lstm', 4, { return_sequences: false, unit_forget_bias: true }),
          k3('Dense', { name: 'score', units: 1, activation: 'sigmoid', use_bias: true, kernel_initializer: init('GlorotUniform'), bias_initializer: init('Zeros', {}) }),
        ],
      },
      build_config: { input_shape: [null, 7] },
    };
    const tokens = tf.tensor2d([
      [1, 4, 9, 16, 25, 36, 49],
      [0, 0, 3, 5, 7, 11, 13],
    ]);
    const model = await roundTrip(raw, tokens);
    expect(model.weights.map((w) => `${w.name}[${w.shape.join(',')}]`)).toEqual([
      'embed/embeddings[50,8]',
      'simple/kernel[8,6]',
      'simple/recurrent_kernel[6,6]',
      'simple/bias[6]',
      'gru/kernel[6,15]',
      'gru/recurrent_kernel[5,15]',
      'gru/bias[15]',
      'bidi/forward_forward_lstm/kernel[5,12]',
      'bidi/forward_forward_lstm/recurrent_kernel[3,12]',
      'bidi/forward_forward_lstm/bias[12]',
      'bidi/backward_forward_lstm/kernel[5,12]',
      'bidi/backward_forward_lstm/recurrent_kernel[3,12]',
      'bidi/backward_forward_lstm/bias[12]',
      'lstm/kernel[6,16]',
      'lstm/recurrent_kernel[4,16]',
      'lstm/bias[16]',
      'score/kernel[4,1]',
      'score/bias[1]',
    ]);
  });

  it('Functional with Keras 3 inbound nodes: shared input, Add, Concatenate, a nested Sequential', async () => {
    const dense = (name: string, units: number, inbound: unknown) => ({
      ...k3('Dense', { name, units, activation: 'relu', use_bias: true, kernel_initializer: init('GlorotUniform'), bias_initializer: init('Zeros', {}) }),
      name,
      inbound_nodes: [inbound],
    });
    const raw = {
      module: 'keras.src.models.functional',
      class_name: 'Functional',
      registered_name: 'Functional',
      config: {
        name: 'graph',
        trainable: true,
        layers: [
          {
            module: 'keras.layers',
            class_name: 'InputLayer',
            config: { batch_shape: [null, 6], dtype: 'float32', sparse: false, name: 'features' },
            registered_name: null,
            name: 'features',
            inbound_nodes: [],
          },
          dense('left', 4, node(tensor('features', [null, 6]))),
          dense('right', 4, node(tensor('features', [null, 6]))),
          { ...k3('Add', { name: 'sum' }), name: 'sum', inbound_nodes: [node([tensor('left', [null, 4]), tensor('right', [null, 4])])] },
          { ...k3('Concatenate', { name: 'joined', axis: -1 }), name: 'joined', inbound_nodes: [node([tensor('sum', [null, 4]), tensor('left', [null, 4])])] },
          {
            module: 'keras',
            class_name: 'Sequential',
            registered_name: null,
            name: 'head',
            config: {
              name: 'head',
              trainable: true,
              dtype: policy(),
              layers: [
                { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 8], dtype: 'float32', sparse: false, name: 'head_input' }, registered_name: null },
                k3('Dense', { name: 'head_hidden', units: 3, activation: 'tanh', use_bias: true, kernel_initializer: init('GlorotUniform'), bias_initializer: init('Zeros', {}) }),
              ],
            },
            build_config: { input_shape: [null, 8] },
            inbound_nodes: [node(tensor('joined', [null, 8]))],
          },
          dense('out', 2, node(tensor('head', [null, 3]))),
        ],
        input_layers: ['features', 0, 0],
        output_layers: ['out', 0, 0],
      },
      build_config: { input_shape: [null, 6] },
    };
    const model = await roundTrip(raw, tf.randomUniform([3, 6], -1, 1, 'float32', 9));
    expect(model.weights.map((w) => w.name)).toEqual(['left/kernel', 'left/bias', 'right/kernel', 'right/bias', 'head_hidden/kernel', 'head_hidden/bias', 'out/kernel', 'out/bias']);
    const config = (model.modelJson.modelTopology as { model_config: KerasLayer }).model_config.config;
    expect(config.input_layers).toEqual([['features', 0, 0]]);
    expect((config.layers as KerasLayer[])[3]!.inbound_nodes).toEqual([
      [
        ['left', 0, 0, {}],
        ['right', 0, 0, {}],
      ],
    ]);
    // Keras 3 numbers the nested model's first outer call 0; tfjs-layers (like Keras 2) numbers it 1.
    expect((config.layers as KerasLayer[])[6]!.inbound_nodes).toEqual([[['head', 1, 0, {}]]]);
  });
});

describe('argument translation', () => {
  it('unwraps dtype policies and initializers, drops training-only arguments, renames Keras 3 arguments', () => {
    const model = translate({
      class_name: 'Sequential',
      config: {
        name: 's',
        dtype: policy('mixed_float16'),
        layers: [
          { class_name: 'InputLayer', config: { batch_shape: [null, 4], dtype: 'float32', name: 'in', optional: false } },
          k3('Dense', {
            name: 'd',
            units: 2,
            activation: { module: 'keras.activations', class_name: 'function', config: 'gelu', registered_name: 'function' },
            use_bias: true,
            kernel_initializer: init('VarianceScaling', { scale: 2, mode: 'fan_in', distribution: 'untruncated_normal', seed: null }),
            bias_initializer: { module: 'my_pkg', class_name: 'FancyInit', config: {}, registered_name: 'my_pkg>FancyInit' },
            kernel_regularizer: { module: 'keras.regularizers', class_name: 'L2', config: { l2: 0.1 }, registered_name: null },
            kernel_constraint: { module: 'keras.constraints', class_name: 'MaxNorm', config: { max_value: 2, axis: 0 }, registered_name: null },
          }),
          k3('LeakyReLU', { name: 'leaky', negative_slope: 0.2 }),
          k3('LSTM', { name: 'unused_but_valid', units: 2, recurrent_initializer: init('OrthogonalInitializer', { gain: 1, seed: null }) }),
        ],
      },
    });
    expect(model.config.dtype).toBe('float32');
    const [input, dense, leaky, lstm] = model.config.layers as KerasLayer[];
    expect(input!.config).toEqual({ batch_input_shape: [null, 4], dtype: 'float32', name: 'in' });
    expect(dense!.config).toMatchObject({
      dtype: 'float32',
      activation: 'gelu',
      kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 2, mode: 'fan_in', distribution: 'normal', seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      kernel_constraint: null,
    });
    expect(dense).not.toHaveProperty('module');
    expect(leaky!.config).toMatchObject({ alpha: 0.2 });
    expect(leaky!.config).not.toHaveProperty('negative_slope');
    expect(lstm!.config.recurrent_initializer).toEqual({ class_name: 'Orthogonal', config: { gain: 1, seed: null } });
  });

  it('Keras 2 configs pass through: old list-style Sequential, hard_sigmoid keeps its Keras 2 meaning', () => {
    const model = translate({ class_name: 'Sequential', config: [{ class_name: 'Dense', config: { name: 'd', units: 1, activation: 'hard_sigmoid', batch_input_shape: [null, 3] } }] }, 2);
    expect((model.config.layers as KerasLayer[])[0]!.config).toMatchObject({ activation: 'hard_sigmoid', batch_input_shape: [null, 3] });
  });
});

describe('refusals', () => {
  const seq = (...layers: unknown[]) => ({
    module: 'keras',
    class_name: 'Sequential',
    config: { name: 's', layers: [{ class_name: 'InputLayer', config: { batch_shape: [null, 4, 3], name: 'in' } }, ...layers] },
  });

  it('GRU with reset_after=True passes to the graph compiler; one it cannot lower (stateful) is refused with the reason and the fix', () => {
    const model = translate(seq(k3('GRU', { name: 'gru_0', units: 5, reset_after: true })));
    expect((model.config.layers as KerasLayer[])[1]!.config).toMatchObject({ reset_after: true });
    const message = refusalOf(seq(k3('GRU', { name: 'gru_1', units: 5, reset_after: true, stateful: true })));
    expect(message).toMatch(/gru_1 \(GRU\) has reset_after=True/);
    expect(message).toMatch(/\[2, 3\*units\]/);
    expect(message).toMatch(/reset_after=False/);
  });

  it('a GRU whose bias is 2-D is refused even when its config does not say reset_after', () => {
    const modelConfig = translate(seq(k3('GRU', { name: 'gru_2', units: 5 })), 2);
    const scope: WeightScope = {
      weightsOf: () =>
        [
          [3, 15],
          [5, 15],
          [2, 15],
        ].map((shape) => ({ shape, dtype: 'float32' as const, values: new Float32Array(shape[0]! * shape[1]!) })),
      nested: () => scope,
      finish: () => {},
    };
    expect(() => collectWeights(modelConfig, scope)).toThrow(/gru_2 \(GRU\) has a \[2, 15\] bias: it was trained with reset_after=True/);
  });

  it('a weight count that does not match the layer is refused, naming both', () => {
    const modelConfig = translate(seq(k3('Dense', { name: 'd', units: 2 })));
    const scope: WeightScope = { weightsOf: () => [{ shape: [3, 2], dtype: 'float32', values: new Float32Array(6) }], nested: () => scope, finish: () => {} };
    expect(() => collectWeights(modelConfig, scope)).toThrow(/layer d \(Dense\) has 1 weights in the file \(\[3, 2\]\) but TF.js expects 2 \(d\/kernel, d\/bias\)/);
  });

  it('custom and unknown classes are listed together; Lambda layers are named', () => {
    const message = refusalOf(
      seq(
        { module: 'my_project.layers', class_name: 'Dense', config: { name: 'custom_dense' }, registered_name: 'my_project>Dense' },
        k3('MultiHeadAttentionV9', { name: 'mystery' }),
        k3('Lambda', { name: 'lambda_7', function: { class_name: '__lambda__', config: { code: '...' } } }),
      ),
    );
    expect(message).toMatch(/custom or unknown Keras layer classes Dense, MultiHeadAttentionV9/);
    expect(message).toMatch(/Lambda layers lambda_7 hold Python code/);
  });

  it('options TF.js lacks are refused: Keras 3 hard_sigmoid, leaky ReLU via ReLU, grouped conv, sparse input, tensor kwargs', () => {
    expect(refusalOf(seq(k3('Activation', { name: 'hs', activation: 'hard_sigmoid' })))).toMatch(/hs uses Keras 3 hard_sigmoid/);
    expect(refusalOf(seq(k3('ReLU', { name: 'r', negative_slope: 0.1 })))).toMatch(/r \(ReLU\) has negative_slope=0.1/);
    expect(refusalOf(seq(k3('Conv1D', { name: 'c', filters: 4, kernel_size: [2], groups: 2 })))).toMatch(/grouped convolution/);
    expect(refusalOf(seq(k3('Activation', { name: 'e', activation: 'exponential' })))).toMatch(/activation "exponential"/);
    expect(refusalOf({ class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'InputLayer', config: { batch_shape: [null, 3], sparse: true, name: 'in' } }] } })).toMatch(
      /sparse input/,
    );
    const masked = {
      class_name: 'Functional',
      config: {
        name: 'f',
        layers: [
          { class_name: 'InputLayer', name: 'a', config: { batch_shape: [null, 3, 2], name: 'a' }, inbound_nodes: [] },
          { class_name: 'InputLayer', name: 'm', config: { batch_shape: [null, 3], name: 'm' }, inbound_nodes: [] },
          { class_name: 'LSTM', name: 'l', config: { name: 'l', units: 2 }, inbound_nodes: [{ args: [tensor('a', [null, 3, 2])], kwargs: { mask: tensor('m', [null, 3]) } }] },
        ],
        input_layers: [
          ['a', 0, 0],
          ['m', 0, 0],
        ],
        output_layers: [['l', 0, 0]],
      },
    };
    expect(refusalOf(masked)).toMatch(/layer l is called with tensors as keyword arguments/);
  });

  it('a Sequential saved before it was built, a single layer, and a subclassed model are refused', () => {
    expect(refusalOf({ class_name: 'Sequential', config: { name: 'unbuilt', layers: [k3('Dense', { name: 'd', units: 1 })] } })).toMatch(/unbuilt has no input shape/);
    expect(refusalOf(k3('Dense', { name: 'd', units: 1 }))).toMatch(/single Dense layer, not a Sequential or Functional model/);
    expect(refusalOf({ module: 'my_models', class_name: 'MyModel', config: {}, registered_name: 'MyModel' })).toMatch(/custom Keras class MyModel \(subclassed model\)/);
  });
});
