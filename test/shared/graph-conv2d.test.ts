// The graph compiler's SeparableConv2D and Conv2DTranspose (shared/graph/lower/conv2d.ts) compute
// what stock TF.js layers computes for the same weights (1e-5 relative), over strides, paddings,
// dilation and activations, and on a real Keras mini-Xception when ../shared/fixtures is present; options it does not lower are refused by name.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { modelFiles } from '../../models/train/save.ts';
import { fixtureFiles, KERAS_FIXTURES, needs } from '../helpers/keras.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { predictDecoded, relativeDifference } from '../helpers/graph-compare.ts';

beforeAll(async () => {
  await useNodeBackend();
});

async function compareWithLayers(layer: tfl.layers.Layer, seed: number, inputShape: [number, number, number]) {
  const model = tfl.sequential({ layers: [layer] });
  setFixedWeights(model, seed);
  const decoded = await readModel(await modelFiles(model));
  model.dispose();
  const { model: graph, summary } = compileToGraph(decoded);
  const x = tf.tensor(fixedValues(2 * inputShape.reduce((a, b) => a * b, 1), seed + 1), [2, ...inputShape]);
  const layers = await predictDecoded(decoded, x);
  const compiled = await predictDecoded(graph, x);
  x.dispose();
  expect(compiled.shape).toEqual(layers.shape);
  return { drift: relativeDifference(layers.values, compiled.values), summary };
}

describe('SeparableConv2D and Conv2DTranspose lowerings', () => {
  it('SeparableConv2D (same, strides 2, relu; valid, dilation 2, tanh) equals TF.js layers within 1e-5', async () => {
    const strided = await compareWithLayers(
      tfl.layers.separableConv2d({ inputShape: [7, 6, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'sep' }),
      31,
      [7, 6, 3],
    );
    expect(strided.drift).toBeLessThan(1e-5);
    expect(strided.summary.ops).toMatchObject({ DepthwiseConv2dNative: 1, _FusedConv2D: 1 });
    const dilated = await compareWithLayers(
      tfl.layers.separableConv2d({ inputShape: [8, 8, 2], filters: 3, kernelSize: 3, dilationRate: 2, padding: 'valid', activation: 'tanh', name: 'sep2' }),
      33,
      [8, 8, 2],
    );
    expect(dilated.drift).toBeLessThan(1e-5);
  });

  it('Conv2DTranspose (same, strides 2, relu; valid, kernel 3x2, linear) equals TF.js layers within 1e-5', async () => {
    const same = await compareWithLayers(tfl.layers.conv2dTranspose({ inputShape: [4, 5, 3], filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'up' }), 41, [4, 5, 3]);
    expect(same.drift).toBeLessThan(1e-5);
    expect(same.summary.ops).toMatchObject({ Conv2DBackpropInput: 1, BiasAdd: 1, Relu: 1 });
    const valid = await compareWithLayers(tfl.layers.conv2dTranspose({ inputShape: [4, 5, 3], filters: 4, kernelSize: [3, 2], strides: [1, 2], padding: 'valid', name: 'up2' }), 43, [4, 5, 3]);
    expect(valid.drift).toBeLessThan(1e-5);
  });

  it.skipIf(needs(KERAS_FIXTURES.xception) !== '')(
    `a real Keras 2.0.5 mini-Xception (SeparableConv2D, BatchNormalization, Add) compiles and equals TF.js layers within 1e-5${needs(KERAS_FIXTURES.xception)}`,
    async () => {
      const decoded = await readModel(fixtureFiles(KERAS_FIXTURES.xception));
      const { model: graph, summary } = compileToGraph(decoded);
      expect(summary.ops.DepthwiseConv2dNative).toBeGreaterThan(0);
      const x = tf.tensor(
        fixedValues(2 * 64 * 64, 3).map((v) => (v + 1) / 2),
        [2, 64, 64, 1],
      );
      const drift = relativeDifference((await predictDecoded(decoded, x)).values, (await predictDecoded(graph, x)).values);
      x.dispose();
      expect(drift).toBeLessThan(1e-5);
    },
  );

  it('refuses output_padding and dilated transposed convolutions by name', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.conv2dTranspose({ inputShape: [4, 4, 1], filters: 1, kernelSize: 3, name: 'up' })] });
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    type Config = { config: { layers: { config: Record<string, unknown> }[] } };
    const topology = decoded.modelJson.modelTopology as Config & { model_config?: Config };
    (topology.model_config ?? topology).config.layers[0]!.config.dilation_rate = [2, 2];
    expect(() => compileToGraph(decoded)).toThrow(/Conv2DTranspose "up" has dilation_rate=\[2,2\]/);
  });
});
