// Every Keras file in ../shared/fixtures/keras-wild (real files from public repositories, as users
// saved them): each either converts (float32 and the default quantization), loads through its
// published model.json with stock tf.loadLayersModel / tf.loadGraphModel and predicts finite outputs
// of the declared shape, or is refused as an `unconvertible` EdgeflowError whose message names the
// layer or class and carries no stack trace. Skips visibly when the fixtures are absent.
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import { loadLayersModel, model as layersModel, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertModel } from '../../converter/convert.ts';
import type { ModelFiles } from '../../converter/shard.ts';
import { readModel } from '../../converter/read/index.ts';
import { translateModelConfig } from '../../converter/read/keras/config.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { unzip } from '../../converter/read/zip.ts';
import { attrString, attrStrings, childGroup, type Dataset, openHdf5, readDataset } from '../../converter/read/keras/hdf5.ts';
import { runModel } from '../helpers/keras-interpreter.ts';
import { add, conv1d, dense, globalAveragePool1d, layerNorm, multiHeadAttention, seq } from '../helpers/keras-reference.ts';
import { predictDecoded, relativeDifference } from '../helpers/graph-compare.ts';
import type { DecodedModel } from '../../converter/model.ts';
import { encodeAndShard, fixtureBytes, fixtureFiles, loadConverted, needs } from '../helpers/keras.ts';
import { fixedValues } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

const dir = 'keras-wild/';

/** Files that convert. */
const CONVERTS = [
  '0N1cky1__teachable-machine__keras_model.h5',
  'A-I-nstein__mnist_cnn__cnn_model.h5',
  'AdamVenroy__sentiment-classifer__model.keras',
  'AgungYogaSetiawan__face-mask-detection__model.hdf5',
  'AllaudinAli__ECG-Signal-Classification__transformer_model.keras',
  'Aman-21k__cnn-fashion-mnist-classifier__model.keras',
  'Anderson-Portes__keras-cancer-classifier__model.keras',
  'AryanMithbawkar__Denoicing-Images__autoencoder.keras',
  'BisulElang__xauusd-gru-forecasting__gru_model.keras',
  'abdelhamid-labihi__Trafic_Sign_classification_CNN_LeNet5__saved_model.keras',
  'ahmethe__Detect-Anomalies-withAutoEncoder__autoencoder.keras',
  'sebastianmoiras__Movie-Review-Sentiment-Analysis-With-Simple-LSTM__sentiment_model.h5',
];

/** Files refused, with words the message must hold (the layer or class, and what to do). */
const REFUSED: Record<string, RegExp[]> = {
  'Aadii0916__Next-word-predict__lstm_model.h5': [/embedding_3 \(Embedding\)/, /no weights/, /build or train it/],
  'MichaelHopf__CarND-Behavioral-Cloning-P3__model.hdf5': [/Keras 1\.2\.1/, /Lambda layers lambda_109, lambda_110/, /Rescaling/],
};

/** The published files as an IO handler, the shards joined as a browser would fetch them. */
function memoryHandler(files: ModelFiles): tf.io.IOHandler {
  const json = files.modelJson as unknown as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  const parts = json.weightsManifest.flatMap((group) => group.paths.map((p) => files.files.get(p)!));
  const data = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    data.set(part, offset);
    offset += part.byteLength;
  }
  return tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData: data.buffer });
}

/** The published files through the stock loaders. */
async function stockLoad(files: ModelFiles): Promise<{ predict: (x: tf.Tensor) => tf.Tensor; inputs: { shape: number[]; dtype: string }[]; dispose: () => void }> {
  const handler = memoryHandler(files);
  if ((files.modelJson as { format?: string }).format === 'graph-model') {
    const model = await loadGraphModel(handler);
    return {
      predict: (x) => model.predict(x) as tf.Tensor,
      inputs: model.inputs.map((i) => ({ shape: (i.shape ?? []).map((d) => (d < 0 ? 2 : d)), dtype: i.dtype })),
      dispose: () => model.dispose(),
    };
  }
  const model = await loadLayersModel(handler);
  return {
    predict: (x) => model.predict(x) as tf.Tensor,
    inputs: model.inputs.map((i) => ({ shape: i.shape.map((d, k) => d ?? (k === 0 ? 2 : 8)), dtype: i.dtype })),
    dispose: () => model.dispose(),
  };
}

