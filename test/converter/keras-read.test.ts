// Keras import on the real fixtures (../shared/fixtures): Keras 2.0.5 HDF5, Keras 3 legacy HDF5 and a
// Keras 3 .keras zip read without Python, load through stock TF.js and predict; the LSTM's output
// matches an independent JS implementation of Keras' LSTM; bad inputs are refused by name.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { zipSync } from 'fflate';
import { Dataset, File, Group } from 'jsfive';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConversionError } from '../../shared/errors.ts';
import type { DecodedModel } from '../../converter/model.ts';
import { readModel } from '../../converter/read/index.ts';
import { contiguousFloat32, readDataset } from '../../converter/read/keras/hdf5.ts';
import { kerasSnakeCase } from '../../converter/read/keras/weights.ts';
import { unzip } from '../../converter/read/zip.ts';
import { memoryHandler } from '../../shared/model-loader.ts';
import { encodeAndShard, fixtureBytes, fixtureFiles, hasFixture, KERAS_FIXTURES, loadConverted, needs, ownFixturesDir } from '../helpers/keras.ts';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

async function refusal(files: Map<string, Uint8Array>): Promise<ConversionError> {
  const error = await readModel(files).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConversionError);
  return error as ConversionError;
}

/** The stock-loaded model's variables must be exactly the converted weights: same names, shapes, values, per-layer order. */
async function expectSameVariables(model: DecodedModel): Promise<void> {
  const files = encodeAndShard(model);
  const layers = await loadLayersModel(memoryHandler(files.modelJson, (p) => files.files.get(p)!));
  const byName = new Map(model.weights.map((w, i) => [w.name, { weight: w, index: i }]));
  expect(layers.weights.map((v) => v.originalName).sort()).toEqual([...byName.keys()].sort());
  for (const layer of layers.layers) {
    const positions = layer.weights.map((v) => byName.get(v.originalName)!.index);
    expect(positions).toEqual([...positions].sort((a, b) => a - b)); // each layer's weights in TF.js creation order
    for (const variable of layer.weights) {
      const { weight } = byName.get(variable.originalName)!;
      expect(variable.shape).toEqual(weight.shape);
      expect(Array.from(variable.read().dataSync() as Float32Array)).toEqual(Array.from(weight.values));
    }
  }
  layers.dispose();
}

const CASES = [
  { file: KERAS_FIXTURES.xception, sourceFormat: 'keras-h5', generatedBy: 'keras v2.0.5', className: 'Model', weights: 80, input: [2, 64, 64, 1], output: [2, 7], softmax: true },
  { file: KERAS_FIXTURES.lstm, sourceFormat: 'keras-h5', generatedBy: 'keras v3.13.2', className: 'Sequential', weights: 8, input: [2, 500], output: [2, 1], softmax: false },
  { file: KERAS_FIXTURES.mnistMlp, sourceFormat: 'keras-v3', generatedBy: 'keras v3.3.3', className: 'Sequential', weights: 4, input: [2, 28, 28], output: [2, 10], softmax: true },
] as const;

