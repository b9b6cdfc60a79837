// The graph compiler's recurrent lowerings (shared/graph/lower/recurrent.ts), unrolled over the
// timesteps: GRU (reset_after=False), LSTM and SimpleRNN compute what stock TF.js layers computes
// (1e-5 relative); GRU reset_after=True, which TF.js layers cannot build, computes what a plain JS
// implementation of the Keras formulas computes from the raw weights (1e-4); refusals name the option.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { modelFiles } from '../../models/train/save.ts';
import { canLower } from '../../shared/graph/can-lower.ts';
import { gruResetAfter, seq } from '../helpers/keras-reference.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { predictDecoded, relativeDifference } from '../helpers/graph-compare.ts';

beforeAll(async () => {
  await useNodeBackend();
});

async function compareWithLayers(layer: tfl.layers.Layer, seed: number) {
  const model = tfl.sequential({ layers: [layer] });
  setFixedWeights(model, seed);
  const decoded = await readModel(await modelFiles(model));
  model.dispose();
  const { model: graph, summary } = compileToGraph(decoded);
  const x = tf.tensor(fixedValues(2 * 5 * 3, seed + 1), [2, 5, 3]);
  const drift = relativeDifference((await predictDecoded(decoded, x)).values, (await predictDecoded(graph, x)).values);
  x.dispose();
  return { drift, summary };
}

