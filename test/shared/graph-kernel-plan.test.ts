// The kernel plan (shared/graph/kernel-plan.ts): a convolutional graph model run as a list of kernels
// answers exactly what GraphModel.execute answers (the same kernels, bit for bit) at any batch,
// leaves no tensor behind, refuses a wrong input by name, and is not made for a graph with an op it
// does not run (which then runs on the stock executor).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';

import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import type { ModelFiles } from '../../converter/shard.ts';
import { readModel } from '../../converter/read/index.ts';
import { readInput } from '../../converter/read/files.ts';
import { modelFiles } from '../../models/train/save.ts';
import type { GraphNode } from '../../shared/graph/graphdef.ts';
import { kernelPlan } from '../../shared/graph/kernel-plan.ts';
import { loadModel, memoryHandler } from '../../shared/model-loader.ts';
import { encodeAndShard } from '../helpers/keras.ts';
import { HAVE_FIXTURES, NO_FIXTURES_REASON } from '../helpers/fixtures.ts';
import { MOBILENET_DIR } from '../helpers/publish-models.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';

beforeAll(async () => {
  await useNodeBackend();
});

/** A MobileNetV2 block: conv + BN + ReLU6, padded stride-2 depthwise, 1x1 projection, residual add, GAP, dense head. */
function mobileBlock(): tfl.LayersModel {
  const input = tfl.input({ shape: [16, 16, 3], name: 'image' });
  const stem = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, name: 'stem' }).apply(input) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ name: 'stem_bn' }).apply(stem) as tfl.SymbolicTensor;
  const relu = tfl.layers.reLU({ maxValue: 6, name: 'stem_relu' }).apply(bn) as tfl.SymbolicTensor;
  const padded = tfl.layers
    .zeroPadding2d({
      padding: [
        [0, 1],
        [0, 1],
      ],
      name: 'pad',
    })
    .apply(relu) as tfl.SymbolicTensor;
  const dw = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid', name: 'dw' }).apply(padded) as tfl.SymbolicTensor;
  const dwRelu = tfl.layers.reLU({ maxValue: 6, name: 'dw_relu' }).apply(dw) as tfl.SymbolicTensor;
  const project = tfl.layers.conv2d({ filters: 8, kernelSize: 1, name: 'project' }).apply(dwRelu) as tfl.SymbolicTensor;
  const expand = tfl.layers.conv2d({ filters: 8, kernelSize: 1, activation: 'relu', name: 'expand' }).apply(project) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'sum' }).apply([project, expand]) as tfl.SymbolicTensor;
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(sum) as tfl.SymbolicTensor;
  const hidden = tfl.layers.dense({ units: 6, activation: 'relu', name: 'hidden' }).apply(gap) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 4, activation: 'softmax', name: 'probs' }).apply(hidden) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  setFixedWeights(model, 17);
  return model;
}

async function compiled(model: tfl.LayersModel): Promise<{ files: ModelFiles; nodes: GraphNode[] }> {
  const { model: graph } = compileToGraph(await readModel(await modelFiles(model)));
  model.dispose();
  const files = encodeAndShard(graph);
  return { files, nodes: (files.modelJson.modelTopology as { node: GraphNode[] }).node };
}

const load = (files: ModelFiles, plan: boolean) => loadModel(files.modelJson, (name) => files.files.get(name)!, { plan });

/** Both runs' outputs as plain arrays, and how many tensors each left behind. */
async function bothWays(files: ModelFiles, input: tf.Tensor) {
  const stock = await load(files, false);
  const planned = await load(files, true);
  try {
    const run = async (model: typeof stock) => {
      const before = tf.memory().numTensors;
      const outputs = await model.predict([input]);
      const values = await Promise.all(outputs.map(async (t) => ({ shape: t.shape, values: Array.from(await t.data()) })));
      tf.dispose(outputs);
      return { values, left: tf.memory().numTensors - before };
    };
    return { stock: await run(stock), planned: await run(planned) };
  } finally {
    stock.dispose();
    planned.dispose();
  }
}

