// `npm run bench:models`: every fixture model in ../shared/fixtures through the converter (default
// options), in one table: format in, what is served (the stored graph, the layers runtime, or the
// layers model compiled to fused graph ops at load), converts or the refusal, drift, and predict
// p50 at batch 1 on wasm-SIMD as stock TF.js runs the stored files vs as edgeflow serves them,
// the two interleaved round by round. Then MobileNetV2 (the nsfwjs fixture) at float32, float16 and
// uint8 as served, against the single-core bound (bench/bound.ts: a 1024³ float32 matMul), all
// four interleaved round by round and each taken at its median.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useNodeBackend } from '../cli/backend.ts';
import { table } from '../cli/format.ts';
import { convertModel } from '../converter/convert.ts';
import { readInput } from '../converter/read/files.ts';
import { loadModel, type LoadedModel } from '../shared/model-loader.ts';
import { repoRoot } from '../scripts/edge-worker.ts';
import { optionalFixtures } from '../scripts/fixture-models.ts';
import { boundShare, layersMacs, matmulBound } from './bound.ts';
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
  const rows: string[][] = [['model', 'format in', 'served as', 'converts', 'drift', 'stock p50 ms', 'served p50 ms', 'speed-up']];
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
    const stock = await loadModel(result.modelFiles.modelJson, files(result), { plan: false });
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
    } finally {
      stock.dispose();
      served.dispose();
    }
  }
  console.log(table(rows));
  await mobilenetAgainstBound();
}

/** MobileNetV2 as served at each dtype and the bound, one round of each in turn, each at its median. */
async function mobilenetAgainstBound(): Promise<void> {
  const [fixture] = await optionalFixtures();
  if (!fixture) return;
  const dtypes = [
    { label: 'float32', quantize: 'none' },
    { label: 'float16', quantize: 'float16' },
    { label: 'uint8', quantize: 'uint8' },
  ] as const;
  const variants: { label: string; model: LoadedModel }[] = [];
  let macs = 0;
  for (const { label, quantize } of dtypes) {
    const result = await convertModel(fixture.files, { name: `${fixture.name}-${label}`, quantize });
    macs ||= await layersMacs(result.modelFiles.modelJson); // the same topology at every dtype
    variants.push({ label, model: await loadModel(result.modelFiles.modelJson, files(result), { compile: result.metadata.serving?.runtime === 'compiled-graph' }) });
  }
  const bound = await matmulBound();
  const input = tf.tensor(new Float32Array([fixture.example()].flat(Infinity) as number[]), [1, 224, 224, 3]);
  const times = new Map<string, number[]>([['bound', []], ...variants.map((v) => [v.label, []] as [string, number[]])]);
  try {
    // Each round starts one place further along, so that no variant always follows the bound (whose
    // 12 MiB of operands leave the caches cold for whatever runs next).
    const runs = [{ label: 'bound', run: () => bound.round() }, ...variants.map(({ label, model }) => ({ label, run: () => timeOnce(model, [input]) }))];
    for (let round = 0; round < ROUNDS + 2; round++) {
      for (let i = 0; i < runs.length; i++) {
        const { label, run } = runs[(round + i) % runs.length]!;
        const ms = await run();
        if (round >= 2) times.get(label)!.push(ms);
      }
    }
  } finally {
    tf.dispose(input);
    bound.dispose();
    for (const { model } of variants) model.dispose();
  }
  const boundMs = times.get('bound')!;
  const rows = [['MobileNetV2 (nsfwjs)', 'runs as', 'p50 ms', 'GFLOP/s', 'bound GFLOP/s', '% of bound (goal ≥ 75%)']];
  for (const { label, model } of variants) {
    const share = boundShare(macs, times.get(label)!, boundMs);
    rows.push([label, model.runtime, quantile(times.get(label)!, 0.5).toFixed(1), share.gflops.toFixed(1), share.boundGflops.toFixed(1), `${(100 * share.share).toFixed(0)}%`]);
  }
  console.log(
    `\nMobileNetV2 as served against the single-core bound (1024³ float32 matMul, B constant), ${(macs / 1e6).toFixed(0)} M multiply-adds; ` +
      `the bound and the three models one round each in turn (rotating), ${ROUNDS} rounds, each at its median (bound p50 ${quantile(boundMs, 0.5).toFixed(1)} ms, ` +
      `rounds ${Math.min(...boundMs).toFixed(1)}–${Math.max(...boundMs).toFixed(1)} ms):`,
  );
  console.log(table(rows));
}

await main();
