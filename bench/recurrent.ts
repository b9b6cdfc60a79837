// `npx tsx bench/recurrent.ts`: the graph compiler's unrolled recurrent lowering against TF.js
// layers' own RNN loop, on the Node backend. For GRU (reset_after=False, which both can run) and
// LSTM at a few sequence lengths, prints the median predict time of each (batch 1 and 32, after
// warm-up), the graph's op count and its model.json size: the unrolled graph grows with T.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useNodeBackend } from '../cli/backend.ts';
import { encodeWeights } from '../converter/encode.ts';
import type { DecodedModel } from '../converter/model.ts';
import { compileToGraph } from '../converter/optimize/compile-graph.ts';
import { readModel } from '../converter/read/index.ts';
import { shardModel } from '../converter/shard.ts';
import { modelFiles } from '../models/train/save.ts';
import { type LoadedModel, loadModel } from '../shared/model-loader.ts';

const RUNS = 30;

async function load(model: DecodedModel): Promise<{ loaded: LoadedModel; jsonBytes: number }> {
  const files = shardModel(
    model,
    encodeWeights(model.weights, () => 'float32'),
  );
  const loaded = await loadModel(files.modelJson, (name) => files.files.get(name)!);
  return { loaded, jsonBytes: JSON.stringify(files.modelJson).length };
}

async function medianMs(model: LoadedModel, x: tf.Tensor): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS + 5; i++) {
    const start = performance.now();
    const outputs = await model.predict([x]);
    await outputs[0]!.data();
    tf.dispose(outputs);
    if (i >= 5) times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

await useNodeBackend();
console.log('layer  T    batch  layers ms  graph ms  graph ops  graph model.json');
for (const kind of ['gru', 'lstm'] as const) {
  for (const steps of [10, 30, 100]) {
    const args = { inputShape: [steps, 8], units: 64, recurrentActivation: 'sigmoid' as const, recurrentInitializer: 'glorotUniform' as const, name: 'rnn' };
    const model = tfl.sequential({ layers: [kind === 'gru' ? tfl.layers.gru(args) : tfl.layers.lstm(args), tfl.layers.dense({ units: 1, name: 'out' })] });
    const decoded = await readModel(await modelFiles(model));
    model.dispose();
    const { model: graph, summary } = compileToGraph(decoded);
    const [layers, compiled] = [await load(decoded), await load(graph)];
    const ops = Object.entries(summary.ops).reduce((sum, [op, n]) => (op === 'Placeholder' ? sum : sum + n), 0);
    for (const batch of [1, 32]) {
      const x = tf.randomUniform([batch, steps, 8]);
      const [a, b] = [await medianMs(layers.loaded, x), await medianMs(compiled.loaded, x)];
      x.dispose();
      console.log(
        `${kind.padEnd(6)} ${String(steps).padEnd(4)} ${String(batch).padEnd(6)} ${a.toFixed(2).padStart(9)} ${b.toFixed(2).padStart(9)} ${String(ops).padStart(10)} ${(compiled.jsonBytes / 1024).toFixed(1).padStart(12)} KiB`,
      );
    }
    layers.loaded.dispose();
    compiled.loaded.dispose();
  }
}
