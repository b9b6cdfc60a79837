// `npm run bench:serve`: serving figures, in one run, for a tiny dense model, an MNIST-size
// CNN and MobileNetV2 224x224 (the nsfwjs fixture at uint8, and at float16 with BatchNorm folded;
// skipped without ../shared/fixtures):
//   - bare predict on wasm-SIMD in Node (in this process)
//   - HTTP predict through workerd (the deploy bundle in Miniflare, models in R2)
//   - HTTP predict through the Node entry (`edgeflow serve` in a child process)
//   - a no-op route (GET /v2/health/live) on each server
//   - the same app in this process through app.request (no sockets): our own code's share
// p50/p99 latency, overhead ratio ((predict − no-op) / bare), cold start (fresh isolate or
// process → first prediction; also with the body uploaded at 8 MB/s), requests/s at
// concurrency 1, 8 and 32, memory after 1,000 requests, and the bundle's gzip size. Loopback only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useNodeBackend } from '../cli/backend.ts';
import { table } from '../cli/format.ts';
import { convertModel } from '../converter/convert.ts';
import { publishVersion } from '../shared/bucket/publish.ts';
import { demoModels, type DemoModel } from '../scripts/demo-models.ts';
import { optionalFixtures } from '../scripts/fixture-models.ts';
import { createNodeApp } from '../functions/node.ts';
import { nestedShape } from '../shared/codecs.ts';
import { loadModel } from '../shared/model-loader.ts';
import { keys } from '../shared/names.ts';
import { ModelJson } from '../shared/schemas/model-json.ts';
import { LocalFolderStore } from '../shared/store/local.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { buildWorker, repoRoot, startWorker, type RunningWorker, type WorkerBundle } from '../scripts/edge-worker.ts';
import { rss, spawnServe, workerdPid } from './proc.ts';

interface BenchModel {
  name: string;
  label: string;
  /** Request body of one prediction (batch 1), JSON text. */
  body: string;
  bodyKind: string;
  input: { values: Float32Array; shape: number[] };
  samples: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const summary = (times: number[]) => {
  const sorted = [...times].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
};
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

async function benchModels(): Promise<{ models: DemoModel[]; bench: BenchModel[] }> {
  const fixtures = await optionalFixtures();
  // MobileNetV2 once more at float16, where its 52 BatchNormalization layers are folded away
  // (at uint8 none are: its kernels sit exactly on the source's uint8 grids).
  const folded = fixtures.map((model) => ({ ...model, name: `${model.name}-f16`, quantize: 'float16' }));
  const models = [...(await demoModels()), ...fixtures, ...folded];
  const bench = models.map((model): BenchModel => {
    const instance = model.example();
    const values = new Float32Array([instance].flat(Infinity) as number[]);
    const big = values.length > 10_000;
    // Large image inputs go as raw float32 bytes ({"b64": ...}); small ones as JSON numbers.
    const body = big ? JSON.stringify({ instances: [{ b64: Buffer.from(values.buffer).toString('base64') }] }) : JSON.stringify({ instances: [instance] });
    const label =
      model.name === 'iris-dense'
        ? 'tiny dense (4→16→3)'
        : model.name === 'mnist-cnn'
          ? 'MNIST CNN (28x28x1)'
          : `MobileNetV2 (224x224x3, ${model.quantize === 'float16' ? 'float16, BN folded' : model.quantize})`;
    return {
      name: model.name,
      label,
      body,
      bodyKind: big ? `b64 float32, ${(body.length / 1024).toFixed(0)} KiB` : `JSON, ${body.length} B`,
      input: { values, shape: [1, ...nestedShape(instance)] },
      samples: big ? 60 : 400,
    };
  });
  return { models, bench };
}

/** Bare predict in this process on the Node wasm backend: tensor in, predict, read, dispose. */
async function bareRunner(store: ObjectStore, model: BenchModel): Promise<{ once: () => Promise<number>; dispose: () => void }> {
  const modelJson = ModelJson.parse(JSON.parse(new TextDecoder().decode((await store.get(keys.versionFile(model.name, 1, 'model.json')))!.body)));
  const shards = new Map<string, Uint8Array>();
  for (const p of modelJson.weightsManifest.flatMap((g) => g.paths)) shards.set(p, (await store.get(keys.versionFile(model.name, 1, p)))!.body);
  const loaded = await loadModel(modelJson, (p) => shards.get(p)!);
  return {
    once: async () => {
      const start = performance.now();
      const input = tf.tensor(model.input.values, model.input.shape);
      const outputs = await loaded.predict([input]);
      await Promise.all(outputs.map((t) => t.data()));
      tf.dispose([input, ...outputs]);
      return performance.now() - start;
    },
    dispose: () => loaded.dispose(),
  };
}

/** One request, timed to the end of its response; a POST with a body (a stream is sent as it arrives). */
async function request(url: string, body?: BodyInit): Promise<number> {
  const start = performance.now();
  const response = await fetch(url, body === undefined ? undefined : ({ method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit));
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return performance.now() - start;
}

/**
 * A body that arrives as over a real uplink: 64 KiB chunks at `bytesPerSecond`. Encoded on the
 * first pull, so inside the request's timing (the stream is made before the request starts).
 */
function uploadedAt(text: string, bytesPerSecond: number): ReadableStream<Uint8Array> {
  let bytes: Uint8Array | undefined;
  const CHUNK = 65536;
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      bytes ??= new TextEncoder().encode(text);
      if (offset >= bytes.length) return controller.close();
      const chunk = bytes.subarray(offset, offset + CHUNK);
      await new Promise((resolve) => setTimeout(resolve, (chunk.length / bytesPerSecond) * 1000));
      controller.enqueue(chunk);
      offset += CHUNK;
    },
  });
}

