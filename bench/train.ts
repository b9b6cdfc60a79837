// Training speed per backend: milliseconds per training batch (forward, gradients, Adam update,
// loss read back) of each lab model at its default batch size, on cpu, wasm and webgpu side by
// side. The backends take turns round by round in one process (warm-up round first, not counted),
// so a busy machine slows them alike; each cell is the median and the range over the rounds.
//   npm run bench:train [-- <model ...>] [--rounds n] [--stock-cpu]
// WebGPU is Dawn's adapter, a software one (lavapipe) included, and the table names it. The job's
// faster Conv2D / Embedding gradients (train/fast-gradients.ts) are on, as in training; --stock-cpu
// adds a column of cpu with TF.js's own gradients (its slow Conv2DBackpropFilter loop).
// `--full [model ...] [--out <folder>]` instead trains each model fully with its defaults (the
// figures of docs/benchmarks.md#training).
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { MODELS } from '../models/index.ts';
import { installFastGradients } from '../models/train/fast-gradients.ts';
import { runTraining } from '../models/train/run.ts';
import { describeAdapter, importWebGpu } from '../models/train/webgpu.ts';
import type { ModelDefinition } from '../models/types.ts';

const args = process.argv.slice(2);
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args.splice(at, 2)[1] : undefined;
};
const flag = (name: string) => args.includes(name) && args.splice(args.indexOf(name), 1).length > 0;
const full = flag('--full');
const stockCpu = flag('--stock-cpu');
const out = option('--out');
const rounds = Number(option('--rounds') ?? 5);
const names = args.length > 0 ? args : full ? ['celsius', 'co2', 'spam', 'mnist'] : Object.keys(MODELS);
for (const name of names) if (!MODELS[name]) throw new Error(`unknown model ${name}`);