describe('recurrent lowerings', () => {
  it('GRU reset_after=False (return_sequences, go_backwards) equals TF.js layers within 1e-5', async () => {
    const { drift, summary } = await compareWithLayers(
      tfl.layers.gru({ inputShape: [5, 3], units: 4, returnSequences: true, goBackwards: true, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform', name: 'gru' }),
      3,
    );
    expect(drift).toBeLessThan(1e-5);
    expect(summary.ops).toMatchObject({ _FusedMatMul: 10, Unpack: 1, MatMul: 8, Pack: 1, Tanh: 5, Sigmoid: 5 });
  });

  it('LSTM and SimpleRNN equal TF.js layers within 1e-5', async () => {
    const lstm = await compareWithLayers(tfl.layers.lstm({ inputShape: [5, 3], units: 4, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform', name: 'lstm' }), 5);
    expect(lstm.drift).toBeLessThan(1e-5);
    expect(lstm.summary.ops).toMatchObject({ _FusedMatMul: 5, Unpack: 1, MatMul: 4, Split: 5 });
    const rnn = await compareWithLayers(tfl.layers.simpleRNN({ inputShape: [5, 3], units: 6, returnSequences: true, recurrentInitializer: 'glorotUniform', name: 'rnn' }), 7);
    expect(rnn.drift).toBeLessThan(1e-5);
  });

  it('GRU reset_after=True (which TF.js layers cannot build) equals the Keras formulas from the raw weights within 1e-4', async () => {
    for (const sequences of [true, false]) {
      const model = tfl.sequential({
        layers: [tfl.layers.gru({ inputShape: [5, 3], units: 4, returnSequences: sequences, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform', name: 'gru' })],
      });
      setFixedWeights(model, 13);
      const decoded = await readModel(await modelFiles(model));
      model.dispose();
      // The same layer as Keras saves it with reset_after=True: a [2, 3u] bias (input row, recurrent row).
      type Config = { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
      const topology = decoded.modelJson.modelTopology as Config & { model_config?: Config };
      for (const layer of (topology.model_config ?? topology).config.layers) if (layer.class_name === 'GRU') layer.config.reset_after = true;
      const bias = Float32Array.from(fixedValues(2 * 12, 17));
      decoded.weights = decoded.weights.map((w) => (w.name === 'gru/bias' ? { ...w, shape: [2, 12], values: bias } : w));
      const weight = (name: string) => decoded.weights.find((w) => w.name === name)!.values as Float32Array;
      const { model: graph } = compileToGraph(decoded);
      const xs = fixedValues(2 * 5 * 3, 19);
      const x = tf.tensor(xs, [2, 5, 3]);
      const expected = gruResetAfter(seq(xs, 2, 5, 3), weight('gru/kernel'), weight('gru/recurrent_kernel'), bias, 4, sequences).values;
      expect(relativeDifference(expected, (await predictDecoded(graph, x)).values)).toBeLessThan(1e-4);
      x.dispose();
    }
  });

  it('Bidirectional LSTM (concat, return_sequences) and GRU (sum, last state) equal TF.js layers within 1e-5', async () => {
    const lstm = await compareWithLayers(
      tfl.layers.bidirectional({
        inputShape: [5, 3],
        layer: tfl.layers.lstm({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform', name: 'lstm' }) as tfl.RNN,
        mergeMode: 'concat',
        name: 'bi',
      }),
      21,
    );
    expect(lstm.drift).toBeLessThan(1e-5);
    expect(lstm.summary.ops).toMatchObject({ ReverseV2: 1, ConcatV2: 1, Pack: 2 });
    const gru = await compareWithLayers(
      tfl.layers.bidirectional({
        inputShape: [5, 3],
        layer: tfl.layers.gru({ units: 3, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform', name: 'gru' }) as tfl.RNN,
        mergeMode: 'sum',
        name: 'bi',
      }),
      23,
    );
    expect(gru.drift).toBeLessThan(1e-5);
  });

  it('Bidirectional GRU reset_after=True (concat, return_sequences) equals the Keras formulas within 1e-4', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.bidirectional({
          inputShape: [5, 3],
          layer: tfl.layers.gru({ units: 4, returnSequences: true, recurrentActivation: 'sigmoid', recurrentInitializer: 'glorotUniform', name: 'gru' }) as tfl.RNN,
          name: 'bi',
        }),
      ],
    });
    setFixedWeights(model, 25);
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    type Config = { config: { layers: { class_name: string; config: { layer: { config: Record<string, unknown> } } }[] } };
    const topology = decoded.modelJson.modelTopology as Config & { model_config?: Config };
    (topology.model_config ?? topology).config.layers[0]!.config.layer.config.reset_after = true;
    const biases = { forward: Float32Array.from(fixedValues(24, 27)), backward: Float32Array.from(fixedValues(24, 29)) };
    decoded.weights = decoded.weights.map((w) => (w.name.endsWith('/bias') ? { ...w, shape: [2, 12], values: w.name.includes('forward') ? biases.forward : biases.backward } : w));
    const weight = (name: string) => decoded.weights.find((w) => w.name === name)!.values as Float32Array;
    const xs = fixedValues(2 * 5 * 3, 31);
    const forward = gruResetAfter(seq(xs, 2, 5, 3), weight('bi/forward_gru/kernel'), weight('bi/forward_gru/recurrent_kernel'), biases.forward, 4, true);
    // go_backwards: the reversed sequence, its outputs reversed back.
    const reversed = Array.from({ length: 30 }, (_, i) => xs[Math.floor(i / 15) * 15 + (4 - (Math.floor(i / 3) % 5)) * 3 + (i % 3)]!);
    const backward = gruResetAfter(seq(reversed, 2, 5, 3), weight('bi/backward_gru/kernel'), weight('bi/backward_gru/recurrent_kernel'), biases.backward, 4, true);
    const expected = Array.from({ length: 2 * 5 * 8 }, (_, i) => {
      const [b, t, j] = [Math.floor(i / 40), Math.floor(i / 8) % 5, i % 8];
      return j < 4 ? forward.values[(b * 5 + t) * 4 + j]! : backward.values[(b * 5 + (4 - t)) * 4 + j - 4]!;
    });
    const x = tf.tensor(xs, [2, 5, 3]);
    expect(relativeDifference(expected, (await predictDecoded(compileToGraph(decoded).model, x)).values)).toBeLessThan(1e-4);
    x.dispose();
    expect(canLower('Bidirectional', { layer: { class_name: 'GRU', config: { reset_after: true } }, merge_mode: null })).toBe(false);
  });

  it('refuses what it does not lower, naming the layer and the option', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.lstm({ inputShape: [5, 3], units: 2, recurrentInitializer: 'glorotUniform', name: 'old_lstm' })] }); // hard_sigmoid by default
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    expect(() => compileToGraph(decoded)).toThrow(/LSTM "old_lstm" has recurrent_activation="hard_sigmoid"/);
    expect(canLower('GRU', { reset_after: true, recurrent_activation: 'sigmoid' })).toBe(true);
    expect(canLower('GRU', { reset_after: true, stateful: true })).toBe(false);
    expect(canLower('TFOpLambda', {})).toBe(false);
  });
});