/** Requests per second with `concurrency` clients in a loop for about `seconds`. */
async function throughput(url: string, body: string, concurrency: number, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await request(url, body);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

interface Server {
  kind: 'workerd' | 'node';
  url: string;
  pid?: number;
  stop(): Promise<void>;
}

async function startWorkerd(bundle: WorkerBundle, r2Persist: string): Promise<Server & { worker: RunningWorker }> {
  const worker = await startWorker(bundle, { r2Persist, vars: { INDEX_TTL_MS: '5000' } });
  return { kind: 'workerd', url: worker.url, worker, pid: await workerdPid(), stop: () => worker.dispose() };
}

async function startNode(folder: string): Promise<Server> {
  return { kind: 'node', ...(await spawnServe(folder)) };
}

async function stats(server: Server): Promise<{ tensors: number; wasmHeapBytes: number | null; bytes: number }> {
  return ((await (await fetch(`${server.url}/`)).json()) as { models: { tensors: number; wasmHeapBytes: number | null; bytes: number } }).models;
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  console.log(`edgeflow serving benchmark: ${await useNodeBackend()} in Node ${process.version}; loopback only\n`);
  const work = await mkdtemp(path.join(tmpdir(), 'edgeflow-bench-'));
  const folder = path.join(work, 'store');
  const r2Persist = path.join(work, 'r2');
  const folderStore = new LocalFolderStore(folder);

  const bundle = await buildWorker(path.join(repoRoot, '.build', 'bench-worker'));
  console.log(`worker bundle (wrangler deploy --dry-run --minify): ${(bundle.bytes / 1024).toFixed(1)} KiB, gzip ${(bundle.gzipBytes / 1024).toFixed(1)} KiB (target ≤ 500 KiB)\n`);

  const { models, bench } = await benchModels();
  if (bench.length < 3) console.log('(../shared/fixtures is absent: MobileNetV2 is skipped)\n');
  const seedWorker = await startWorkerd(bundle, r2Persist);
  for (const model of models) {
    // Converted once; the same files and metadata go into both stores.
    const { modelFiles, metadata } = await convertModel(model.files, { name: model.name, quantize: model.quantize, samples: 2 });
    for (const store of [folderStore, seedWorker.worker.store]) await publishVersion(store, { name: model.name, files: modelFiles.files, metadata });
  }
  await seedWorker.stop();

  const rows: string[][] = [];
  const coldRows: string[][] = [];
  const memoryRows: string[][] = [];
  const bareRows: string[][] = [];

  // Cold start: a fresh isolate (workerd) or process (node) per model → its first prediction;
  // the median of COLD_RUNS fresh starts, with the range (one start is too noisy to report).
  const COLD_RUNS = 3;
  for (const kind of ['workerd', 'node'] as const) {
    for (const model of bench) {
      const starts: number[] = [];
      const firsts: number[] = [];
      const slowFirsts: number[] = [];
      for (let run = 0; run < COLD_RUNS; run++) {
        for (const slow of [false, true]) {
          const t0 = performance.now();
          const server = kind === 'workerd' ? await startWorkerd(bundle, r2Persist) : await startNode(folder);
          if (!slow) starts.push(performance.now() - t0);
          const url = `${server.url}/v1/models/${model.name}:predict`;
          // The slow one's body is uploaded at 8 MB/s (a fast uplink): the model loads meanwhile.
          (slow ? slowFirsts : firsts).push(await request(url, slow ? uploadedAt(model.body, 8e6) : model.body));
          await server.stop();
        }
      }
      const spread = (values: number[]) => `${ms(summary(values).p50)} ms (${ms(Math.min(...values))}–${ms(Math.max(...values))})`;
      coldRows.push([kind, model.label, `${ms(summary(starts).p50)} ms`, spread(firsts), spread(slowFirsts), `${ms((model.body.length / 8e6) * 1000)} ms`]);
    }
  }

  const servers = [await startWorkerd(bundle, r2Persist), await startNode(folder)];
  // The same app in this process through app.request (no sockets): our code's own cost.
  const inProcess = createNodeApp({ store: folderStore }).app;
  const appRequest = async (pathname: string, body?: string) => {
    const start = performance.now();
    const response = await inProcess.request(pathname, body === undefined ? undefined : { method: 'POST', body });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`${pathname}: HTTP ${response.status}`);
    return performance.now() - start;
  };
  try {
    // Latency: bare, both servers' predict and both no-ops interleaved round by round, so a
    // busy machine slows them alike and the overhead ratio compares like with like.
    const noopTimes = new Map<string, number[]>(servers.map((s) => [s.kind, []]));
    for (const model of bench) {
      const bare = await bareRunner(folderStore, model);
      const times = new Map<string, number[]>([['bare', []], ['app', []], ...servers.map((s): [string, number[]] => [s.kind, []])]);
      const noops = new Map<string, number[]>([['app', []], ...servers.map((s): [string, number[]] => [s.kind, []])]);
      for (let round = -5; round < model.samples; round++) {
        const bareMs = await bare.once();
        const appMs = await appRequest(`/v1/models/${model.name}:predict`, model.body);
        const appNoopMs = await appRequest('/v2/health/live');
        if (round >= 0) {
          times.get('bare')!.push(bareMs);
          times.get('app')!.push(appMs);
          noops.get('app')!.push(appNoopMs);
        }
        for (const server of servers) {
          const predictMs = await request(`${server.url}/v1/models/${model.name}:predict`, model.body);
          const noopMs = await request(`${server.url}/v2/health/live`);
          if (round >= 0) {
            times.get(server.kind)!.push(predictMs);
            noopTimes.get(server.kind)!.push(noopMs);
            noops.get(server.kind)!.push(noopMs);
          }
        }
      }
      bare.dispose();
      const b = summary(times.get('bare')!);
      bareRows.push([model.label, ms(b.p50), ms(b.p99)]);
      const app = summary(times.get('app')!);
      const appNoop = summary(noops.get('app')!);
      rows.push([
        'in-process',
        model.label,
        model.bodyKind,
        ms(app.p50),
        ms(app.p99),
        ms(appNoop.p50),
        `${((app.p50 - appNoop.p50) / b.p50).toFixed(2)}  (${app.p50 - appNoop.p50 - b.p50 >= 0 ? '+' : ''}${ms(app.p50 - appNoop.p50 - b.p50)} ms)`,
        '-',
        '-',
        '-',
      ]);
      for (const server of servers) {
        const predict = summary(times.get(server.kind)!);
        const noop = summary(noops.get(server.kind)!);
        const overhead = (predict.p50 - noop.p50) / b.p50;
        const seconds = model.samples < 100 ? 3 : 1.5;
        const url = `${server.url}/v1/models/${model.name}:predict`;
        const rps = [];
        for (const concurrency of [1, 8, 32]) rps.push((await throughput(url, model.body, concurrency, seconds)).toFixed(0));
        rows.push([
          server.kind,
          model.label,
          model.bodyKind,
          ms(predict.p50),
          ms(predict.p99),
          ms(noop.p50),
          `${overhead.toFixed(2)}  (${predict.p50 - noop.p50 - b.p50 >= 0 ? '+' : ''}${ms(predict.p50 - noop.p50 - b.p50)} ms)`,
          ...rps,
        ]);
      }
    }
    for (const server of servers) {
      const noop = summary(noopTimes.get(server.kind)!);
      rows.push([server.kind, 'no-op GET /v2/health/live (all rounds)', '-', ms(noop.p50), ms(noop.p99), '-', '-', '-', '-', '-']);
    }

    // Memory after 1,000 more requests, round-robin over the models.
    for (const server of servers) {
      const before = { rss: await rss(server.pid), ...(await stats(server)) };
      for (let i = 0; i < 1000; i++) {
        const model = bench[i % bench.length]!;
        await request(`${server.url}/v1/models/${model.name}:predict`, model.body);
      }
      const after = { rss: await rss(server.pid), ...(await stats(server)) };
      memoryRows.push([
        server.kind,
        `${before.rss === null ? '?' : mib(before.rss)} → ${after.rss === null ? '?' : mib(after.rss)}`,
        `${before.wasmHeapBytes === null ? '?' : mib(before.wasmHeapBytes)} → ${after.wasmHeapBytes === null ? '?' : mib(after.wasmHeapBytes)}`,
        `${before.tensors} → ${after.tensors}`,
        mib(after.bytes),
      ]);
    }
  } finally {
    for (const server of servers) await server.stop();
  }

  const printTable = (header: string[], body: string[][]) => console.log(`${table([header, ...body])}\n`);
  console.log('Bare predict, wasm-SIMD in Node (tensor in, predict, read back, dispose):');
  printTable(['model', 'p50 ms', 'p99 ms'], bareRows);
  console.log('HTTP predict (TF Serving :predict, batch 1) and no-op; overhead = (predict p50 − no-op p50) / bare p50 (excess over bare in brackets).');
  console.log('"in-process" is the same Hono app called with app.request in this process (no sockets): the cost of our code alone.');
  printTable(['server', 'model', 'body', 'p50 ms', 'p99 ms', 'no-op p50', 'overhead', 'req/s c=1', 'c=8', 'c=32'], rows);
  console.log('Cold start: a fresh workerd (Miniflare) or `edgeflow serve` process, then its first prediction (backend init, fetch + sha256, load, predict); median of 3 (range).');
  console.log('Again with the body uploaded at 8 MB/s, as from a real client: the model loads while the body arrives.');
  printTable(['server', 'model', 'process start', 'first prediction', 'body uploaded at 8 MB/s', 'upload alone'], coldRows);
  console.log('Memory after 1,000 requests (round-robin over the models):');
  printTable(['server', 'process RSS', 'wasm heap', 'live tensors', 'model weights'], memoryRows);
  console.log('Targets: overhead ≤ 1.10 (MobileNetV2), ≤ 1 ms absolute (tiny); cold start ≤ 150 ms (MobileNetV2 uint8); bundle ≤ 500 KiB gzip.');
  console.log("Note: on Cloudflare, performance.now() only advances across I/O (Spectre mitigation), so a deployed Worker's Server-Timing is coarse; local workerd and Node are exact.");
  console.log(`(bench ran ${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
  await rm(work, { recursive: true, force: true });
}

await main();