describe('kernelPlan', () => {
  it('runs a compiled MobileNetV2 block bit for bit as GraphModel.execute does, at batch 1 and 3, leaving no tensor behind', async () => {
    const { files, nodes } = await compiled(mobileBlock());
    const graph = await loadGraphModel(memoryHandler(files.modelJson, (name) => files.files.get(name)!));
    expect(kernelPlan(nodes, graph.weights, ['image'], ['probs'])).not.toBeNull();
    graph.dispose();
    for (const batch of [1, 3]) {
      const x = tf.tensor(fixedValues(batch * 16 * 16 * 3, batch), [batch, 16, 16, 3]);
      const { stock, planned } = await bothWays(files, x);
      x.dispose();
      expect(planned.values).toEqual(stock.values);
      expect(planned.values[0]!.shape).toEqual([batch, 4]);
      expect(planned.left).toBe(0);
    }
  });

  it('refuses an input of the wrong shape or dtype by name, and leaves nothing behind', async () => {
    const { files } = await compiled(mobileBlock());
    const model = await load(files, true);
    const before = tf.memory().numTensors;
    const wrong = [tf.zeros([1, 15, 16, 3]), tf.zeros([1, 16, 16, 3], 'int32'), tf.zeros([16, 16, 3])];
    for (const x of wrong) await expect(model.predict([x])).rejects.toThrow(/input image must be float32 \[-1, 16, 16, 3\]/);
    tf.dispose(wrong);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('makes no plan for a graph with an op it does not run; that graph still runs, on the stock executor', async () => {
    const input = tfl.input({ shape: [6, 6, 2], name: 'image' });
    const a = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'a' }).apply(input) as tfl.SymbolicTensor;
    const joined = tfl.layers.concatenate({ name: 'join' }).apply([a, input]) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten({ name: 'flat' }).apply(joined) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, name: 'out' }).apply(flat) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    setFixedWeights(model, 5);
    const { files, nodes } = await compiled(model);
    expect(nodes.map((n) => n.op)).toContain('ConcatV2');
    const graph = await loadGraphModel(memoryHandler(files.modelJson, (name) => files.files.get(name)!));
    expect(kernelPlan(nodes, graph.weights, ['image'], ['out'])).toBeNull();
    graph.dispose();
    const x = tf.tensor(fixedValues(2 * 6 * 6 * 2, 9), [2, 6, 6, 2]);
    const { stock, planned } = await bothWays(files, x);
    x.dispose();
    expect(planned.values).toEqual(stock.values);
  });

  it('checks a placeholder as the stock executor does: no plan for a dtype other than float32 / int32, any shape at an unknown rank', () => {
    const graph = (attr: GraphNode['attr']): GraphNode[] => [
      { name: 'x', op: 'Placeholder', attr },
      { name: 'y', op: 'Relu', input: ['x'] },
    ];
    expect(kernelPlan(graph({ dtype: { type: 'DT_INT64' }, shape: { shape: { dim: [{ size: '-1' }] } } }), {}, ['x'], ['y'])).toBeNull();
    const plan = kernelPlan(graph({ dtype: { type: 'DT_FLOAT' }, shape: { shape: { unknownRank: true } as never } }), {}, ['x'], ['y']);
    const x = tf.tensor([[1, -2]]);
    const [y] = plan!.run([x]);
    expect(Array.from(y!.dataSync())).toEqual([1, 0]);
    tf.dispose([x, y!]);
  });

  it.skipIf(!HAVE_FIXTURES)(`runs the nsfwjs MobileNetV2 compiled at load bit for bit as GraphModel.execute does${HAVE_FIXTURES ? '' : ` (${NO_FIXTURES_REASON})`}`, async () => {
    const files = await readInput(MOBILENET_DIR);
    const modelJson = JSON.parse(new TextDecoder().decode(files.get('model.json')!));
    const shard = (name: string) => files.get(name)!;
    const stock = await loadModel(modelJson, shard, { compile: true, plan: false });
    const planned = await loadModel(modelJson, shard, { compile: true });
    expect(planned.runtime).toBe('compiled-graph');
    const x = tf.tensor(
      fixedValues(224 * 224 * 3, 4).map((v) => (v + 1) / 2),
      [1, 224, 224, 3],
    );
    const [a] = await stock.predict([x]);
    const [b] = await planned.predict([x]);
    expect(Array.from(await b!.data())).toEqual(Array.from(await a!.data()));
    tf.dispose([x, a!, b!]);
    stock.dispose();
    planned.dispose();
  });
});