async function fullRuns(): Promise<void> {
  tf.enableProdMode(); // as the CLI: no "install our node backend" banner
  const percent = (v: number) => `${(v * 100).toFixed(2)}%`;
  const rows: string[][] = [];
  for (const name of names) {
    const result = await runTraining({ model: name, ...(out ? { out: join(out, name), logdir: join(out, name, 'logs') } : {}) });
    const { record } = result;
    const metrics = Object.entries(record.metrics)
      .map(([k, v]) => `${k} ${k === 'mae' || k === 'mse' ? `${v.toPrecision(4)}${record.unit ? ` ${record.unit}${k === 'mse' ? '²' : ''}` : ''}` : percent(v)}`)
      .join(', ');
    const baselines = Object.entries(record.baselines ?? {})
      .map(([label, m]) => `${label}: mae ${m.mae!.toPrecision(4)}${record.unit ? ` ${record.unit}` : ''}`)
      .join('; ');
    rows.push([name, record.backend, `${record.epochs}`, `${record.trainSamples}`, record.seconds.toFixed(1), metrics, baselines || '-']);
    result.model.dispose();
  }
  const header = ['model', 'backend', 'epochs', 'train examples', 'train s', 'held-out', 'baseline'];
  console.log(`\n| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

interface Batch {
  x: tf.TypedArray;
  y: tf.TypedArray;
  xShape: number[];
  yShape: number[];
  xDtype: tf.DataType;
}

/** One model on one backend: its own weights and batches, used only while that backend is active. */
interface Runner {
  label: string;
  backend: string;
  /** Runs with TF.js's own gradients. */
  stock: boolean;
  step: () => Promise<number>;
  dispose: () => void;
  times: number[];
  error?: string;
}

async function batchesOf(definition: ModelDefinition, count: number): Promise<Batch[]> {
  await tf.setBackend('cpu');
  const size = definition.defaults.batchSize;
  const data = await definition.loadData({ seed: 1, validationSplit: 0, limit: size * count });
  const batches: Batch[] = [];
  for (let b = 0; b < count; b++) {
    const x = tf.slice(data.train.x, (b * size) % (data.train.x.shape[0] - size + 1), size);
    const y = tf.slice(data.train.y, (b * size) % (data.train.y.shape[0] - size + 1), size);
    batches.push({ x: await x.data(), y: await y.data(), xShape: x.shape, yShape: y.shape, xDtype: x.dtype });
    tf.dispose([x, y]);
  }
  tf.dispose([data.train, data.test, ...(data.validation ? [data.validation] : [])].flatMap((s) => [s.x, s.y]));
  tf.dispose(Object.values(data.baselines ?? {}));
  return batches;
}

async function runnerFor(definition: ModelDefinition, label: string, batches: Batch[]): Promise<Runner> {
  const [backend, variant] = label.split(' ') as [string, string | undefined];
  await tf.setBackend(backend);
  const model = definition.build({ dropout: definition.defaults.dropout ?? 0 });
  model.compile({ optimizer: tf.train.adam(definition.defaults.learningRate), loss: definition.loss });
  const tensors = batches.map((b) => [tf.tensor(b.x, b.xShape, b.xDtype), tf.tensor(b.y, b.yShape)] as const);
  let next = 0;
  const step = async () => {
    const [x, y] = tensors[next++ % tensors.length]!;
    const started = performance.now();
    await model.trainOnBatch(x, y);
    return performance.now() - started;
  };
  const dispose = () => {
    model.dispose();
    tf.dispose(tensors.flat());
  };
  return { label, backend, stock: variant === '(stock)', step, dispose, times: [] };
}

async function perBatch(): Promise<void> {
  tf.enableProdMode(); // no "install our node backend" banner from the cpu backend
  let restore = installFastGradients();
  const webgpu = await importWebGpu();
  const backends = [...(stockCpu ? ['cpu (stock)'] : []), 'cpu', 'wasm', ...(webgpu.adapter ? ['webgpu'] : [])];
  console.log(webgpu.adapter ? `webgpu: ${describeAdapter(webgpu.adapter)}` : `webgpu: not measured: ${webgpu.reason}`);
  console.log(`${rounds} rounds after a warm-up round, backends interleaved; ms per batch: median (min-max)\n`);
  const header = ['model', 'batch', ...backends.map((b) => `${b} ms`), 'speed vs cpu'];
  console.log(`| ${header.join(' | ')} |\n|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const name of names) {
    const definition = MODELS[name]!;
    const batches = await batchesOf(definition, 4);
    const runners: Runner[] = [];
    for (const backend of backends) runners.push(await runnerFor(definition, backend, batches));
    for (let round = 0; round <= rounds; round++) {
      for (const runner of runners) {
        if (runner.error) continue;
        await tf.setBackend(runner.backend);
        if (runner.stock) restore();
        try {
          const ms = await runner.step();
          if (round > 0) runner.times.push(ms);
        } catch (error) {
          runner.error = (error as Error).message.split('\n')[0];
        }
        if (runner.stock) restore = installFastGradients();
      }
      process.stderr.write(`${name}: round ${round}/${rounds} (${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB)\r`);
    }
    const cell = (r: Runner) => {
      if (r.error) return `failed: ${r.error}`;
      const t = [...r.times].sort((a, b) => a - b);
      return `${t[Math.floor(t.length / 2)]!.toFixed(1)} (${t[0]!.toFixed(1)}-${t[t.length - 1]!.toFixed(1)})`;
    };
    const median = (r: Runner) => [...r.times].sort((a, b) => a - b)[Math.floor(r.times.length / 2)] ?? Number.NaN;
    const cpuRunner = runners.find((r) => r.label === 'cpu')!;
    const cpu = median(cpuRunner);
    const speedups = runners.filter((r) => r !== cpuRunner).map((r) => `${r.label} ${(cpu / median(r)).toFixed(1)}x`);
    process.stderr.write('\n');
    console.log(`| ${[name, `${definition.defaults.batchSize}`, ...runners.map(cell), speedups.join(', ')].join(' | ')} |`);
    for (const runner of runners) {
      await tf.setBackend(runner.backend);
      runner.dispose();
    }
  }
  restore();
}

await (full ? fullRuns() : perBatch());
