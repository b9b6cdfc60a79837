// The graph compiler's LayerNormalization (shared/graph/lower/normalization.ts) equals TF.js
// layers within 1e-5 over the last axis and over the trailing two; other axes are refused by name.
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

describe('LayerNormalization lowering', () => {
  for (const axis of [-1, [1, 2]]) {
    it(`equals TF.js layers within 1e-5 (axis ${JSON.stringify(axis)})`, async () => {
      const alone = tfl.sequential({ layers: [tfl.layers.layerNormalization({ inputShape: [4, 5], axis, epsilon: 1e-4, name: 'ln' })] });
      setFixedWeights(alone, 53);
      const lnModel = await readModel(await modelFiles(alone));
      alone.dispose();
      const { model: graph, summary } = compileToGraph(lnModel);
      expect(summary.ops).toMatchObject({ Mean: 2, SquaredDifference: 1, Rsqrt: 1 });
      const x = tf.tensor(
        fixedValues(3 * 4 * 5, 59).map((v) => v * 4 + 1),
        [3, 4, 5],
      );
      const [expected, actual] = [await predictDecoded(lnModel, x), await predictDecoded(graph, x)];
      x.dispose();
      expect(relativeDifference(expected.values, actual.values)).toBeLessThan(1e-5);
    });
  }

  it('refuses a non-trailing axis, naming the layer', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.layerNormalization({ inputShape: [4, 5], axis: 1, name: 'ln_mid' })] });
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    expect(() => compileToGraph(decoded)).toThrow(/LayerNormalization "ln_mid" normalizes axes \[?1\]? of a rank-3 input \(only trailing axes/);
  });
});
