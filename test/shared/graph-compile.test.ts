// The graph compiler: layers models lowered to graph models of fused TF ops compute what stock
// TF.js's layers runtime computes (within 1e-5 relative), with BatchNormalization folded,
// activations fused, and paddings merged into the convolutions; what it cannot lower is named.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import type { DecodedModel, FileSet } from '../../converter/model.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { readInput } from '../../converter/read/files.ts';
import { modelFiles } from '../../models/train/save.ts';
import { NotCompilable } from '../../shared/graph/compile.ts';
import { encodeAndShard, loadConverted } from '../helpers/keras.ts';
import { HAVE_FIXTURES, NO_FIXTURES_REASON } from '../helpers/fixtures.ts';
import { MOBILENET_DIR } from '../helpers/publish-models.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

async function layersAndGraph(files: FileSet) {
  const decoded = await readModel(files);
  const { model: graph, summary } = compileToGraph(decoded);
  return { decoded, graph, summary };
}

/** Both models on the same inputs: the largest difference relative to max(1, largest output). */
async function relativeDifference(layers: DecodedModel, graph: DecodedModel, input: tf.Tensor): Promise<number> {
  const a = await loadConverted(encodeAndShard(layers));
  const b = await loadConverted(encodeAndShard(graph));
  try {
    expect(b.inputs.map((t) => t.name)).toEqual(a.inputs.map((t) => t.name));
    expect(b.outputs.map((t) => t.name)).toEqual(a.outputs.map((t) => t.name));
    const [x] = await a.predict([input]);
    const [y] = await b.predict([input]);
    const [xs, ys] = [await x!.data(), await y!.data()];
    expect(ys.length).toBe(xs.length);
    let diff = 0;
    let peak = 0;
    for (let i = 0; i < xs.length; i++) {
      diff = Math.max(diff, Math.abs(xs[i]! - ys[i]!));
      peak = Math.max(peak, Math.abs(xs[i]!));
    }
    tf.dispose([x!, y!]);
    return diff / Math.max(1, peak);
  } finally {
    a.dispose();
    b.dispose();
  }
}

describe('compileToGraph', () => {
  it('fuses conv + BN + ReLU6, merges ZeroPadding2D, and computes what the layers model computes (Sequential)', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [12, 12, 3], filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'conv1' }),
        tfl.layers.batchNormalization({ name: 'bn1' }),
        tfl.layers.reLU({ maxValue: 6, name: 'relu1' }),
        tfl.layers.zeroPadding2d({
          padding: [
            [0, 1],
            [0, 1],
          ],
          name: 'pad',
        }),
        tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', name: 'dw' }),
        tfl.layers.batchNormalization({ name: 'bn2' }),
        tfl.layers.activation({ activation: 'relu', name: 'act2' }),
        tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
        tfl.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'relu', name: 'conv2' }),
        tfl.layers.globalAveragePooling2d({ name: 'gap' }),
        tfl.layers.dropout({ rate: 0.3, name: 'drop' }),
        tfl.layers.dense({ units: 4, activation: 'softmax', name: 'probs' }),
      ],
    });
    setFixedWeights(model, 11);
    const { decoded, graph, summary } = await layersAndGraph(await modelFiles(model));
    model.dispose();
    expect(summary.ops).toEqual({ Placeholder: 1, _FusedConv2D: 2, FusedDepthwiseConv2dNative: 1, MaxPool: 1, Mean: 1, _FusedMatMul: 1, Softmax: 1, Identity: 1 });
    expect(summary.fusedLayers).toBe(4);
    const x = tf.tensor(fixedValues(2 * 12 * 12 * 3, 3), [2, 12, 12, 3]);
    expect(await relativeDifference(decoded, graph, x)).toBeLessThan(1e-5);
    x.dispose();
  });

  it('lowers functional models: Add, Concatenate, Rescaling, Flatten, BN on its own, a padding read by a pool', async () => {
    const input = tfl.input({ shape: [8, 8, 2], name: 'image' });
    const scaled = tfl.layers.rescaling({ scale: 1 / 255, offset: -0.5, name: 'scale' }).apply(input) as tfl.SymbolicTensor;
    const a = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'a' }).apply(scaled) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'sigmoid', name: 'b' }).apply(scaled) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'sum' }).apply([a, b]) as tfl.SymbolicTensor;
    const normed = tfl.layers.batchNormalization({ name: 'bn' }).apply(sum) as tfl.SymbolicTensor;
    const joined = tfl.layers.concatenate({ name: 'join' }).apply([normed, a]) as tfl.SymbolicTensor;
    const padded = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(joined) as tfl.SymbolicTensor;
    const pooled = tfl.layers.averagePooling2d({ poolSize: 2, name: 'avg' }).apply(padded) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten({ name: 'flat' }).apply(pooled) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 3, activation: 'tanh', name: 'out' }).apply(flat) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    setFixedWeights(model, 29);
    const { decoded, graph, summary } = await layersAndGraph(await modelFiles(model));
    model.dispose();
    expect(summary.ops).toMatchObject({ _FusedConv2D: 2, AddV2: 3, Mul: 2, ConcatV2: 1, Pad: 1, AvgPool: 1, Reshape: 1, _FusedMatMul: 1, Tanh: 1 });
    const x = tf.tensor(
      fixedValues(3 * 8 * 8 * 2, 5).map((v) => (v + 1) * 127.5),
      [3, 8, 8, 2],
    );
    expect(await relativeDifference(decoded, graph, x)).toBeLessThan(1e-5);
    x.dispose();
  });

  it('names the first layer it cannot lower', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.repeatVector({ inputShape: [5], n: 3, name: 'repeat' })] });
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    expect(() => compileToGraph(decoded)).toThrow(NotCompilable);
    expect(() => compileToGraph(decoded)).toThrow(/layer "repeat" of class RepeatVector has no graph lowering yet/);
  });

  it.skipIf(!HAVE_FIXTURES)(
    `MobileNetV2 (nsfwjs layers model): 52 BNs folded, 35 ReLU6 fused, paddings merged, same outputs within 1e-5${HAVE_FIXTURES ? '' : ` [${NO_FIXTURES_REASON}]`}`,
    async () => {
      const { decoded, graph, summary } = await layersAndGraph(await readInput(MOBILENET_DIR));
      expect(summary.ops).toMatchObject({ _FusedConv2D: 35, FusedDepthwiseConv2dNative: 17, AddV2: 10 });
      expect(summary.ops.Pad).toBeUndefined();
      expect(summary.ops.Relu6).toBeUndefined();
      const x = tf.tensor(
        fixedValues(224 * 224 * 3, 7).map((v) => (v + 1) / 2),
        [1, 224, 224, 3],
      );
      expect(await relativeDifference(decoded, graph, x)).toBeLessThan(1e-5);
      x.dispose();
    },
  );
});
