// `npm run bench:load`: the servers under load and under hostile uploads, loopback only, bounded.
//   - load: 10,000 TF Serving predictions at concurrency 64, rotating over 3 models (~1.5 MiB of
//     float32 weights each) under a 4 MiB memory budget (2 fit), on Node (`edgeflow serve` in a
//     child process) and in workerd (the deploy bundle in Miniflare, models in R2). Prints errors
//     (non-200 or refused), hangs (no answer within 30 s), wrong answers (not the bytes that model
//     answered alone: a cache mix-up), p50/p99 from all samples, and the server's peak RSS.
//   - soak: 5 hostile admin uploads (a model declaring a huge dimension, zips lying about their
//     sizes, NaN weights, not a model) and a valid one while 8 clients keep predicting, each upload in its own
//     window between quiet ones: prints p50 / p99 / max of the predictions started in quiet and in
//     upload windows, what the uploads add, the serving thread's event-loop delay in both (Node:
//     bench/eld-probe.mjs preloaded), and each upload's final state.
// Each phase is capped (LOAD_CAP_MS, SOAK_CAP_MS) so a hung server cannot hold the run.
//   npm run bench:load [-- --quick] [--soak-only] [--node-only]
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { strToU8, zipSync } from 'fflate';
import { useNodeBackend } from '../cli/backend.ts';
import { convertModel } from '../converter/convert.ts';
import { modelFiles } from '../models/train/save.ts';
import { buildWorker, repoRoot, startWorker } from '../scripts/edge-worker.ts';
import { publishVersion } from '../shared/bucket/publish.ts';
import { seededRandom } from '../shared/random.ts';
import { LocalFolderStore } from '../shared/store/local.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { rss, spawnServe, workerdPid } from './proc.ts';
import { quantile } from './stats.ts';

const TOKEN = 'bench-load-admin-token-0123456789';
const MODELS = ['load-a', 'load-b', 'load-c'];
const INPUT = 384;
const BUDGET_MIB = 4;
/** `npm run bench:load -- --quick`: 1,000 requests, for a check that it runs. */
const REQUESTS = process.argv.includes('--quick') ? 1_000 : 10_000;
/** `npm run bench:load -- --soak-only`: the soak alone, without the 10,000-request load. */
const SOAK_ONLY = process.argv.includes('--soak-only');
/** `-- --node-only`: `edgeflow serve` alone, without building and starting the Worker in workerd. */
const NODE_ONLY = process.argv.includes('--node-only');
const CONCURRENCY = 64;
const HANG_MS = 30_000;
const LOAD_CAP_MS = 150_000;
const SOAK_CONCURRENCY = 8;
const SOAK_CAP_MS = 180_000;
/** Each quiet window of the soak (no upload), between the upload windows. */
const QUIET_MS = 3000;

interface Server {
  kind: string;
  /** The serving process's event-loop delay log (Node only). */
  eldFile?: string;
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** Dense(384 → 1024 relu) → Dense(1024 → 10 softmax), seeded: ~1.5 MiB of float32 weights. */
async function loadModel(seed: number): Promise<Map<string, Uint8Array>> {
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [INPUT], units: 1024, activation: 'relu' }), tfl.layers.dense({ units: 10, activation: 'softmax' })] });
  const random = seededRandom(seed);
  const weights = model.getWeights().map((w) =>
    tf.tensor(
      Float32Array.from({ length: w.size }, () => (random() * 2 - 1) * 0.05),
      w.shape,
    ),
  );
  model.setWeights(weights);
  tf.dispose(weights);
  const files = await modelFiles(model);
  model.dispose();
  return files;
}

async function publishAll(stores: ObjectStore[]): Promise<void> {
  for (const [i, name] of MODELS.entries()) {
    const { modelFiles: converted, metadata } = await convertModel(await loadModel(i + 1), { name, quantize: 'none', samples: 1 });
    for (const store of stores) await publishVersion(store, { name, files: converted.files, metadata });
  }
}

const predictPath = (name: string) => `/v1/models/${name}:predict`;
const input = Array.from({ length: INPUT }, (_, i) => Math.round(Math.sin(i) * 1000) / 1000);
const BODY = JSON.stringify({ instances: [input] });

interface Outcome {
  ms: number;
  /** When the answer ended (performance.now()). */
  at: number;
  kind: 'ok' | 'wrong' | 'error' | 'hang';
  detail?: string;
}

