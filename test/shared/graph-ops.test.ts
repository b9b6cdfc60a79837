// The graph compiler's single-op layers (shared/graph/lower/ops.ts): Embedding (float and int32
// indices), Permute and UpSampling2D equal TF.js layers within 1e-5; masks and bilinear are refused.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { modelFiles } from '../../models/train/save.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { predictDecoded, relativeDifference } from '../helpers/graph-compare.ts';

beforeAll(async () => {
  await useNodeBackend();
});

async function compare(model: tfl.LayersModel, x: tf.Tensor) {
  setFixedWeights(model, 61);
  const decoded = await readModel(await modelFiles(model));
  model.dispose();
  const { model: graph, summary } = compileToGraph(decoded);
  const [expected, actual] = [await predictDecoded(decoded, x), await predictDecoded(graph, x)];
  x.dispose();
  expect(actual.shape).toEqual(expected.shape);
  return { drift: relativeDifference(expected.values, actual.values), ops: summary.ops };
}

describe('single-op lowerings', () => {
  it('Embedding (float indices) then Permute equal TF.js layers within 1e-5', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.embedding({ inputShape: [6], inputDim: 10, outputDim: 4, name: 'embed' }), tfl.layers.permute({ dims: [2, 1], name: 'swap' })],
    });
    const { drift, ops } = await compare(model, tf.tensor([0, 1, 2, 3, 9, 9, 5, 4, 3, 2, 1, 0], [2, 6]));
    expect(ops).toMatchObject({ Cast: 1, GatherV2: 1, Transpose: 1 });
    expect(drift).toBeLessThan(1e-5);
  });

  it('Embedding on an int32 input reads the indices as they are', async () => {
    const input = tfl.input({ shape: [3], dtype: 'int32', name: 'tokens' });
    const out = tfl.layers.embedding({ inputDim: 5, outputDim: 2, name: 'embed' }).apply(input) as tfl.SymbolicTensor;
    const { drift, ops } = await compare(tfl.model({ inputs: input, outputs: out }), tf.tensor([4, 0, 2, 1, 3, 3], [2, 3], 'int32'));
    expect(ops.Cast).toBeUndefined();
    expect(drift).toBeLessThan(1e-5);
  });

  it('UpSampling2D (nearest) equals TF.js layers within 1e-5', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.upSampling2d({ inputShape: [3, 4, 2], size: [2, 3], name: 'up' })] });
    const { drift, ops } = await compare(model, tf.tensor(fixedValues(2 * 3 * 4 * 2, 67), [2, 3, 4, 2]));
    expect(ops).toMatchObject({ ResizeNearestNeighbor: 1 });
    expect(drift).toBeLessThan(1e-5);
  });

  it('refuses mask_zero and bilinear upsampling by name', async () => {
    for (const [layer, message] of [
      [tfl.layers.embedding({ inputShape: [3], inputDim: 5, outputDim: 2, maskZero: true, name: 'masked' }), /Embedding "masked" has mask_zero=True/],
      [tfl.layers.upSampling2d({ inputShape: [2, 2, 1], interpolation: 'bilinear', name: 'smooth' }), /UpSampling2D "smooth" has interpolation="bilinear"/],
    ] as const) {
      const model = tfl.sequential({ layers: [layer] });
      const decoded = await readModel(await modelFiles(model));
      model.dispose();
      expect(() => compileToGraph(decoded)).toThrow(message);
    }
  });
});