/** Predicts on fixed inputs in [0, 1] (token 1..5 for integer inputs); returns the output. */
async function predictFixed(files: ModelFiles, values?: number[] | Float32Array): Promise<{ shape: number[]; data: Float32Array }> {
  const model = await stockLoad(files);
  try {
    const [input] = model.inputs;
    const shape = [2, ...input!.shape.slice(1)];
    const size = shape.reduce((a, b) => a * b, 1);
    const xs = values ?? fixedValues(size, 7).map((v) => (input!.dtype === 'int32' ? 1 + Math.floor(((v + 1) / 2) * 4) : (v + 1) / 2));
    const x = tf.tensor(xs, shape, input!.dtype === 'int32' ? 'int32' : 'float32');
    const y = model.predict(x);
    const data = (await y.data()) as Float32Array;
    const out = { shape: y.shape, data };
    tf.dispose([x, y]);
    return out;
  } finally {
    model.dispose();
  }
}

describe('wild Keras files: converted ones load in stock TF.js and predict', () => {
  for (const file of CONVERTS) {
    it.skipIf(needs(dir + file) !== '')(
      `${file} converts (none and default quantization) and predicts finite outputs${needs(dir + file)}`,
      async () => {
        for (const quantize of ['none', undefined]) {
          const result = await convertModel(fixtureFiles(dir + file), { name: 'wild', ...(quantize ? { quantize } : {}) });
          const { shape, data } = await predictFixed(result.modelFiles);
          expect(shape[0]).toBe(2);
          expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
          expect(data.every(Number.isFinite)).toBe(true);
        }
      },
      // The image autoencoder's two conversions take 2 minutes on 2 shared cores.
      400_000,
    );
  }

  const CANCER = `${dir}Anderson-Portes__keras-cancer-classifier__model.keras`;
  it.skipIf(needs(CANCER) !== '')(`Keras 2.13 .keras (flat _layer_checkpoint_dependencies groups): 3 Dense equal plain JS within 1e-5${needs(CANCER)}`, async () => {
    const decoded = await readModel(fixtureFiles(CANCER));
    const w = (name: string) => decoded.weights.find((x) => x.name === name)!.values as Float32Array;
    const xs = fixedValues(60, 3).map((v) => (v + 1) / 2);
    const result = await convertModel(fixtureFiles(CANCER), { name: 'wild', quantize: 'none' });
    const { data } = await predictFixed(result.modelFiles, xs);
    let h = dense(seq(xs, 2, 1, 30), w('dense_3/kernel'), w('dense_3/bias'), 256, 'sigmoid');
    h = dense(h, w('dense_4/kernel'), w('dense_4/bias'), 256, 'sigmoid');
    h = dense(h, w('dense_5/kernel'), w('dense_5/bias'), 1, 'sigmoid');
    for (let i = 0; i < 2; i++) expect(Math.abs(data[i]! - h.values[i]!)).toBeLessThan(1e-5);
  });

  const ECG = `${dir}AllaudinAli__ECG-Signal-Classification__transformer_model.keras`;
  it.skipIf(needs(ECG) !== '')(
    `Keras 2.15 transformer (MultiHeadAttention, LayerNormalization, TFOpLambda adds; Windows-saved layers\\... groups) equals the Keras formulas on the raw file within 1e-4${needs(ECG)}`,
    async () => {
      // The reference reads each variable by its path in the file, not through edgeflow's weight mapping.
      const h5 = openHdf5(unzip(fixtureBytes(ECG)).get('model.weights.h5')!, 'model.weights.h5');
      const v = (group: string, i: number) => {
        const node = childGroup(childGroup(h5, `layers\\${group}`)!, 'vars')!.get(String(i));
        return readDataset(node as Dataset).values as Float32Array;
      };
      const part = (name: string) => ({ kernel: v(`multi_head_attention\\_${name}_dense`, 0), bias: v(`multi_head_attention\\_${name}_dense`, 1) });
      const xs = fixedValues(2 * 186, 5).map((x) => (x + 1) / 2);
      const x = seq(xs, 2, 186, 1);
      const attended = multiHeadAttention(x, x, x, { query: part('query'), key: part('key'), value: part('value'), output: part('output') }, 4, 64, 64, 1);
      const first = add(layerNorm(attended, v('layer_normalization', 0), v('layer_normalization', 1), 1e-6), x);
      const ff = conv1d(conv1d(first, v('conv1d', 0), v('conv1d', 1), 1, 4, 'valid', 'relu'), v('conv1d_1', 0), v('conv1d_1', 1), 1, 1, 'valid', 'linear');
      const block = add(layerNorm(ff, v('layer_normalization_1', 0), v('layer_normalization_1', 1), 1e-3), first);
      let h = globalAveragePool1d(block);
      for (const [i, units, activation] of [
        [0, 128, 'relu'],
        [1, 64, 'selu'],
        [2, 32, 'selu'],
        [3, 16, 'selu'],
        [4, 1, 'sigmoid'],
      ] as const) {
        const group = i === 0 ? 'dense' : `dense_${i}`;
        h = dense(h, v(group, 0), v(group, 1), units, activation);
      }

      // The published graph model through stock tf.loadGraphModel.
      const result = await convertModel(fixtureFiles(ECG), { name: 'wild', quantize: 'none' });
      expect((result.modelFiles.modelJson as { format: string }).format).toBe('graph-model');
      const { data } = await predictFixed(result.modelFiles, xs);
      const drift = relativeDifference(h.values, data);
      // The sigmoid hides the inner layers: the attention alone (LayerNormalization over this file's single channel
      // makes its output the constant β, so the block does not show it) and the block are compiled and checked too.
      const upTo = async (last: string) => {
        const decoded = await readModel(fixtureFiles(ECG));
        const { config } = (decoded.modelJson.modelTopology as { model_config: { config: { layers: { name: string }[]; output_layers: unknown[] } } }).model_config;
        config.layers = config.layers.slice(0, config.layers.findIndex((layer) => layer.name === last) + 1);
        config.output_layers = [[last, 0, 0]];
        return (await predictDecoded(compileToGraph(decoded).model, tf.tensor(xs, [2, 186, 1]))).values;
      };
      const attentionDrift = relativeDifference(attended.values, await upTo('multi_head_attention_14'));
      const blockDrift = relativeDifference(block.values, await upTo('tf.__operators__.add_28'));
      console.log(`ECG transformer against the Keras formulas: output ${drift.toExponential(2)}, attention ${attentionDrift.toExponential(2)}, block ${blockDrift.toExponential(2)}`);
      expect(drift).toBeLessThan(1e-4);
      expect(attentionDrift).toBeLessThan(1e-4);
      expect(blockDrift).toBeLessThan(1e-4);
    },
    120_000,
  );
});

