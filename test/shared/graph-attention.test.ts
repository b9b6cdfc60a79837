// The graph compiler's MultiHeadAttention (shared/graph/lower/attention.ts), which TF.js layers
// lacks, equals a plain JS implementation of Keras' formulas from the raw weights within 1e-4,
// with the value passed by keyword as Keras records it; masks are refused by name.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import type { DecodedModel } from '../../converter/model.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { modelFiles } from '../../models/train/save.ts';
import { canLower } from '../../shared/graph/can-lower.ts';
import { encodeAndShard, loadConverted } from '../helpers/keras.ts';
import { multiHeadAttention, seq } from '../helpers/keras-reference.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

const [T, D, H, K, OUT] = [5, 3, 2, 4, 3];

/** x → Conv1D "pre" (kernel 1) → value; MultiHeadAttention "mha"(query=x, value=pre), built by rewriting a Dense slot. */
async function attentionModel(kwargs: Record<string, unknown>): Promise<DecodedModel> {
  const x = tfl.input({ shape: [T, D], name: 'x' });
  const pre = tfl.layers.conv1d({ filters: D, kernelSize: 1, name: 'pre' }).apply(x) as tfl.SymbolicTensor;
  const slot = tfl.layers.dense({ units: OUT, name: 'mha' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: [slot, pre] });
  setFixedWeights(model, 71);
  const decoded = await readModel(await modelFiles(model));
  model.dispose();
  type Layer = { class_name: string; config: Record<string, unknown>; inbound_nodes: unknown[] };
  type Config = { config: { layers: Layer[]; output_layers: unknown[] } };
  const topology = decoded.modelJson.modelTopology as Config & { model_config?: Config };
  const config = (topology.model_config ?? topology).config;
  config.output_layers = [['mha', 0, 0]];
  const mha = config.layers.find((l) => l.config.name === 'mha')!;
  mha.class_name = 'MultiHeadAttention';
  mha.config = { name: 'mha', num_heads: H, key_dim: K, value_dim: K, use_bias: true, output_shape: null, attention_axes: [1] };
  mha.inbound_nodes = [[['x', 0, 0, { value: ['pre', 0, 0], ...kwargs }]]];
  const shapes: Record<string, number[]> = {
    'query/kernel': [D, H, K],
    'query/bias': [H, K],
    'key/kernel': [D, H, K],
    'key/bias': [H, K],
    'value/kernel': [D, H, K],
    'value/bias': [H, K],
    'attention_output/kernel': [H, K, OUT],
    'attention_output/bias': [OUT],
  };
  decoded.weights = [
    ...decoded.weights.filter((w) => !w.name.startsWith('mha/')),
    ...Object.entries(shapes).map(([key, shape], i) => ({
      name: `mha/${key}`,
      shape,
      dtype: 'float32' as const,
      values: fixedValues(
        shape.reduce((a, b) => a * b, 1),
        80 + i,
      ),
    })),
  ];
  return decoded;
}

/** Keras MultiHeadAttention in float64 (test/helpers/keras-reference.ts), key = value. */
function reference(xs: Float32Array, vs: Float32Array, batch: number, w: (name: string) => Float32Array): ArrayLike<number> {
  const part = (name: string) => ({ kernel: w(`mha/${name}/kernel`), bias: w(`mha/${name}/bias`) });
  const value = seq(vs, batch, T, D);
  return multiHeadAttention(seq(xs, batch, T, D), value, value, { query: part('query'), key: part('key'), value: part('value'), output: part('attention_output') }, H, K, K, OUT).values;
}

describe('MultiHeadAttention lowering', () => {
  it('equals the Keras formulas from the raw weights within 1e-4 (value passed by keyword)', async () => {
    const decoded = await attentionModel({});
    const weight = (name: string) => decoded.weights.find((w) => w.name === name)!.values as Float32Array;
    const { model: graph, summary } = compileToGraph(decoded);
    expect(summary.ops).toMatchObject({ BatchMatMulV2: 2, Softmax: 1, Transpose: 4, _FusedMatMul: 4 });
    const xs = fixedValues(2 * T * D, 91);
    const x = tf.tensor(xs, [2, T, D]);
    // The value is Conv1D "pre" (kernel 1) of x: computed here from its weights.
    const [pk, pb] = [weight('pre/kernel'), weight('pre/bias')];
    const vs = new Float32Array(xs.length);
    for (let r = 0; r < 2 * T; r++) for (let f = 0; f < D; f++) vs[r * D + f] = pb[f]! + Array.from({ length: D }, (_, c) => xs[r * D + c]! * pk[c * D + f]!).reduce((a, v) => a + v, 0);
    const loaded = await loadConverted(encodeAndShard(graph));
    const [y] = await loaded.predict([x]);
    const actual = await y!.data();
    tf.dispose([x, y!]);
    loaded.dispose();
    const expected = reference(xs, vs, 2, weight);
    expect(y!.shape).toEqual([2, T, OUT]);
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(expected[i]! - actual[i]!));
    expect(diff / Math.max(1, ...Array.from(expected, Math.abs))).toBeLessThan(1e-4);
  });

  it('refuses attention masks and causal masks by name', async () => {
    const masked = await attentionModel({ attention_mask: ['pre', 0, 0] });
    expect(() => compileToGraph(masked)).toThrow(/MultiHeadAttention "mha" has tensor arguments attention_mask/);
    expect(canLower('MultiHeadAttention', { use_causal_mask: true })).toBe(false);
    expect(canLower('MultiHeadAttention', { attention_axes: [1] })).toBe(true);
  });
});
