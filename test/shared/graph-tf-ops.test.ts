// TFOpLambda layers (plain tf calls Keras records, shared/graph/lower/tf-ops.ts): binary ops with a
// tensor `y` passed by keyword in the one-level inbound form Keras writes, or a number `y`, equal
// the same op computed with tfjs-core from the raw weights; other functions are refused by name.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import type { DecodedModel } from '../../converter/model.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { modelFiles } from '../../models/train/save.ts';
import { encodeAndShard, loadConverted } from '../helpers/keras.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

/** x → Dense "a" → TFOpLambda "op"(a, **kwargs), built by rewriting a Dense slot. */
async function opModel(fn: string, kwargs: Record<string, unknown>): Promise<DecodedModel> {
  const x = tfl.input({ shape: [4], name: 'x' });
  const a = tfl.layers.dense({ units: 4, name: 'a' }).apply(x) as tfl.SymbolicTensor;
  const slot = tfl.layers.dense({ units: 4, name: 'op' }).apply(a) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: slot });
  setFixedWeights(model, 97);
  const decoded = await readModel(await modelFiles(model));
  model.dispose();
  type Layer = { class_name: string; config: Record<string, unknown>; inbound_nodes: unknown[] };
  type Config = { config: { layers: Layer[] } };
  const topology = decoded.modelJson.modelTopology as Config & { model_config?: Config };
  const op = (topology.model_config ?? topology).config.layers.find((l) => l.config.name === 'op')!;
  op.class_name = 'TFOpLambda';
  op.config = { name: 'op', function: fn };
  op.inbound_nodes = [['a', 0, 0, { ...kwargs, name: null }]];
  decoded.weights = decoded.weights.filter((w) => !w.name.startsWith('op/'));
  return decoded;
}

async function run(decoded: DecodedModel, xs: Float32Array): Promise<{ actual: Float32Array; a: tf.Tensor; x: tf.Tensor }> {
  const { model: graph } = compileToGraph(decoded);
  const weight = (name: string) => decoded.weights.find((w) => w.name === name)!;
  const x = tf.tensor(xs, [2, 4]);
  const k = weight('a/kernel');
  const a = tf.add(tf.matMul(x, tf.tensor(k.values as Float32Array, k.shape)), tf.tensor(weight('a/bias').values as Float32Array));
  const loaded = await loadConverted(encodeAndShard(graph));
  const [y] = await loaded.predict([x]);
  const actual = (await y!.data()) as Float32Array;
  y!.dispose();
  loaded.dispose();
  return { actual, a, x };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]!)));

describe('TFOpLambda lowering', () => {
  it('__operators__.add with a tensor y (the model input) and math.multiply with y = 2.5', async () => {
    const xs = fixedValues(8, 101);
    const added = await run(await opModel('__operators__.add', { y: ['x', 0, 0] }), xs);
    const expectedAdd = await tf.add(added.a, added.x).data();
    expect(maxDiff(expectedAdd, added.actual)).toBeLessThan(1e-5);
    tf.dispose([added.a, added.x]);
    const scaled = await run(await opModel('math.multiply', { y: 2.5 }), xs);
    const expectedMul = await tf.mul(scaled.a, 2.5).data();
    expect(maxDiff(expectedMul, scaled.actual)).toBeLessThan(1e-5);
    tf.dispose([scaled.a, scaled.x]);
  });

  it('refuses functions it does not lower and unknown arguments, by name', async () => {
    await expect(opModel('math.reduce_mean', { axis: 1 }).then(compileToGraph)).rejects.toThrow(/TFOpLambda "op" calls function "math.reduce_mean" \(not lowered\)/);
    await expect(opModel('math.add', { y: 1, alpha: 2 }).then(compileToGraph)).rejects.toThrow(/TFOpLambda "op" \(math.add\) has arguments alpha/);
  });
});