describe('Teachable Machine export against an independent reference', () => {
  const TM = `${dir}0N1cky1__teachable-machine__keras_model.h5`;
  it.skipIf(needs(TM) !== '')(
    `keras_model.h5 (Sequential of a Functional MobileNetV2 and a head) equals a plain-JS run of the file's own config and weights within 1e-4${needs(TM)}`,
    async () => {
      // The reference reads the raw Keras config and every weight by the name the file gives it, not through edgeflow's reader.
      const h5 = openHdf5(fixtureBytes(TM), 'keras_model.h5');
      const weights = new Map<string, Float32Array>();
      const root = childGroup(h5, 'model_weights')!;
      for (const key of root.keys) {
        const group = childGroup(root, key)!;
        for (const name of attrStrings(group, 'weight_names') ?? []) weights.set(name.replace(/:0$/, ''), readDataset(group.get(name) as Dataset).values as Float32Array);
      }
      const config = JSON.parse(attrString(h5, 'model_config')!);
      const xs = fixedValues(2 * 224 * 224 * 3, 23);
      const features = runModel(config.config.layers[1], { h: 224, w: 224, c: 3, data: Float64Array.from(xs.subarray(0, 224 * 224 * 3)) }, (n) => weights.get(n));
      const probabilities = runModel(config, { h: 224, w: 224, c: 3, data: Float64Array.from(xs.subarray(0, 224 * 224 * 3)) }, (n) => weights.get(n));

      const result = await convertModel(fixtureFiles(TM), { name: 'wild', quantize: 'none' });
      const model = await loadLayersModel(memoryHandler(result.modelFiles));
      const backbone = layersModel({ inputs: model.inputs, outputs: model.getLayer('sequential_9').getOutputAt(1) as SymbolicTensor });
      const x = tf.tensor(xs, [2, 224, 224, 3]);
      const [y, f] = [model.predict(x) as tf.Tensor, backbone.predict(x) as tf.Tensor];
      const [yData, fData] = [await y.data(), await f.data()];
      const [probabilityDrift, featureDrift] = [
        relativeDifference(probabilities.data, yData.subarray(0, probabilities.data.length)),
        relativeDifference(features.data, fData.subarray(0, features.data.length)),
      ];
      tf.dispose([x, y, f]);
      model.dispose();
      console.log(`Teachable Machine against the plain-JS run: probabilities ${probabilityDrift.toExponential(2)}, 1280 MobileNetV2 features ${featureDrift.toExponential(2)}`);
      expect(features.data.length).toBe(1280);
      expect(probabilityDrift).toBeLessThan(1e-4);
      expect(featureDrift).toBeLessThan(1e-4);
    },
    300_000,
  );
});