describe('real Keras files → stock TF.js', () => {
  for (const c of CASES) {
    it.skipIf(!hasFixture(c.file))(`${path.basename(c.file)}: read, encode, shard, load with stock TF.js, predict${needs(c.file)}`, async () => {
      const model = await readModel(fixtureFiles(c.file));
      expect(model.format).toBe('layers-model');
      expect(model.source.format).toBe(c.sourceFormat);
      expect(model.modelJson).toMatchObject({ format: 'layers-model', generatedBy: c.generatedBy, convertedBy: 'edgeflow' });
      const topology = model.modelJson.modelTopology as { keras_version: string; backend: string; model_config: { class_name: string } };
      expect(`keras v${topology.keras_version}`).toBe(c.generatedBy);
      expect(topology.backend).toBe('tensorflow');
      expect(topology.model_config.class_name).toBe(c.className);
      expect(model.weights).toHaveLength(c.weights);

      const loaded = await loadConverted(encodeAndShard(model));
      const input =
        c.file === KERAS_FIXTURES.lstm
          ? tf.tensor2d(
              Array.from({ length: 1000 }, (_, i) => (i * 7919) % 10000),
              [2, 500],
            )
          : tf.randomUniform([...c.input], 0, 1, 'float32', 7);
      const [output] = await loaded.predict([input]);
      expect(output!.shape).toEqual(c.output);
      const values = Array.from(await output!.data());
      expect(values.every(Number.isFinite)).toBe(true);
      if (c.softmax) {
        const classes = c.output[1];
        for (let row = 0; row < 2; row++) expect(values.slice(row * classes, (row + 1) * classes).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      }
      tf.dispose([input, output!]);
      loaded.dispose();
      await expectSameVariables(model);
    });
  }
});

/** Keras 3 LSTM + Dense layers computed in plain JS from the HDF5 datasets (gate order i, f, c, o). */
function referenceLstmModel(bytes: Uint8Array, tokens: number[]): number {
  const file = new File(bytes.slice().buffer, 'lstm_model.h5');
  const read = (p: string) => Float32Array.from((file.get(`model_weights/${p}`) as Dataset).value as ArrayLike<number>);
  const embeddings = read('embedding_1/sequential_1/embedding_1/embeddings');
  const kernel = read('lstm/sequential_1/lstm/lstm_cell/kernel');
  const recurrent = read('lstm/sequential_1/lstm/lstm_cell/recurrent_kernel');
  const bias = read('lstm/sequential_1/lstm/lstm_cell/bias');
  const d2k = read('dense_2/sequential_1/dense_2/kernel');
  const d2b = read('dense_2/sequential_1/dense_2/bias');
  const d3k = read('dense_3/sequential_1/dense_3/kernel');
  const d3b = read('dense_3/sequential_1/dense_3/bias');
  const units = 32;
  const dim = 32;
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  let h = new Float64Array(units);
  let c = new Float64Array(units);
  for (const token of tokens) {
    const x = embeddings.subarray(token * dim, (token + 1) * dim);
    const z = new Float64Array(4 * units);
    for (let j = 0; j < 4 * units; j++) {
      let sum = bias[j]!;
      for (let k = 0; k < dim; k++) sum += x[k]! * kernel[k * 4 * units + j]!;
      for (let k = 0; k < units; k++) sum += h[k]! * recurrent[k * 4 * units + j]!;
      z[j] = sum;
    }
    const nextH = new Float64Array(units);
    const nextC = new Float64Array(units);
    for (let u = 0; u < units; u++) {
      const i = sigmoid(z[u]!);
      const f = sigmoid(z[units + u]!);
      const g = Math.tanh(z[2 * units + u]!);
      const o = sigmoid(z[3 * units + u]!);
      nextC[u] = f * c[u]! + i * g;
      nextH[u] = o * Math.tanh(nextC[u]!);
    }
    h = nextH;
    c = nextC;
  }
  const hidden = Array.from({ length: 16 }, (_, j) => Math.max(0, d2b[j]! + Array.from(h).reduce((s, v, k) => s + v * d2k[k * 16 + j]!, 0)));
  return sigmoid(d3b[0]! + hidden.reduce((s, v, k) => s + v * d3k[k]!, 0));
}

describe('layer mapping checked against an independent implementation', () => {
  it.skipIf(!hasFixture(KERAS_FIXTURES.lstm))(`lstm_model.h5: TF.js prediction on fixed token sequences equals a plain-JS Keras LSTM${needs(KERAS_FIXTURES.lstm)}`, async () => {
    const bytes = fixtureBytes(KERAS_FIXTURES.lstm);
    const loaded = await loadConverted(encodeAndShard(await readModel(fixtureFiles(KERAS_FIXTURES.lstm))));
    // Reviews are pre-padded with zeros to 500 ids, as keras.utils.pad_sequences does.
    const sequences = [0, 1, 2].map((seed) => Array.from({ length: 500 }, (_, i) => (i < 380 ? 0 : 1 + ((i * 7919 + seed * 104729) % 9998))));
    const input = tf.tensor2d(sequences);
    const [output] = await loaded.predict([input]);
    const predicted = Array.from(await output!.data());
    const expected = sequences.map((tokens) => referenceLstmModel(bytes, tokens));
    console.log(`lstm_model.h5 on 3 fixed sequences: TF.js ${predicted.map((p) => p.toFixed(6)).join(', ')}; plain JS ${expected.map((p) => p.toFixed(6)).join(', ')}`);
    predicted.forEach((p, i) => {
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThan(1);
      expect(Math.abs(p - expected[i]!)).toBeLessThan(1e-4);
    });
    expect(new Set(predicted.map((p) => p.toFixed(4))).size).toBeGreaterThan(1); // the model reads its input
    tf.dispose([input, output!]);
    loaded.dispose();
  });
});

describe('.keras weight layout', () => {
  it('groups are named like Keras 3 names them: snake_case class name, numbered per class', () => {
    expect(
      ['Dense', 'Conv2D', 'BatchNormalization', 'SeparableConv2D', 'DepthwiseConv2D', 'SimpleRNN', 'LSTM', 'GRU', 'Conv2DTranspose', 'GlobalAveragePooling2D', 'Functional'].map(kerasSnakeCase),
    ).toEqual(['dense', 'conv2d', 'batch_normalization', 'separable_conv2d', 'depthwise_conv2d', 'simple_rnn', 'lstm', 'gru', 'conv2d_transpose', 'global_average_pooling2d', 'functional']);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.mnistMlp))(`layers renamed in config.json still find their weights (Keras 3 stores them by class, not by name)${needs(KERAS_FIXTURES.mnistMlp)}`, async () => {
    const entries = unzip(fixtureBytes(KERAS_FIXTURES.mnistMlp));
    const renamed = new TextDecoder()
      .decode(entries.get('config.json')!)
      .replaceAll('"name": "dense_1"', '"name": "digits"')
      .replaceAll('"name": "dense"', '"name": "hidden"')
      .replaceAll('"name": "flatten"', '"name": "pixels"');
    const zip = zipSync({ 'config.json': new TextEncoder().encode(renamed), 'metadata.json': entries.get('metadata.json')!, 'model.weights.h5': entries.get('model.weights.h5')! });
    const original = await readModel(fixtureFiles(KERAS_FIXTURES.mnistMlp));
    const model = await readModel(new Map([['renamed.keras', zip]]));
    expect(model.weights.map((w) => w.name)).toEqual(['hidden/kernel', 'hidden/bias', 'digits/kernel', 'digits/bias']);
    model.weights.forEach((w, i) => expect(w.values).toEqual(original.weights[i]!.values));
    const loaded = await loadConverted(encodeAndShard(model));
    const [output] = await loaded.predict([tf.randomUniform([1, 28, 28], 0, 1, 'float32', 3)]);
    expect(output!.shape).toEqual([1, 10]);
    tf.dispose(output!);
    loaded.dispose();
  });
});

describe('HDF5 datasets', () => {
  for (const relative of [KERAS_FIXTURES.xception, KERAS_FIXTURES.lstm, KERAS_FIXTURES.mnistMlp]) {
    it.skipIf(!hasFixture(relative))(`${path.basename(relative)}: the direct float32 copy equals jsfive's own decoding for every dataset${needs(relative)}`, () => {
      let bytes = fixtureBytes(relative);
      if (relative.endsWith('.keras')) bytes = unzip(bytes).get('model.weights.h5')!;
      const file = new File(bytes.slice().buffer, path.basename(relative));
      let direct = 0;
      const visit = (group: Group): void => {
        for (const key of group.keys) {
          const node = group.get(key);
          if (node instanceof Group) visit(node);
          else if (node instanceof Dataset && node.dtype === '<f4') {
            const count = node.shape.reduce((a, b) => a * b, 1);
            const fast = contiguousFloat32(node, count);
            if (fast) direct++;
            expect(Array.from(readDataset(node).values)).toEqual(Array.from(Float32Array.from(node.value as ArrayLike<number>)));
          }
        }
      };
      visit(file);
      expect(direct).toBeGreaterThan(0);
    });
  }
});

describe('refusals name the problem', () => {
  it.skipIf(!hasFixture(KERAS_FIXTURES.mctQuantized))(`a .keras with custom quantization layers lists their classes${needs(KERAS_FIXTURES.mctQuantized)}`, async () => {
    const error = await refusal(fixtureFiles(KERAS_FIXTURES.mctQuantized));
    expect(error.message).toContain('KerasQuantizationWrapper');
    expect(error.message).toContain('KerasActivationQuantizationHolder');
    expect(error.message).toMatch(/custom or unknown Keras layer classes/);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.ssrnetWeights))(`a Keras 2 save_weights file is refused as weights-only${needs(KERAS_FIXTURES.ssrnetWeights)}`, async () => {
    const error = await refusal(fixtureFiles(KERAS_FIXTURES.ssrnetWeights));
    expect(error.message).toMatch(/weights only/);
    expect(error.message).toMatch(/no model_config/);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.mnistMlp))(`a zip without config.json is refused, as .keras and as .zip; a bare model.weights.h5 is weights-only${needs(KERAS_FIXTURES.mnistMlp)}`, async () => {
    const entries = unzip(fixtureBytes(KERAS_FIXTURES.mnistMlp));
    const zip = zipSync({ 'metadata.json': entries.get('metadata.json')!, 'model.weights.h5': entries.get('model.weights.h5')! });
    for (const name of ['model.keras', 'model.zip']) {
      const error = await refusal(new Map([[name, zip]]));
      expect(error.message).toMatch(/must hold config\.json/);
    }
    const weightsOnly = await refusal(new Map([['model.weights.h5', entries.get('model.weights.h5')!]]));
    expect(weightsOnly.message).toMatch(/weights only/);
  });

  it('an HDF5 file that is not a Keras model is refused', async () => {
    const bytes = new Uint8Array(readFileSync(path.join(ownFixturesDir, 'not-keras.h5')));
    const error = await refusal(new Map([['data.h5', bytes]]));
    expect(error.message).toMatch(/is an HDF5 file but not a Keras model/);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.lstm))(`a truncated .h5 is refused as unreadable, not with a crash${needs(KERAS_FIXTURES.lstm)}`, async () => {
    const bytes = fixtureBytes(KERAS_FIXTURES.lstm);
    // Cut inside the header, inside the root metadata, and inside the embedding matrix. (Cutting only the
    // tail loses optimizer state the converter never reads, so such a file still converts.)
    for (const length of [512, 64 * 1024, bytes.length >> 2]) {
      const error = await refusal(new Map([['lstm_model.h5', bytes.slice(0, length)]]));
      expect(error.message).toMatch(/HDF5|truncated/);
    }
  });
});
