// `npm run bench:models`: every fixture model in ../shared/fixtures through the converter (default
// options), in one table: format in, what is served (the stored graph, the layers runtime, or the
// layers model compiled to fused graph ops at load), converts or the refusal, drift, and predict
// p50 at batch 1 on wasm-SIMD as stock TF.js runs the stored files vs as edgeflow serves them,
// the two interleaved round by round. For MobileNetV2 it prints the GFLOP/s reached against a
// single-core bound measured in the same run: the backend's best case, a 1024³ float32 matMul.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useNodeBackend } from '../cli/backend.ts';
import { table } from '../cli/format.ts';
import { convertModel } from '../converter/convert.ts';
import { readInput } from '../converter/read/files.ts';
import { loadModel, type LoadedModel } from '../shared/model-loader.ts';
import { repoRoot } from '../scripts/edge-worker.ts';
import { layersMacs, matmulBound } from './bound.ts';
import { quantile } from './stats.ts';

const FIXTURES = path.resolve(repoRoot, '../shared/fixtures');
const ROUNDS = Number(process.env.ROUNDS ?? 30);

function fixtureInputs(): { label: string; path: string }[] {
  const list = (dir: string, filter: (name: string) => boolean) => {
    try {
      return readdirSync(path.join(FIXTURES, dir))
        .filter(filter)
        .map((name) => ({ label: `${dir}/${name}`, path: path.join(FIXTURES, dir, name) }));
    } catch {
      return [];
    }
  };
  return [
    ...list('keras-wild', (n) => /\.(h5|hdf5|keras)$/.test(n)),
    ...list('keras-h5', (n) => /\.(h5|hdf5)$/.test(n)),
    ...list('keras-v3', (n) => n.endsWith('.keras')),
    ...list('tfjs-layers', () => true),
    ...list('tfjs-graph', (n) => n !== 'human-models'),
    ...list('tfjs-graph/human-models', (n) => n.endsWith('.json')),
  ];
}

function inputsFor(model: LoadedModel): tf.Tensor[] {
  return model.inputs.map((input) => {
    const shape = input.shape.map((d, i) => (i === 0 ? 1 : d > 0 ? d : 64));
    return input.dtype === 'int32' ? tf.randomUniform(shape, 0, 10, 'int32') : tf.randomUniform(shape);
  });
}

async function timeOnce(model: LoadedModel, inputs: tf.Tensor[]): Promise<number> {
  const start = performance.now();
  const outputs = await model.predict(inputs);
  await Promise.all(outputs.map((t) => t.data()));
  tf.dispose(outputs);
  return performance.now() - start;
}

/** p50 of stock vs served, interleaved round by round after two warm-up rounds. */
async function compare(stock: LoadedModel, served: LoadedModel): Promise<{ stock: number; served: number }> {
  const inputs = inputsFor(stock);
  const times = { stock: [] as number[], served: [] as number[] };
  try {
    for (let round = 0; round < ROUNDS + 2; round++) {
      const a = await timeOnce(stock, inputs);
      const b = await timeOnce(served, inputs);
      if (round >= 2) [times.stock, times.served].forEach((list, i) => list.push(i === 0 ? a : b));
    }
  } finally {
    tf.dispose(inputs);
  }
  return { stock: quantile(times.stock, 0.5), served: quantile(times.served, 0.5) };
}

const files = (result: Awaited<ReturnType<typeof convertModel>>) => (p: string) => result.modelFiles.files.get(p)!;

async function main(): Promise<void> {
  console.log(`bench:models: ${await useNodeBackend()}, ${ROUNDS} interleaved rounds per model (ROUNDS=n to change)`);
  const inputs = fixtureInputs();
  if (inputs.length === 0) {
    console.log(`no fixtures at ${FIXTURES}: nothing to measure`);
    return;
  }
  const bound = await matmulBound();
  const rows: string[][] = [['model', 'format in', 'served as', 'converts', 'drift', 'stock p50 ms', 'served p50 ms', 'speed-up']];
  let mobilenet: { macs: number; ms: number } | undefined;
  for (const input of inputs) {
    const name = path
      .basename(input.label)
      .replace(/[^a-z0-9._-]/gi, '-')
      .slice(0, 60)
      .toLowerCase();
    let result: Awaited<ReturnType<typeof convertModel>>;
    try {
      result = await convertModel(await readInput(input.path), { name: /^[a-z0-9]/.test(name) ? name : `m${name}` });
    } catch (error) {
      rows.push([input.label, '', '', `no: ${(error as Error).message.slice(0, 90)}`, '', '', '', '']);
      continue;
    }
    const { metadata, report } = result;
    const runtime = metadata.serving?.runtime ?? (metadata.format === 'graph-model' ? 'graph' : 'layers');
    const stock = await loadModel(result.modelFiles.modelJson, files(result));
    const served = await loadModel(result.modelFiles.modelJson, files(result), { compile: runtime === 'compiled-graph' });
    try {
      const times = await compare(stock, served);
      rows.push([
        input.label,
        metadata.source.format,
        runtime,
        'yes',
        report.relativeError.toPrecision(2),
        times.stock.toFixed(2),
        times.served.toFixed(2),
        `${(times.stock / times.served).toFixed(2)}x`,
      ]);
      if (input.label.startsWith('tfjs-layers/nsfwjs-mobilenet_v2')) mobilenet = { macs: await layersMacs(result.modelFiles.modelJson), ms: times.served };
    } finally {
      stock.dispose();
      served.dispose();
    }
  }
  console.log(table(rows));
  console.log(`\nsingle-core bound (1024³ float32 matMul on this backend): ${bound.toFixed(1)} GFLOP/s`);
  if (mobilenet) {
    const gflops = (2 * mobilenet.macs) / (mobilenet.ms / 1000) / 1e9;
    console.log(
      `MobileNetV2 (nsfwjs, as served): ${(mobilenet.macs / 1e6).toFixed(0)} M multiply-adds in ${mobilenet.ms.toFixed(1)} ms = ${gflops.toFixed(1)} GFLOP/s, ${((100 * gflops) / bound).toFixed(0)}% of the bound`,
    );
  }
}

await main();
