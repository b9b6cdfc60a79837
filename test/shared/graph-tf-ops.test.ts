// TFOpLambda layers (plain tf calls Keras records, shared/graph/lower/tf-ops.ts): binary ops with a
// tensor `y` passed by keyword in the one-level inbound form Keras writes, or a number `y`, and the
// shape, reduce, matmul, concat and unary functions equal the same op computed with tfjs-core; `x[...]`
// slices (SlicingOpLambda) equal plain JS indexing; other functions and arguments are refused by name.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import type { DecodedModel } from '../../converter/model.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { readModel } from '../../converter/read/index.ts';
import { modelFiles } from '../../models/train/save.ts';
import { predictDecoded, relativeDifference } from '../helpers/graph-compare.ts';
import { encodeAndShard, loadConverted } from '../helpers/keras.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

/** Turns the layer named 'op' of a decoded model into a Keras op layer (TFOpLambda / SlicingOpLambda) calling `fn` with one inbound node. */
function rewriteAsOp(decoded: DecodedModel, className: string, fn: string, node: unknown[]): void {
  type Layer = { class_name: string; config: Record<string, unknown>; inbound_nodes: unknown[] };
  type Config = { config: { layers: Layer[] } };
  const topology = decoded.modelJson.modelTopology as Config & { model_config?: Config };
  const op = (topology.model_config ?? topology).config.layers.find((l) => l.config.name === 'op')!;
  op.class_name = className;
  op.config = { name: 'op', function: fn };
  op.inbound_nodes = [node];
}

/** x → Dense "a" → TFOpLambda "op"(a, **kwargs), built by rewriting a Dense slot. */
async function opModel(fn: string, kwargs: Record<string, unknown>): Promise<DecodedModel> {
  const x = tfl.input({ shape: [4], name: 'x' });
  const a = tfl.layers.dense({ units: 4, name: 'a' }).apply(x) as tfl.SymbolicTensor;
  const slot = tfl.layers.dense({ units: 4, name: 'op' }).apply(a) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: slot });
  setFixedWeights(model, 97);
  const decoded = await readModel(await modelFiles(model));
  model.dispose();
  rewriteAsOp(decoded, 'TFOpLambda', fn, ['a', 0, 0, { ...kwargs, name: null }]);
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
    await expect(opModel('image.resize', { size: [2, 2] }).then(compileToGraph)).rejects.toThrow(/TFOpLambda "op" calls function "image.resize" \(not lowered\)/);
    await expect(opModel('math.add', { y: 1, alpha: 2 }).then(compileToGraph)).rejects.toThrow(/TFOpLambda "op" \(math.add\) has arguments alpha/);
  });
});

/** x [3, 4] → Activation tanh "a" → TFOpLambda / SlicingOpLambda "op" with the given inbound node (a by default). */
async function rank3Model(className: string, fn: string, node: unknown[]): Promise<DecodedModel> {
  const x = tfl.input({ shape: [3, 4], name: 'x' });
  const a = tfl.layers.activation({ activation: 'tanh', name: 'a' }).apply(x) as tfl.SymbolicTensor;
  const slot = tfl.layers.activation({ activation: 'linear', name: 'op' }).apply(a) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: x, outputs: slot });
  const decoded = await readModel(await modelFiles(model));
  model.dispose();
  rewriteAsOp(decoded, className, fn, node);
  return decoded;
}