async function predictOnce(server: Server, name: string, reference?: string): Promise<Outcome & { text?: string }> {
  const start = performance.now();
  try {
    const response = await fetch(`${server.url}${predictPath(name)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY, signal: AbortSignal.timeout(HANG_MS) });
    const text = await response.text();
    const at = performance.now();
    if (!response.ok) return { ms: at - start, at, kind: 'error', detail: `${response.status} ${text.slice(0, 100)}` };
    return { ms: at - start, at, kind: reference === undefined || text === reference ? 'ok' : 'wrong', text };
  } catch (error) {
    const at = performance.now();
    const e = error as Error;
    return { ms: at - start, at, kind: e.name === 'TimeoutError' ? 'hang' : 'error', detail: `${e.name}: ${e.message}`.slice(0, 100) };
  }
}

/** Peak RSS of a process, sampled every 100 ms until stopped. */
function sampleRss(pid: number | undefined): { stop(): Promise<number | null> } {
  let peak: number | null = null;
  const timer = setInterval(async () => {
    const now = await rss(pid);
    if (now !== null && (peak === null || now > peak)) peak = now;
  }, 100);
  return {
    stop: async () => {
      clearInterval(timer);
      const last = await rss(pid);
      return last === null ? peak : Math.max(peak ?? 0, last);
    },
  };
}

const mib = (bytes: number | null) => (bytes === null ? '?' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

function summary(outcomes: Outcome[]): string {
  const count = (kind: Outcome['kind']) => outcomes.filter((o) => o.kind === kind).length;
  const sorted = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  const details = new Map<string, number>();
  for (const o of outcomes) if (o.detail) details.set(o.detail, (details.get(o.detail) ?? 0) + 1);
  const first = [...details].slice(0, 3).map(([d, n]) => `\n    ${n} × ${d}`);
  return `${outcomes.length} requests: ${count('ok')} ok, ${count('error')} errors, ${count('hang')} hangs, ${count('wrong')} wrong answers; p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, 0.99).toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(0)} ms${first.join('')}`;
}

/** The answer each model gives alone, one request at a time (the reference for wrong answers). */
async function references(server: Server): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of MODELS) {
    const outcome = await predictOnce(server, name);
    if (outcome.kind !== 'ok' || !outcome.text) throw new Error(`${server.kind}: ${name} does not answer alone: ${outcome.detail}`);
    out.set(name, outcome.text);
  }
  return out;
}

/** The runtime's cache figures from GET /: its scalar fields and how many models it holds. */
function cacheLine(models: Record<string, unknown>): string {
  const scalars = Object.entries(models).filter(([, v]) => typeof v !== 'object');
  const held = Array.isArray(models.models) ? models.models.length : '?';
  return `${held} models held, ${scalars.map(([k, v]) => `${k} ${v}`).join(', ')}`;
}

async function load(server: Server, refs: Map<string, string>): Promise<void> {
  const idle = await rss(server.pid);
  const memory = sampleRss(server.pid);
  const outcomes: Outcome[] = [];
  const deadline = performance.now() + LOAD_CAP_MS;
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS && performance.now() < deadline) {
        const name = MODELS[next++ % MODELS.length]!;
        outcomes.push(await predictOnce(server, name, refs.get(name)));
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const peak = await memory.stop();
  const stats = (await (await fetch(`${server.url}/`, { headers: { accept: 'application/json' } })).json()) as { models: Record<string, unknown> };
  console.log(`  load: ${summary(outcomes)}${outcomes.length < REQUESTS ? ` (stopped at the ${LOAD_CAP_MS / 1000} s cap)` : ''}`);
  console.log(
    `  ${(outcomes.length / seconds).toFixed(0)} req/s over ${seconds.toFixed(1)} s; RSS ${mib(idle)} before, peak ${mib(peak)}, with a ${BUDGET_MIB} MiB weight budget; cache after: ${cacheLine(stats.models)}`,
  );
}

/** The hostile uploads: [label, content type, body]. */
async function hostileUploads(): Promise<[string, string, Uint8Array<ArrayBuffer> | FormData][]> {
  const small = await loadModel(9);
  const modelJson = JSON.parse(new TextDecoder().decode(small.get('model.json')!)) as {
    modelTopology: { config: { layers: { config: { units?: number; batch_input_shape?: unknown[] } }[] } };
    weightsManifest: { weights: { shape: number[] }[] }[];
  };
  const weightsFile = [...small.keys()].find((k) => k.endsWith('.bin'))!;
  const form = (json: unknown, weights: Uint8Array) => {
    const data = new FormData();
    data.append('model.json', new Blob([JSON.stringify(json)]), 'model.json');
    data.append(weightsFile, new Blob([weights as Uint8Array<ArrayBuffer>]), weightsFile);
    return data;
  };
  // A huge dimension: the first kernel declared 384 x 2^27 (192 GiB of float32), the file unchanged.
  const huge = structuredClone(modelJson);
  huge.weightsManifest[0]!.weights[0]!.shape = [INPUT, 2 ** 27];
  huge.modelTopology.config.layers[0]!.config.units = 2 ** 27;
  // NaN weights: the same model, every weight NaN.
  const nan = new Float32Array(small.get(weightsFile)!.byteLength / 4).fill(Number.NaN);
  // Zips whose headers lie about what each entry unpacks to: ~4 GiB, or 16 bytes.
  const zip = zipSync({ 'model.json': small.get('model.json')!, [weightsFile]: small.get(weightsFile)! });
  const lyingZip = (size: number) => {
    const lying = zip.slice();
    const view = new DataView(lying.buffer);
    for (let i = 0; i + 4 <= lying.length; i++) {
      const signature = view.getUint32(i, true);
      if (signature === 0x04034b50) view.setUint32(i + 22, size, true); // local header: uncompressed size
      if (signature === 0x02014b50) view.setUint32(i + 24, size, true); // central directory: uncompressed size
    }
    return lying as Uint8Array<ArrayBuffer>;
  };
  return [
    ['huge dimension', '', form(huge, small.get(weightsFile)!)],
    ['zip claiming 4 GiB entries', 'application/zip', lyingZip(0xfffffff0)],
    ['zip claiming 16-byte entries', 'application/zip', lyingZip(16)],
    ['NaN weights', '', form(modelJson, new Uint8Array(nan.buffer))],
    ['not a model at all', 'application/zip', strToU8('PK\u0003\u0004 this is not a zip') as Uint8Array<ArrayBuffer>],
    // Not hostile: a conversion that runs to the end (Node: in the conversion thread, at a lower priority).
    ['a valid model (converts)', '', form(modelJson, small.get(weightsFile)!)],
  ];
}

/** Latency figures of the predictions that started in a set of windows. */
function windowStats(outcomes: Outcome[], windows: [number, number][]): { n: number; p50: number; p99: number; max: number } {
  const ms = outcomes
    .filter((o) => windows.some(([from, to]) => o.at - o.ms >= from && o.at - o.ms < to))
    .map((o) => o.ms)
    .sort((a, b) => a - b);
  return { n: ms.length, p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), max: ms.at(-1) ?? NaN };
}

/** The serving thread's event-loop delay per 100 ms slice (bench/eld-probe.mjs), [epoch ms, max delay ms]. */
async function eventLoopDelays(file: string): Promise<[number, number][]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').map(Number) as [number, number]);
}

/**
 * The soak: SOAK_CONCURRENCY clients predict throughout, while quiet windows (no upload) and
 * upload windows (one hostile upload, from its POST until its status settles) alternate, so
 * both kinds see the same clients, cache and machine load. What an upload adds to a
 * prediction's wait is the upload windows' figure minus the quiet ones'.
 */
async function soak(server: Server, eldFile?: string): Promise<void> {
  const outcomes: Outcome[] = [];
  const uploads: { label: string; id?: string; state: string; reason?: string; ms: number }[] = [];
  const windows: Record<'quiet' | 'upload', [number, number][]> = { quiet: [], upload: [] };
  /** The same windows in epoch ms, for the event-loop log. */
  const epochWindows: Record<'quiet' | 'upload', [number, number][]> = { quiet: [], upload: [] };
  let stop = false;
  const deadline = performance.now() + SOAK_CAP_MS;
  const clients = Promise.all(
    Array.from({ length: SOAK_CONCURRENCY }, async (_, c) => {
      for (let i = c; !stop && performance.now() < deadline; i += SOAK_CONCURRENCY) outcomes.push(await predictOnce(server, MODELS[i % MODELS.length]!));
    }),
  );
  const window = async (kind: 'quiet' | 'upload', work: () => Promise<void>) => {
    const [from, fromEpoch] = [performance.now(), Date.now()];
    await work();
    windows[kind].push([from, performance.now()]);
    epochWindows[kind].push([fromEpoch, Date.now()]);
  };
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  await sleep(500); // the clients' first requests (model loads) before any window
  for (const [label, type, body] of await hostileUploads()) {
    await window('quiet', () => sleep(QUIET_MS));
    await window('upload', async () => {
      const started = performance.now();
      const response = await fetch(`${server.url}/admin/models/hostile-upload/uploads`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, ...(type ? { 'content-type': type } : {}) },
        body,
      });
      const answer = (await response.json()) as { id?: string; state?: string; error?: string };
      const upload = { label, id: answer.id, state: response.status === 202 ? (answer.state ?? '?') : `refused ${response.status}`, reason: answer.error, ms: performance.now() - started };
      uploads.push(upload);
      while (performance.now() < deadline && upload.id && (upload.state === 'queued' || upload.state === 'converting')) {
        await sleep(250);
        const status = (await (await fetch(`${server.url}/admin/uploads/${upload.id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
          state: string;
          reason?: string;
          lastError?: string;
        };
        upload.state = status.state;
        upload.reason = status.reason ?? status.lastError;
        upload.ms = performance.now() - started;
      }
      await sleep(500); // what settling leaves behind (a publish's index refresh, a freed heap)
    });
  }
  await window('quiet', () => sleep(QUIET_MS));
  stop = true;
  await clients;
  const during = outcomes.filter((o) => windows.upload.some(([from, to]) => o.at - o.ms >= from && o.at - o.ms < to));
  console.log(`  soak (${SOAK_CONCURRENCY} clients, ${windows.upload.length} upload windows interleaved with ${windows.quiet.length} quiet ones of ${QUIET_MS / 1000} s):`);
  console.log(`    during uploads: ${summary(during)}`);
  const quiet = windowStats(outcomes, windows.quiet);
  const loaded = windowStats(outcomes, windows.upload);
  const line = (name: string, w: typeof quiet) => `${name}: ${w.n} predictions, p50 ${w.p50.toFixed(1)} ms, p99 ${w.p99.toFixed(1)} ms, max ${w.max.toFixed(0)} ms`;
  console.log(`    ${line('quiet windows', quiet)}\n    ${line('upload windows', loaded)}`);
  console.log(`    attributable to the uploads: p99 +${(loaded.p99 - quiet.p99).toFixed(1)} ms, max +${(loaded.max - quiet.max).toFixed(0)} ms`);
  if (eldFile) {
    const delays = await eventLoopDelays(eldFile);
    const within = (kind: 'quiet' | 'upload') =>
      delays
        .filter(([t]) => epochWindows[kind].some(([from, to]) => t >= from && t < to))
        .map(([, d]) => d)
        .sort((a, b) => a - b);
    const eld = (kind: 'quiet' | 'upload') => {
      const d = within(kind);
      return `${kind} p99 ${quantile(d, 0.99).toFixed(1)} ms, max ${(d.at(-1) ?? NaN).toFixed(1)} ms`;
    };
    console.log(`    event-loop delay of the serving thread (largest per 100 ms): ${eld('quiet')}; ${eld('upload')}`);
  }
  const delays = eldFile ? await eventLoopDelays(eldFile) : [];
  uploads.forEach((u, i) => {
    const w = windowStats(outcomes, [windows.upload[i]!]);
    const [from, to] = epochWindows.upload[i]!;
    const eld = delays.filter(([t]) => t >= from && t < to).reduce((max, [, d]) => Math.max(max, d), 0);
    const figures = `its window: p99 ${w.p99.toFixed(0)} ms, max ${w.max.toFixed(0)} ms${eldFile ? `, event loop max ${eld.toFixed(0)} ms` : ''}`;
    console.log(`    upload "${u.label}": ${u.state} after ${(u.ms / 1000).toFixed(1)} s; ${figures}${u.reason ? ` (${u.reason.slice(0, 100)})` : ''}`);
  });
}

