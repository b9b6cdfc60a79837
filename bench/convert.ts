// `npm run bench:convert`: for real models and every quantize mode, prints bytes in/out, ratio,
// end-to-end conversion throughput (read the files, convert, verify, publish to a folder: MB of
// float32 weights per second, one core) beside the quantize+shard stage alone, peak RSS (the
// process's high-water mark, VmHWM) and its rise over the model's float32 size, output error,
// top-1 agreement and BatchNormalization layers folded; then the gain of outlier clipping for uint8.
// Each conversion runs in its own process so its peak RSS is its own.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { readInput } from '../converter/read/files.ts';
import { formatBytes, table } from '../cli/format.ts';
import { convertModel } from '../converter/convert.ts';
import { encodeWeights } from '../converter/encode.ts';
import { readModel } from '../converter/read/index.ts';
import { shardModel } from '../converter/shard.ts';
import { sha256Hex } from '../shared/hash.ts';
import type { StorageDtype } from '../shared/options/quantize-spec.ts';
import { publishVersion } from '../shared/bucket/publish.ts';
import { LocalFolderStore } from '../shared/store/local.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/fixtures');
const MODELS: [string, string][] = [
  ['nsfwjs MobileNetV2 (layers)', 'tfjs-layers/nsfwjs-mobilenet_v2'],
  ['nsfwjs MobileNetV2 (graph)', 'tfjs-graph/nsfwjs-mobilenet_v2_mid'],
  ['human emotion (graph)', 'tfjs-graph/human-models/emotion.json'],
  ['human blazeface (graph)', 'tfjs-graph/human-models/blazeface-front.json'],
  ['fer2013 mini-Xception (Keras 2 .hdf5)', 'keras-h5/fer2013_mini_XCEPTION.102-0.66.hdf5'],
  ['MNIST MLP (Keras 3 .keras)', 'keras-v3/mnist_mlp_keras3.3.3.keras'],
];
const MODES = ['none', 'float16', 'uint16', 'uint8', 'auto'];

interface Measurement {
  sourceBytes: number;
  float32Bytes: number;
  convertedBytes: number;
  mbPerSecond: number | null;
  /** Float32 MB per second of the whole conversion: read, convert and verify, publish. */
  endToEndMbPerSecond: number;
  seconds: number;
  baselineRss: number;
  peakRss: number;
  maxAbsError: number;
  meanAbsError: number;
  relativeError: number;
  top1: number | null;
  /** BatchNormalization layers folded. */
  folded: number;
  passed: boolean;
  error?: string;
}

/** A /proc/self/status figure in bytes (VmHWM: peak resident set; VmRSS: now); resourceUsage where there is no /proc. */
function memory(field: 'VmHWM' | 'VmRSS'): number {
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // not Linux
  }
  return field === 'VmHWM' ? process.resourceUsage().maxRSS * 1024 : process.memoryUsage.rss();
}

/** Resets the process's peak RSS (VmHWM) to its RSS now (Linux ≥ 4.0), so a peak read later is the measured stage's own; returns the RSS. */
function resetPeak(): number {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux: the peak then counts from the process start
  }
  return memory('VmRSS');
}

/** Time encode + shard + sha256 of every file: the quantize+shard stage, repeated for a stable figure. */
async function quantizeShardThroughput(input: string, mode: string): Promise<number> {
  const model = await readModel(await readInput(input));
  const dtype = (mode === 'none' ? 'float32' : mode) as StorageDtype;
  const floatBytes = model.weights.reduce((sum, w) => sum + w.values.length * 4, 0);
  let runs = 0;
  const started = performance.now();
  while (runs < 3 || performance.now() - started < 1000) {
    const encoded = encodeWeights(model.weights, () => dtype, { clipOutliers: true });
    const { files } = shardModel(model, encoded);
    await Promise.all([...files.values()].map(sha256Hex));
    runs++;
  }
  return (floatBytes * runs) / 1e6 / ((performance.now() - started) / 1000);
}

