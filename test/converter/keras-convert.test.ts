// Keras files through the whole conversion pipeline (converter/convert.ts convertModel): read,
// quantize every weight to uint8, shard, and verify the result with stock TF.js against float32.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertModel } from '../../converter/convert.ts';
import { fixtureFiles, hasFixture, KERAS_FIXTURES, needs } from '../helpers/keras.ts';
import { loadMnistDigits, sampleDigits } from '../helpers/mnist.ts';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

describe('convertModel on Keras files, quantize uint8', () => {
  it.skipIf(!hasFixture(KERAS_FIXTURES.lstm))(`lstm_model.h5 (Keras 3 legacy HDF5) passes verification${needs(KERAS_FIXTURES.lstm)}`, async () => {
    const result = await convertModel(fixtureFiles(KERAS_FIXTURES.lstm), { name: 'imdb-lstm', quantize: 'uint8' });
    expect(result.report.passed).toBe(true);
    expect(result.metadata.source.format).toBe('keras-h5');
    expect(result.metadata.signature.outputs[0]!.shape).toEqual([-1, 1]);
    expect(Object.values(result.metadata.quantization.weights).every((q) => q.dtype === 'uint8')).toBe(true);
    console.log(`lstm_model.h5 uint8: relative drift ${result.report.relativeError.toPrecision(3)} on ${result.report.samples} samples, ${result.metadata.sizes.converted} bytes`);
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.mnistMlp))(`mnist_mlp_keras3.3.3.keras (Keras 3 zip) passes verification on real digits${needs(KERAS_FIXTURES.mnistMlp)}`, async () => {
    const digits = sampleDigits(loadMnistDigits(), 64);
    const result = await convertModel(fixtureFiles(KERAS_FIXTURES.mnistMlp), {
      name: 'mnist-mlp',
      quantize: 'uint8',
      calibration: () => ({ description: '64 digits of the mnist package', kind: 'data', samples: 64, batches: [[{ shape: [64, 28, 28], dtype: 'float32', values: digits.pixels }]] }),
    });
    expect(result.report.passed).toBe(true);
    expect(result.report.top1Agreement).toBeGreaterThanOrEqual(0.98);
    expect(result.metadata.source).toMatchObject({ format: 'keras-v3', generatedBy: 'keras v3.3.3' });
    console.log(`mnist_mlp_keras3.3.3.keras uint8: relative drift ${result.report.relativeError.toPrecision(3)}, top-1 agreement ${result.report.top1Agreement} on ${result.report.samples} digits`);
  });
});