describe('TFOpLambda shape, reduce and math functions; SlicingOpLambda', () => {
  const xs = fixedValues(24, 113);
  const a = ['a', 0, 0];
  const cases: [string, unknown[], (a: tf.Tensor, x: tf.Tensor) => tf.Tensor][] = [
    ['reshape', [...a, { shape: [-1, 12] }], (t) => tf.reshape(t, [-1, 12])],
    ['transpose', [...a, { perm: [0, 2, 1] }], (t) => tf.transpose(t, [0, 2, 1])],
    ['math.reduce_mean', [...a, { axis: 1 }], (t) => tf.mean(t, 1)],
    ['math.reduce_sum', [...a, { axis: [1, 2], keepdims: true }], (t) => tf.sum(t, [1, 2], true)],
    ['math.reduce_max', [...a, { axis: -1 }], (t) => tf.max(t, -1)],
    ['linalg.matmul', [...a, { b: ['x', 0, 0], transpose_b: true }], (t, x) => tf.matMul(t, x, false, true)],
    [
      'concat',
      [
        [...a, { axis: -1 }],
        ['x', 0, 0, { axis: -1 }],
      ],
      (t, x) => tf.concat([t, x], -1),
    ],
    ['expand_dims', [...a, { axis: 1 }], (t) => tf.expandDims(t, 1)],
    ['cast', [...a, { dtype: 'float32' }], (t) => t.clone()],
    ['math.exp', [...a, {}], (t) => tf.exp(t)],
    ['nn.relu', [...a, {}], (t) => tf.relu(t)],
    ['math.multiply', [...a, { y: [1, 2, 3, 4] }], (t) => tf.mul(t, tf.tensor1d([1, 2, 3, 4]))],
    ['nn.softmax', [...a, { axis: -1 }], (t) => tf.softmax(t)],
  ];
  for (const [fn, node, expected] of cases) {
    it(`${fn} equals tfjs-core within 1e-5`, async () => {
      const decoded = await rank3Model('TFOpLambda', fn, node);
      const x = tf.tensor(xs, [2, 3, 4]);
      const want = tf.tidy(() => expected(tf.tanh(x), x));
      const got = await predictDecoded(compileToGraph(decoded).model, x);
      expect(got.shape).toEqual(want.shape);
      expect(relativeDifference(await want.data(), got.values)).toBeLessThan(1e-5);
      tf.dispose([x, want]);
    });
  }

  const all = { start: null, stop: null, step: null };
  /** a = tanh(x) [2, 3, 4] indexed in plain JS: out(b, i, j) for the given output shape. */
  const slices: [string, unknown, number[], (b: number, i: number, j: number) => number][] = [
    ['x[:, 1:3]', [all, { start: 1, stop: 3, step: null }], [2, 2, 4], (b, i, j) => (b * 3 + i + 1) * 4 + j],
    ['x[..., -1]', [{ class_name: '__ellipsis__' }, -1], [2, 3], (b, i) => (b * 3 + i) * 4 + 3],
    ['x[:, ::-1, ::2]', [all, { start: null, stop: null, step: -1 }, { start: null, stop: null, step: 2 }], [2, 3, 2], (b, i, j) => (b * 3 + (2 - i)) * 4 + 2 * j],
    ['x[:, None, 0]', [all, null, 0], [2, 1, 4], (b, _i, j) => b * 12 + j],
  ];
  for (const [what, spec, shape, index] of slices) {
    it(`__operators__.getitem ${what} equals plain JS indexing`, async () => {
      const decoded = await rank3Model('SlicingOpLambda', '__operators__.getitem', [...a, { slice_spec: spec }]);
      const x = tf.tensor(xs, [2, 3, 4]);
      const got = await predictDecoded(compileToGraph(decoded).model, x);
      tf.dispose(x);
      expect(got.shape).toEqual(shape);
      const [n1 = 1, n2 = 1] = shape.slice(1);
      const want = Array.from({ length: 2 * n1 * n2 }, (_, k) => Math.tanh(xs[index(Math.floor(k / (n1 * n2)), Math.floor(k / n2) % n1, k % n2)]!));
      expect(relativeDifference(want, got.values)).toBeLessThan(1e-5);
    });
  }

  it('refuses what it cannot compile, naming the layer, the function and the argument', async () => {
    await expect(rank3Model('TFOpLambda', 'squeeze', [...a, { axis: 1 }]).then(compileToGraph)).rejects.toThrow(/TFOpLambda "op" \(squeeze\) squeezes axes 1 of a \[-1,3,4\] tensor/);
    await expect(rank3Model('TFOpLambda', 'cast', [...a, { dtype: 'int32' }]).then(compileToGraph)).rejects.toThrow(/TFOpLambda "op" \(cast\) casts to "int32"/);
    await expect(rank3Model('TFOpLambda', 'reshape', [...a, { shape: [-1, -1] }]).then(compileToGraph)).rejects.toThrow(/TFOpLambda "op" \(reshape\) has shape=\[-1,-1\]/);
    await expect(rank3Model('TFOpLambda', 'math.reduce_mean', [...a, { axis: 1, keepdims: true, extra: 2 }]).then(compileToGraph)).rejects.toThrow(/has arguments extra/);
  });
});
