// The graph compiler's 1-D convolutions (shared/graph/lower/conv1d.ts): Conv1D equals TF.js layers
// within 1e-5 ('same', 'valid', 'causal', strides, dilation, fused and separate activations);
// Conv1DTranspose, which TF.js layers lacks, equals a plain JS transposed convolution within 1e-4.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { modelFiles } from '../../models/train/save.ts';
import { canLower } from '../../shared/graph/can-lower.ts';
import { conv1dTranspose, seq } from '../helpers/keras-reference.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { predictDecoded, relativeDifference } from '../helpers/graph-compare.ts';

beforeAll(async () => {
  await useNodeBackend();
});

describe('Conv1D / Conv1DTranspose lowerings', () => {
  it('Conv1D equals TF.js layers within 1e-5', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv1d({ inputShape: [11, 3], filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', name: 'same' }),
        tfl.layers.conv1d({ filters: 4, kernelSize: 2, padding: 'valid', dilationRate: 2, activation: 'tanh', name: 'dilated' }),
        tfl.layers.conv1d({ filters: 3, kernelSize: 3, strides: 2, padding: 'valid', name: 'strided' }),
      ],
    });
    setFixedWeights(model, 23);
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    const { model: graph, summary } = compileToGraph(decoded);
    expect(summary.ops).toMatchObject({ ExpandDims: 3, _FusedConv2D: 3, Squeeze: 3, Tanh: 1 });
    const x = tf.tensor(fixedValues(2 * 11 * 3, 29), [2, 11, 3]);
    const expected = await predictDecoded(decoded, x);
    const actual = await predictDecoded(graph, x);
    x.dispose();
    expect(actual.shape).toEqual([2, 4, 3]);
    expect(relativeDifference(expected.values, actual.values)).toBeLessThan(1e-5);
  });

  it("'causal' Conv1D (which TF.js layers does not run) equals TF.js layers' 'valid' one on the input left-padded by (k−1)·dilation", async () => {
    const layer = (padding: 'causal' | 'valid', steps: number) =>
      tfl.sequential({ layers: [tfl.layers.conv1d({ inputShape: [steps, 3], filters: 4, kernelSize: 3, dilationRate: 2, padding, name: 'conv' })] });
    const causal = layer('causal', 9);
    const valid = layer('valid', 13);
    setFixedWeights(causal, 43);
    setFixedWeights(valid, 43);
    const [causalModel, validModel] = [await readModel(await modelFiles(causal)), await readModel(await modelFiles(valid))];
    causal.dispose();
    valid.dispose();
    const { model: graph, summary } = compileToGraph(causalModel);
    expect(summary.ops).toMatchObject({ Pad: 1, _FusedConv2D: 1 });
    const x = tf.tensor(fixedValues(2 * 9 * 3, 47), [2, 9, 3]);
    const padded = tf.pad(x, [
      [0, 0],
      [4, 0],
      [0, 0],
    ]);
    const expected = await predictDecoded(validModel, padded);
    const actual = await predictDecoded(graph, x);
    tf.dispose([x, padded]);
    expect(actual.shape).toEqual([2, 9, 4]);
    expect(relativeDifference(expected.values, actual.values)).toBeLessThan(1e-5);
  });

  it('Conv1DTranspose equals a JS transposed convolution from the raw weights within 1e-4', async () => {
    for (const [stride, padding] of [
      [1, 'same'],
      [2, 'same'],
      [2, 'valid'],
    ] as const) {
      // A Conv1D layers model rewritten as Keras saves a Conv1DTranspose: kernel [k, filters, in].
      const model = tfl.sequential({ layers: [tfl.layers.conv1d({ inputShape: [6, 3], filters: 4, kernelSize: 3, name: 'up' })] });
      const decoded = await readModel(await modelFiles(model));
      model.dispose();
      type Config = { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
      const topology = decoded.modelJson.modelTopology as Config & { model_config?: Config };
      for (const layer of (topology.model_config ?? topology).config.layers)
        if (layer.config.name === 'up') Object.assign(layer, { class_name: 'Conv1DTranspose', config: { ...layer.config, strides: [stride], padding, activation: 'relu' } });
      const kernel = fixedValues(3 * 4 * 3, 31);
      const bias = fixedValues(4, 37);
      decoded.weights = decoded.weights.map((w) => (w.name === 'up/kernel' ? { ...w, shape: [3, 4, 3], values: kernel } : w.name === 'up/bias' ? { ...w, values: bias } : w));
      const { model: graph, summary } = compileToGraph(decoded);
      expect(summary.ops).toMatchObject({ Conv2DBackpropInput: 1, BiasAdd: 1, Relu: 1, Squeeze: 1 });
      const xs = fixedValues(2 * 6 * 3, 41);
      const x = tf.tensor(xs, [2, 6, 3]);
      const expected = conv1dTranspose(seq(xs, 2, 6, 3), kernel, bias, 3, 4, stride, padding, 'relu');
      const actual = await predictDecoded(graph, x);
      x.dispose();
      expect(actual.shape).toEqual([2, expected.steps, 4]);
      expect(relativeDifference(expected.values, actual.values)).toBeLessThan(1e-4);
    }
  });

  it('refuses configs it does not lower, by name', () => {
    expect(canLower('Conv1DTranspose', { padding: 'same', strides: [1] })).toBe(true);
    expect(canLower('Conv1DTranspose', { output_padding: [1] })).toBe(false);
    expect(canLower('Conv1D', { groups: 2 })).toBe(false);
    expect(canLower('Conv1D', { data_format: 'channels_first' })).toBe(false);
  });
});