describe('wild Keras files TF.js cannot run: refused by name, without stack traces', () => {
  for (const [file, words] of Object.entries(REFUSED)) {
    it.skipIf(needs(dir + file) !== '')(`${file} is refused as unconvertible${needs(dir + file)}`, async () => {
      const error = await convertModel(fixtureFiles(dir + file), { name: 'wild', quantize: 'none' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EdgeflowError);
      expect((error as EdgeflowError).code).toBe('unconvertible');
      const message = (error as Error).message;
      for (const word of words) expect(message).toMatch(word);
      expect(message).not.toMatch(/\n\s+at /);
    });
  }
});

describe('what the wild files taught the translator (hand-written Keras 2 configs, no fixtures needed)', () => {
  const layer = (class_name: string, config: Record<string, unknown>) => ({ class_name, config });
  const sequential = (...layers: unknown[]) => ({ class_name: 'Sequential', config: { name: 'seq', layers } });
  const translate = (config: unknown) => translateModelConfig(config, { kerasMajor: 2, source: 'model.h5' });
  const layersOf = (model: { config: { layers?: unknown } }) => model.config.layers as { class_name: string; config: Record<string, unknown> }[];

  it("a later layer's input shape is ignored, as Keras ignores it (a batch size folded into input_shape)", () => {
    const model = translate(
      sequential(layer('InputLayer', { name: 'in', batch_input_shape: [null, 4, 4, 3] }), layer('Conv2D', { name: 'conv', filters: 2, kernel_size: [1, 1], batch_input_shape: [null, 32, 4, 4, 3] })),
    );
    expect(layersOf(model)[1]!.config.batch_input_shape).toBeUndefined();
    expect(layersOf(model)[0]!.config.batch_input_shape).toEqual([null, 4, 4, 3]);
  });

  it('a Resizing to the size its input has is dropped; another is refused by name', () => {
    const stub = translate(
      sequential(
        layer('InputLayer', { name: 'in', batch_input_shape: [null, 8, 8, 3] }),
        layer('Rescaling', { name: 'rescale', scale: 1 / 255, offset: 0 }),
        layer('Resizing', { name: 'resize', height: 8, width: 8 }),
      ),
    );
    expect(layersOf(stub).map((l) => l.class_name)).toEqual(['InputLayer', 'Rescaling']);
    expect(() => translate(sequential(layer('InputLayer', { name: 'in', batch_input_shape: [null, 8, 8, 3] }), layer('Resizing', { name: 'shrink', height: 4, width: 4 })))).toThrow(
      /layer shrink \(Resizing\) resizes to 4x4/,
    );
  });

  it('classes only the graph compiler runs are let through where it lowers them, else refused naming the layer, the reason and the remedy', () => {
    const functional = (...layers: unknown[]) => ({ class_name: 'Functional', config: { name: 'f', layers, input_layers: [['x', 0, 0]], output_layers: [['op', 0, 0]] } });
    const input = { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 4, 2] }, inbound_nodes: [] };
    const op = (class_name: string, config: Record<string, unknown>, kwargs: Record<string, unknown> = {}) => ({
      class_name,
      name: 'op',
      config: { name: 'op', ...config },
      inbound_nodes: [['x', 0, 0, kwargs]],
    });
    expect(() => translate(functional(input, op('TFOpLambda', { function: 'math.reduce_mean' }, { axis: 1 })))).not.toThrow();
    expect(() => translate(functional(input, op('SlicingOpLambda', { function: '__operators__.getitem' }, { slice_spec: [] })))).not.toThrow();
    expect(() => translate(functional(input, op('TFOpLambda', { function: 'image.resize' })))).toThrow(
      /layer op \(TFOpLambda\) has function "image.resize" \(not lowered\).*replace that tf call with a built-in Keras layer/,
    );
    expect(() => translate(functional(input, op('MultiHeadAttention', { num_heads: 2, key_dim: 2, use_causal_mask: true })))).toThrow(
      /layer op \(MultiHeadAttention\) has use_causal_mask=True.*call it without masks/,
    );
  });

  it("a Keras 3 MultiHeadAttention call's value passed by keyword is kept where the graph compiler reads it", () => {
    const tensor = (layer: string) => ({ class_name: '__keras_tensor__', config: { shape: [null, 4, 2], dtype: 'float32', keras_history: [layer, 0, 0] } });
    const model = translateModelConfig(
      {
        class_name: 'Functional',
        config: {
          name: 'f',
          layers: [
            { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_shape: [null, 4, 2] }, inbound_nodes: [] },
            { class_name: 'InputLayer', name: 'v', config: { name: 'v', batch_shape: [null, 4, 2] }, inbound_nodes: [] },
            {
              class_name: 'MultiHeadAttention',
              name: 'mha',
              config: { name: 'mha', num_heads: 2, key_dim: 2 },
              inbound_nodes: [{ args: [tensor('x')], kwargs: { value: tensor('v'), training: false } }],
            },
          ],
          input_layers: [
            ['x', 0, 0],
            ['v', 0, 0],
          ],
          output_layers: [['mha', 0, 0]],
        },
      },
      { kerasMajor: 3, source: 'model.keras' },
    );
    const mha = (model.config.layers as { inbound_nodes: unknown }[])[2]!;
    expect(mha.inbound_nodes).toEqual([[['x', 0, 0, { value: ['v', 0, 0] }]]]);
  });

  it('an unbuilt Sequential that starts with an Embedding takes sequences of any length', () => {
    const model = translate(sequential(layer('Embedding', { name: 'embed', input_dim: 10, output_dim: 4 }), layer('Dense', { name: 'd', units: 2 })));
    expect(layersOf(model)[0]!.config.batch_input_shape).toEqual([null, null]);
  });
});

