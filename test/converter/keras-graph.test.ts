// Keras models TF.js layers cannot build reach stock TF.js through the graph compiler: the reader
// passes them, convertModel compiles them before the reference run, and the converted graph model
// (loaded with tf.loadGraphModel) predicts what a plain JS implementation of the Keras formulas
// computes from the file's raw weights. Wild fixtures (../shared/fixtures/keras-wild) skip visibly when absent.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertModel } from '../../converter/convert.ts';
import { readModel } from '../../converter/read/index.ts';
import { conv1d, conv1dTranspose, dense, gruResetAfter, type Seq, seq } from '../helpers/keras-reference.ts';
import { fixtureFiles, loadConverted, needs } from '../helpers/keras.ts';
import { fixedValues } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

const GRU = 'keras-wild/BisulElang__xauusd-gru-forecasting__gru_model.keras';
const AUTOENCODER = 'keras-wild/ahmethe__Detect-Anomalies-withAutoEncoder__autoencoder.keras';

/** Converts (float32 weights), loads the published files with stock TF.js, and compares with the reference. */
async function convertAndCompare(file: string, shape: number[], reference: (x: Seq, weight: (name: string) => Float32Array) => Seq) {
  const files = fixtureFiles(file);
  const decoded = await readModel(files);
  const weight = (name: string) => decoded.weights.find((w) => w.name === name)!.values as Float32Array;
  const result = await convertModel(files, { name: 'x', quantize: 'none' });
  const loaded = await loadConverted(result.modelFiles);
  try {
    expect(result.modelFiles.modelJson.format).toBe('graph-model');
    const xs = fixedValues(
      shape.reduce((a, b) => a * b, 1),
      5,
    ).map((v) => (v + 1) / 2);
    const x = tf.tensor(xs, shape);
    const [y] = await loaded.predict([x]);
    const actual = await y!.data();
    tf.dispose([x, y!]);
    const expected = reference(seq(xs, shape[0]!, shape[1]!, shape[2]!), weight).values;
    expect(actual.length).toBe(expected.length);
    let diff = 0;
    let peak = 0;
    for (let i = 0; i < expected.length; i++) {
      diff = Math.max(diff, Math.abs(expected[i]! - actual[i]!));
      peak = Math.max(peak, Math.abs(expected[i]!));
    }
    const drift = diff / Math.max(1, peak);
    console.log(`${file}: relative drift ${drift.toExponential(2)} against the JS reference; ops ${JSON.stringify(result.metadata.serving?.ops ?? {})}`);
    return { drift };
  } finally {
    loaded.dispose();
  }
}

describe('Keras models only the graph compiler can serve', () => {
  it.skipIf(needs(GRU) !== '')(`GRU x2 with reset_after=True converts and equals the Keras formulas within 1e-4${needs(GRU)}`, async () => {
    const { drift } = await convertAndCompare(GRU, [2, 30, 3], (x, w) => {
      const h1 = gruResetAfter(x, w('gru/kernel'), w('gru/recurrent_kernel'), w('gru/bias'), 64, true);
      const h2 = gruResetAfter(h1, w('gru_1/kernel'), w('gru_1/recurrent_kernel'), w('gru_1/bias'), 32, false);
      return dense(dense(h2, w('dense/kernel'), w('dense/bias'), 16, 'relu'), w('dense_1/kernel'), w('dense_1/bias'), 1, 'linear');
    });
    expect(drift).toBeLessThan(1e-4);
  });

  it.skipIf(needs(AUTOENCODER) !== '')(`Conv1D x2 + Conv1DTranspose x3 autoencoder converts and equals the Keras formulas within 1e-4${needs(AUTOENCODER)}`, async () => {
    const { drift } = await convertAndCompare(AUTOENCODER, [2, 120, 8], (x, w) => {
      let y = conv1d(x, w('conv1d/kernel'), w('conv1d/bias'), 7, 32, 'same', 'relu');
      y = conv1d(y, w('conv1d_1/kernel'), w('conv1d_1/bias'), 7, 16, 'same', 'relu');
      y = conv1dTranspose(y, w('conv1d_transpose/kernel'), w('conv1d_transpose/bias'), 7, 16, 1, 'same', 'relu');
      y = conv1dTranspose(y, w('conv1d_transpose_1/kernel'), w('conv1d_transpose_1/bias'), 7, 32, 1, 'same', 'relu');
      return conv1dTranspose(y, w('conv1d_transpose_2/kernel'), w('conv1d_transpose_2/bias'), 7, 8, 1, 'same', 'linear');
    });
    expect(drift).toBeLessThan(1e-4);
  });
});