async function measureOne(input: string, mode: string): Promise<Measurement> {
  await tf.setBackend('wasm');
  await tf.ready();
  const baselineRss = resetPeak();
  const out = await mkdtemp(path.join(tmpdir(), 'edgeflow-bench-convert-'));
  try {
    // End to end, as `edgeflow convert` runs it: files read, converted and verified, published.
    const started = performance.now();
    // Fixed modes report their drift whatever it is; auto searches within the default tolerance.
    const result = await convertModel(await readInput(input), { name: 'bench', quantize: mode, ...(mode === 'auto' ? {} : { tolerance: Infinity }) });
    await publishVersion(new LocalFolderStore(out), { name: 'bench', files: result.modelFiles.files, metadata: result.metadata });
    const seconds = (performance.now() - started) / 1000;
    const peakRss = memory('VmHWM');
    const { report, sizes } = result.metadata;
    return {
      sourceBytes: sizes.source,
      float32Bytes: sizes.float32,
      convertedBytes: sizes.converted,
      endToEndMbPerSecond: sizes.float32 / 1e6 / seconds,
      seconds,
      mbPerSecond: mode === 'auto' ? null : await quantizeShardThroughput(input, mode),
      baselineRss,
      peakRss,
      maxAbsError: report.maxAbsError,
      meanAbsError: report.meanAbsError,
      relativeError: report.relativeError,
      top1: report.top1Agreement,
      folded: result.metadata.optimizations?.batchNormFolded ?? 0,
      passed: report.relativeError <= 0.05,
    };
  } catch (error) {
    return { error: (error as Error).message.slice(0, 120) } as Measurement;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** Peak RSS of read + quantize + shard + sha256 alone (no TF.js model), over the float32 size. */
async function stagePeak(input: string, mode: string): Promise<number> {
  const baseline = resetPeak();
  const model = await readModel(await readInput(input));
  const dtype = (mode === 'none' ? 'float32' : mode) as StorageDtype;
  const { files } = shardModel(
    model,
    encodeWeights(model.weights, () => dtype, { clipOutliers: true }),
  );
  await Promise.all([...files.values()].map(sha256Hex));
  const floatBytes = model.weights.reduce((sum, w) => sum + w.values.length * 4, 0);
  return (memory('VmHWM') - baseline) / floatBytes;
}

/** uint8 with and without outlier clipping: weight squared error and output drift. */
async function clipGain(input: string): Promise<string[]> {
  await tf.setBackend('wasm');
  const model = await readModel(await readInput(input));
  const floats = model.weights.filter((w) => w.dtype === 'float32' && !w.sourceGrid);
  if (floats.length === 0) return ['(weights already on a uint8 grid: re-used losslessly, nothing to clip)', '', '', ''];
  const squaredError = (clip: boolean) => {
    const encoded = encodeWeights(floats, () => 'uint8', { clipOutliers: clip });
    const decoded = tf.io.decodeWeights(encoded.data.slice().buffer, encoded.specs as tf.io.WeightsManifestEntry[]);
    let sum = 0;
    let clipped = 0;
    for (const w of floats) {
      const back = decoded[w.name]!.dataSync();
      for (let i = 0; i < back.length; i++) sum += (back[i]! - w.values[i]!) ** 2;
      if (encoded.quantization[w.name]?.clipped) clipped++;
    }
    tf.dispose(Object.values(decoded));
    return { sum, clipped };
  };
  const plain = squaredError(false);
  const clipped = squaredError(true);
  const drift = async (clip: boolean) => (await convertModel(model, { name: 'bench', quantize: 'uint8', tolerance: Infinity, clipOutliers: clip })).report.relativeError;
  return [`${clipped.clipped}/${floats.length}`, `${((1 - clipped.sum / plain.sum) * 100).toFixed(1)}%`, (await drift(false)).toPrecision(3), (await drift(true)).toPrecision(3)];
}

async function main(): Promise<void> {
  const [flag, input, mode] = process.argv.slice(2);
  if (flag === '--one') {
    process.stdout.write(JSON.stringify(await measureOne(input!, mode!)));
    return;
  }
  if (flag === '--stage') {
    process.stdout.write(JSON.stringify(await stagePeak(input!, mode!)));
    return;
  }
  if (flag === '--clip') {
    process.stdout.write(JSON.stringify(await clipGain(input!)));
    return;
  }
  if (!existsSync(FIXTURES)) {
    console.error(`bench:convert needs the shared fixtures at ${FIXTURES}`);
    process.exitCode = 1;
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const child = (...args: string[]) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', self, ...args], { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'ignore'] }));
  const rows = [
    [
      'model',
      'mode',
      'bytes in',
      'bytes out',
      'ratio',
      's',
      'MB/s end to end',
      'MB/s quantize+shard',
      'peak RSS',
      'Δ RSS / f32',
      'stage Δ / f32',
      'max err',
      'mean err',
      'rel err',
      'top-1',
      'BN folded',
    ],
  ];
  const clipRows = [['model', 'weights clipped', 'weight sq. error saved', 'output drift, min/max ranges', 'output drift, edgeflow (clipped kept only if lower)']];
  for (const [label, relative] of MODELS) {
    const input = path.join(FIXTURES, relative);
    for (const mode of MODES) {
      const m = child('--one', input, mode) as Measurement;
      if (m.error) {
        rows.push([label, mode, `error: ${m.error}`]);
        continue;
      }
      rows.push([
        label,
        mode,
        formatBytes(m.sourceBytes),
        formatBytes(m.convertedBytes),
        `${(m.float32Bytes / m.convertedBytes).toFixed(2)}x`,
        m.seconds.toFixed(1),
        m.endToEndMbPerSecond.toFixed(1),
        m.mbPerSecond === null ? '-' : m.mbPerSecond.toFixed(0),
        formatBytes(m.peakRss),
        ((m.peakRss - m.baselineRss) / m.float32Bytes).toFixed(2),
        mode === 'auto' ? '-' : (child('--stage', input, mode) as number).toFixed(2),
        m.maxAbsError.toPrecision(3),
        m.meanAbsError.toPrecision(3),
        m.relativeError.toPrecision(3),
        m.top1 === null ? '-' : `${(m.top1 * 100).toFixed(0)}%`,
        String(m.folded),
      ]);
      process.stderr.write('.');
    }
    clipRows.push([label, ...(child('--clip', input) as string[])]);
  }
  process.stderr.write('\n');
  console.log('Conversion (8 generated calibration samples; ratio = float32 size / converted size; s and MB/s end to end = read + convert + verify + publish to a folder,');
  console.log('float32 MB per second, one core; MB/s quantize+shard = encode+shard+sha256 alone; peak RSS = the high-water mark (VmHWM, reset before reading);');
  console.log('Δ RSS / f32 = peak above the RSS before reading, over the float32 size, whole conversion; stage Δ / f32 = read+quantize+shard alone)\n');
  console.log(table(rows));
  console.log('\nOutlier clipping for uint8 (weights not already on a source uint8 grid)\n');
  console.log(table(clipRows));
}

await main();