describe('TF.js build and load failures become messages naming the layer', () => {
  const modelOf = (layers: unknown[], weights: { name: string; shape: number[] }[]): DecodedModel =>
    ({
      format: 'layers-model',
      modelJson: {
        format: 'layers-model',
        generatedBy: 'keras v2.15.0',
        convertedBy: 'edgeflow',
        modelTopology: { keras_version: '2.15.0', backend: 'tensorflow', model_config: { class_name: 'Sequential', config: { name: 'seq', layers } } },
      },
      weights: weights.map((w) => ({ ...w, dtype: 'float32', values: new Float32Array(w.shape.reduce((a, b) => a * b, 1)) })),
      source: { format: 'keras-h5', files: ['model.h5'], bytes: 0, generatedBy: 'keras v2.15.0' },
    }) as unknown as DecodedModel;

  async function failure(model: DecodedModel): Promise<Error> {
    const error = await loadConverted(encodeAndShard(model)).then(
      () => new Error('it loaded'),
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(EdgeflowError);
    expect((error as EdgeflowError).code).toBe('unconvertible');
    expect(error.message).not.toMatch(/\n\s+at /);
    return error;
  }

  it('a weight whose shape differs from what the config builds is named with both shapes', async () => {
    const dense = { class_name: 'Dense', config: { name: 'head', units: 2, batch_input_shape: [null, 3] } };
    const error = await failure(
      modelOf(
        [dense],
        [
          { name: 'head/kernel', shape: [3, 3] },
          { name: 'head/bias', shape: [2] },
        ],
      ),
    );
    expect(error.message).toMatch(/layer head: weight head\/kernel is \[3, 3\] in the file but TF.js builds \[3, 2\]/);
  });

  it('a config TF.js cannot build is refused with its first line', async () => {
    const conv = { class_name: 'Conv2D', config: { name: 'conv', filters: 2, kernel_size: [1, 1], batch_input_shape: [null, 3] } };
    const error = await failure(modelOf([conv], [{ name: 'conv/kernel', shape: [1, 1, 3, 2] }]));
    expect(error.message).toMatch(/TF.js cannot build this layers model: .*conv/);
  });
});