async function main(): Promise<void> {
  console.log(`edgeflow load benchmark: ${await useNodeBackend()} in Node ${process.version}; loopback only\n`);
  const work = await mkdtemp(path.join(tmpdir(), 'edgeflow-load-'));
  const folder = path.join(work, 'store');
  const eldFile = path.join(work, 'event-loop-delay.log');
  const bundle = NODE_ONLY ? undefined : await buildWorker(path.join(repoRoot, '.build', 'load-worker'));
  const worker = bundle && (await startWorker(bundle, { uploadQueue: true, vars: { MEMORY_BUDGET_MB: String(BUDGET_MIB), EDGEFLOW_ADMIN_TOKEN: TOKEN, INDEX_TTL_MS: '5000' } }));
  await publishAll([new LocalFolderStore(folder), ...(worker ? [worker.store] : [])]);
  const servers: (() => Promise<Server>)[] = [
    async () => ({
      kind: 'node (edgeflow serve --workers 1 --watch)',
      eldFile,
      ...(await spawnServe(folder, ['--workers', '1', '--watch', '--memory-budget', String(BUDGET_MIB)], {
        EDGEFLOW_ADMIN_TOKEN: TOKEN,
        EDGEFLOW_ELD_LOG: eldFile,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(repoRoot, 'bench/eld-probe.mjs')).href}`.trim(),
      })),
    }),
  ];
  if (worker) servers.push(async () => ({ kind: 'workerd (the deploy bundle)', url: worker.url, pid: await workerdPid(), stop: () => worker.dispose() }));
  try {
    for (const start of servers) {
      const server = await start();
      try {
        console.log(`${server.kind}: ${REQUESTS} predictions at c=${CONCURRENCY} over ${MODELS.length} models of ~1.5 MiB, budget ${BUDGET_MIB} MiB`);
        if (!SOAK_ONLY) await load(server, await references(server));
        await soak(server, server.eldFile);
        console.log('');
      } finally {
        await server.stop();
      }
    }
  } finally {
    await worker?.dispose().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
    if (bundle) await rm(bundle.dir, { recursive: true, force: true });
  }
}

await main();
