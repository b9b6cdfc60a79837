// `npm run bench:serve [-- --quick] [--node-only]`: serving figures in one run, for a tiny dense model, an
// MNIST-size CNN and MobileNetV2 224x224 (the nsfwjs fixture at uint8 and at float16 with
// BatchNorm folded, and at float32 for the in-process bound; skipped without ../shared/fixtures),
// on workerd (the deploy bundle in Miniflare, models in R2) and on `edgeflow serve` (a child
// process, as a user starts it: --workers = cores). Loopback only. Honest by construction:
//   - every compared variant runs in the same rounds, one request each, in turn (a busy machine
//     slows them alike); overhead is the median of the paired per-round ratios HTTP / bare;
//   - p99 is printed only from ≥ 1,000 samples (fewer: "n<1000");
//   - cold start is the same for every server: the server is asked to start (a fresh process /
//     Miniflare's workerd and isolate) → its first prediction answered, with where the time went;
//   - throughput windows last ≥ 10 s, after 3 s of the same load that warm every serving process;
//   - then the goal ratios, each with its figure.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { availableParallelism, tmpdir } from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { useNodeBackend } from '../cli/backend.ts';
import { quietTensorFlow } from '../cli/quiet.ts';
import { table } from '../cli/format.ts';
import { convertModel } from '../converter/convert.ts';
import { publishVersion } from '../shared/bucket/publish.ts';
import { demoModels, type DemoModel } from '../scripts/demo-models.ts';
import { optionalFixtures } from '../scripts/fixture-models.ts';
import { createNodeApp } from '../functions/node.ts';
import { nestedShape } from '../shared/codecs.ts';
import { loadModel } from '../shared/model-loader.ts';
import { ModelJson } from '../shared/schemas/model-json.ts';
import { LocalFolderStore } from '../shared/store/local.ts';
import { buildWorker, repoRoot, startWorker, type WorkerBundle } from '../scripts/edge-worker.ts';
import { buildCli } from '../scripts/build-cli.ts';
import { boundShare, layersMacs, type MatmulBound, matmulBound } from './bound.ts';
import { rss, spawnServe, workerdPid } from './proc.ts';
import { quantile } from './stats.ts';
import { type BenchInput, timedPredict } from './timed-predict.ts';

const QUICK = process.argv.includes('--quick');
/** `--node-only`: `edgeflow serve` alone, without building and starting the Worker in workerd. */
const KINDS: Server['kind'][] = process.argv.includes('--node-only') ? ['node'] : ['workerd', 'node'];
/** Rounds of the latency comparison: small models reach 1,000 samples; MobileNetV2 runs fewer (p50 only). */
const ROUNDS = { small: 1000, large: QUICK ? 30 : 60 };
const COLD_RUNS = QUICK ? 3 : 5;
const WINDOW_S = 10;
/** Before each throughput window, the same load unrecorded, so that every serving process has the model loaded. */
const WARMUP_S = 3;
const P99_MIN_SAMPLES = 1000;
/** Where the run is, on stderr (the tables come at the end, on stdout). */
const progress = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

interface BenchModel {
  name: string;
  label: string;
  /** Request body of one prediction (batch 1): JSON text, or raw float32 bytes (octet-stream). */
  body: string | Uint8Array<ArrayBuffer>;
  contentType: string;
  bodyKind: string;
  input: BenchInput;
  large: boolean;
  /** Only measured in process (the float32 MobileNetV2 of the bound table). */
  bareOnly: boolean;
  dtype: string;
  /** The served model, as the runtime loads it. */
  files: { modelJson: ModelJson; shards: Map<string, Uint8Array>; compiled: boolean };
}

const p50 = (values: number[]) => quantile(values, 0.5);
const p99 = (values: number[]) => (values.length >= P99_MIN_SAMPLES ? ms(quantile(values, 0.99)) : `n<${P99_MIN_SAMPLES}`);
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const mib = (bytes: number | null) => (bytes === null ? '?' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const range = (values: number[]) => `${ms(p50(values))} (${ms(Math.min(...values))}–${ms(Math.max(...values))})`;
/** Median of the per-round ratios a[i] / b[i]. */
const pairedRatio = (a: number[], b: number[]) => p50(a.map((x, i) => x / b[i]!));

function labelOf(model: DemoModel): string {
  if (model.name === 'iris-dense') return 'tiny dense (4→16→3)';
  if (model.name === 'mnist-cnn') return 'MNIST CNN (28x28x1)';
  return `MobileNetV2 224x224 ${model.quantize === 'float16' ? 'float16' : model.quantize === 'none' ? 'float32' : model.quantize}`;
}

/** Converts every model once and publishes it into both stores; the bench's view of each. */
async function prepareModels(stores: { publish: (name: string, files: Map<string, Uint8Array>, metadata: unknown) => Promise<void> }) {
  const fixtures = await optionalFixtures();
  const variants = fixtures.flatMap((model) => [model, { ...model, name: `${model.name}-f16`, quantize: 'float16' }, { ...model, name: `${model.name}-f32`, quantize: 'none' }]);
  const models = [...(await demoModels()), ...variants];
  const bench: BenchModel[] = [];
  for (const model of models) {
    progress(`converting ${model.name} (${model.quantize})`);
    const { modelFiles, metadata } = await convertModel(model.files, { name: model.name, quantize: model.quantize, samples: 2 });
    const bareOnly = model.quantize === 'none' && fixtures.length > 0 && model.name.endsWith('-f32');
    if (!bareOnly) await stores.publish(model.name, modelFiles.files, metadata);
    const instance = model.example();
    const values = new Float32Array([instance].flat(Infinity) as number[]);
    const large = values.length > 10_000;
    // Large image inputs go as a raw float32 tensor body (application/octet-stream); small ones as JSON numbers.
    const body = large ? new Uint8Array(values.buffer) : JSON.stringify({ instances: [instance] });
    bench.push({
      name: model.name,
      label: labelOf(model),
      body,
      contentType: large ? 'application/octet-stream' : 'application/json',
      bodyKind: large ? `raw float32, ${(body.length / 1024).toFixed(0)} KiB` : `JSON, ${body.length} B`,
      input: { values, shape: [1, ...nestedShape(instance)] },
      large,
      bareOnly,
      dtype: model.quantize === 'none' ? 'float32' : model.quantize,
      files: { modelJson: modelFiles.modelJson, shards: modelFiles.files, compiled: metadata.serving?.runtime === 'compiled-graph' },
    });
  }
  return { bench, source: fixtures[0]?.files };
}

/** One request, timed to the end of its response; a POST with a body (a stream is sent as it arrives). */
async function request(url: string, body?: BodyInit, contentType = 'application/json'): Promise<{ ms: number; timing: string }> {
  const start = performance.now();
  const response = await fetch(url, body === undefined ? undefined : ({ method: 'POST', headers: { 'content-type': contentType }, body, duplex: 'half' } as RequestInit));
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return { ms: performance.now() - start, timing: response.headers.get('server-timing') ?? '' };
}

/** A body that arrives as over a real uplink: 64 KiB chunks at `bytesPerSecond`. */
function uploadedAt(body: string | Uint8Array<ArrayBuffer>, bytesPerSecond: number): ReadableStream<Uint8Array> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (offset >= bytes.length) return controller.close();
      const chunk = bytes.subarray(offset, offset + 65536);
      await new Promise((resolve) => setTimeout(resolve, (chunk.length / bytesPerSecond) * 1000));
      controller.enqueue(chunk);
      offset += chunk.length;
    },
  });
}

/** Requests per second and per-request latencies with `concurrency` clients in a loop for `seconds`. */
async function throughput(url: string, model: BenchModel, concurrency: number, seconds = WINDOW_S): Promise<{ rps: number; times: number[]; failed: number }> {
  const end = performance.now() + seconds * 1000;
  const times: number[] = [];
  let failed = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          times.push((await request(url, model.body, model.contentType)).ms);
        } catch {
          failed++;
        }
      }
    }),
  );
  return { rps: times.length / ((performance.now() - start) / 1000), times, failed };
}

/**
 * The machine's own ceiling for the throughput goal: `count` processes (bench/bare-loop.ts), each
 * predicting in process in a loop, all at once for WINDOW_S seconds. Cores that share caches,
 * memory bandwidth and a power budget run slower together than one alone; this says how much.
 */
async function parallelBare(model: BenchModel, count: number, work: string): Promise<{ rps: number; times: number[] }> {
  progress(`ceiling: ${count} in-process predictors at once, ${model.name}`);
  const folder = await mkdtemp(path.join(work, 'bare-'));
  await writeFile(path.join(folder, 'model.json'), JSON.stringify(model.files.modelJson));
  for (const [name, bytes] of model.files.shards) await writeFile(path.join(folder, name), bytes);
  await writeFile(path.join(folder, 'input.bin'), new Uint8Array(model.input.values.buffer));
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const args = [tsx, path.join(repoRoot, 'bench', 'bare-loop.ts'), folder, model.files.compiled ? '1' : '0', String(WINDOW_S), model.input.shape.join(',')];
  const children = Array.from({ length: count }, () => spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = children.map((child) => createInterface({ input: child.stdout! })[Symbol.asyncIterator]());
  const next = async (i: number): Promise<string> => {
    const line = await lines[i]!.next();
    if (line.done) throw new Error(`bench/bare-loop.ts exited early (exit code ${children[i]!.exitCode})`);
    return line.value;
  };
  try {
    await Promise.all(children.map((_, i) => next(i)));
    // One line starts them all, and ends their stdin: each exits once it has printed its times.
    for (const child of children) child.stdin!.end('go\n');
    const times = (await Promise.all(children.map(async (_, i) => JSON.parse(await next(i)) as number[]))).flat();
    return { rps: times.length / WINDOW_S, times };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
    await rm(folder, { recursive: true, force: true });
  }
}

interface Server {
  kind: 'workerd' | 'node';
  url: string;
  pid?: number;
  stop(): Promise<void>;
}

async function startServer(kind: Server['kind'], bundle: WorkerBundle | undefined, r2Persist: string, folder: string): Promise<Server> {
  if (kind === 'node' || !bundle) return { kind: 'node', ...(await spawnServe(folder)) };
  const worker = await startWorker(bundle, { r2Persist, vars: { INDEX_TTL_MS: '5000' } });
  return { kind, url: worker.url, pid: await workerdPid(), stop: () => worker.dispose() };
}

/** What the server says of itself after its first prediction: backend start and the model's load stages. */
async function loadStages(server: Server, name: string, attempt = 0): Promise<{ initMs: number; fetchMs: number; buildMs: number }> {
  const meta = (await (await fetch(`${server.url}/v2`)).json()) as {
    edgeflow: { backend: { initMs: number | null }; models: { models: { key: string; timings: { fetchMs: number; buildMs: number } }[] } };
  };
  const entry = meta.edgeflow.models.models.find((m) => m.key.startsWith(`${name}/`));
  // Another serving process of the cluster answered: ask again (keep-alive usually reaches the same one).
  if (!entry && attempt < 5) return loadStages(server, name, attempt + 1);
  return { initMs: meta.edgeflow.backend.initMs ?? Number.NaN, fetchMs: entry?.timings.fetchMs ?? Number.NaN, buildMs: entry?.timings.buildMs ?? Number.NaN };
}

const timingOf = (header: string, metric: string) => Number(new RegExp(`${metric};dur=([\\d.]+)`).exec(header)?.[1] ?? Number.NaN);

/** Wall time of `node -e 0` here: the part of a Node cold start no code of ours can cut. */
function nodeStartMs(): number {
  const times = Array.from({ length: 5 }, () => {
    const start = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    return performance.now() - start;
  });
  return p50(times);
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  quietTensorFlow();
  const cores = availableParallelism();
  console.log(`edgeflow serving benchmark${QUICK ? ' (--quick)' : ''}: ${await useNodeBackend()} in Node ${process.version}, ${cores} cores; loopback only`);
  const cli = await buildCli();
  console.log(`edgeflow serve runs compiled (npm run build: dist/, ${(cli.bytes / 1024).toFixed(0)} KiB) with --workers ${cores} (default: one per core)`);
  const work = await mkdtemp(path.join(tmpdir(), 'edgeflow-bench-'));
  const folder = path.join(work, 'store');
  const r2Persist = path.join(work, 'r2');
  const folderStore = new LocalFolderStore(folder);
  const bundle = KINDS.includes('workerd') ? await buildWorker(path.join(repoRoot, '.build', 'bench-worker')) : undefined;
  if (bundle) console.log(`worker bundle (wrangler deploy --dry-run --minify): ${(bundle.bytes / 1024).toFixed(1)} KiB, gzip ${(bundle.gzipBytes / 1024).toFixed(1)} KiB (target ≤ 500 KiB)\n`);

  const seed = bundle && (await startWorker(bundle, { r2Persist }));
  const { bench, source } = await prepareModels({
    publish: async (name, files, metadata) => {
      for (const store of [folderStore, ...(seed ? [seed.store] : [])]) await publishVersion(store, { name, files, metadata: metadata as Parameters<typeof publishVersion>[1]['metadata'] });
    },
  });
  await seed?.dispose();
  if (!source) console.log('(../shared/fixtures is absent: MobileNetV2 is skipped)\n');
  const served = bench.filter((m) => !m.bareOnly);
  const uint8 = bench.find((m) => m.large && m.dtype === 'uint8');
  const tiny = bench[0]!;
  const printTable = (title: string, header: string[], rows: string[][]) => console.log(`${title}\n${table([header, ...rows])}\n`);

  // 1. Cold start, the same definition on both servers: asked to start → first prediction answered.
  const nodeMs = nodeStartMs();
  const coldRows: string[][] = [];
  const coldTotals = new Map<string, number[]>();
  for (const model of [tiny, ...(uint8 ? [uint8] : [])]) {
    for (const kind of KINDS) {
      progress(`cold start: ${kind}, ${model.name}`);
      const runs: { total: number; ready: number; first: number; initMs: number; fetchMs: number; buildMs: number; infer: number; slowFirst?: number }[] = [];
      for (let run = 0; run < COLD_RUNS; run++) {
        const t0 = performance.now();
        const server = await startServer(kind, bundle, r2Persist, folder);
        const ready = performance.now() - t0;
        try {
          const first = await request(`${server.url}/v1/models/${model.name}:predict`, model.body, model.contentType);
          runs.push({ total: performance.now() - t0, ready, first: first.ms, infer: timingOf(first.timing, 'infer'), ...(await loadStages(server, model.name)) });
        } finally {
          await server.stop();
        }
      }
      // Once more with the body uploaded at 8 MB/s: the model loads while the body arrives.
      const slow = await startServer(kind, bundle, r2Persist, folder);
      const slowFirst = await request(`${slow.url}/v1/models/${model.name}:predict`, uploadedAt(model.body, 8e6), model.contentType).finally(() => slow.stop());
      const column = (pick: (r: (typeof runs)[number]) => number) => range(runs.map(pick));
      // The goal's figure: node, the whole start; workerd, the fresh isolate's first prediction (Miniflare's
      // start of a workerd process is the platform's, not an isolate's: workerd loads the bundle into an
      // isolate before it reports ready, as Cloudflare does before routing a request to it).
      coldTotals.set(
        `${kind}/${model.name}`,
        runs.map((r) => (kind === 'workerd' ? r.first : r.total)),
      );
      coldRows.push([
        kind,
        model.label,
        column((r) => r.total),
        column((r) => r.ready),
        column((r) => r.first),
        column((r) => r.initMs),
        column((r) => r.fetchMs),
        column((r) => r.buildMs),
        column((r) => r.infer),
        column((r) => r.first - r.fetchMs - r.buildMs - r.infer),
        `${ms(slowFirst.ms)} (upload ${ms((model.body.length / 8e6) * 1000)})`,
      ]);
    }
  }

  // 2. Latency: every variant once per round, in turn.
  const servers: Server[] = [];
  for (const kind of KINDS) servers.push(await startServer(kind, bundle, r2Persist, folder));
  const inProcess = createNodeApp({ store: folderStore }).app;
  const latencyRows: string[][] = [];
  const boundRows: string[][] = [];
  const goals: string[] = [];
  const bareRate = new Map<string, number>();
  let bound: MatmulBound | undefined;
  const boundGflops: number[] = [];
  let macs = Number.NaN;
  if (source) {
    bound = await matmulBound();
    macs = await layersMacs(uint8!.files.modelJson);
  }
  try {
    for (const model of bench) {
      const bare = await loadModel(model.files.modelJson, (p) => model.files.shards.get(p)!, { compile: model.files.compiled });
      // Stock TF.js on the source model (the layers runtime, float32), beside uint8 MobileNetV2.
      const stock = model === uint8 && source ? await loadModel(ModelJson.parse(JSON.parse(new TextDecoder().decode(source.get('model.json')!))), (p) => source.get(p)!) : undefined;
      const times = new Map<string, number[]>();
      const record = (variant: string, round: number, value: number) => {
        if (round < 0) return;
        if (!times.has(variant)) times.set(variant, []);
        times.get(variant)!.push(value);
      };
      const rounds = model.large ? ROUNDS.large : ROUNDS.small;
      progress(`latency: ${model.name}, ${rounds} rounds`);
      for (let round = -5; round < rounds; round++) {
        record('bare', round, await timedPredict(bare, model.input));
        if (model.large && bound) record('bound', round, await bound.round());
        if (stock) record('stock', round, await timedPredict(stock, model.input));
        if (model.bareOnly) continue;
        const appStart = performance.now();
        await (await inProcess.request(`/v1/models/${model.name}:predict`, { method: 'POST', body: model.body, headers: { 'content-type': model.contentType } })).arrayBuffer();
        record('app', round, performance.now() - appStart);
        for (const server of servers) {
          record(server.kind, round, (await request(`${server.url}/v1/models/${model.name}:predict`, model.body, model.contentType)).ms);
          record(`${server.kind} no-op`, round, (await request(`${server.url}/v2/health/live`)).ms);
        }
      }
      bare.dispose();
      stock?.dispose();
      const b = times.get('bare')!;
      bareRate.set(model.name, 1000 / p50(b));
      latencyRows.push([model.label, 'bare (in process)', '-', String(b.length), ms(p50(b)), p99(b), '1.00']);
      if (stock)
        latencyRows.push([model.label, 'stock TF.js, source model', '-', String(b.length), ms(p50(times.get('stock')!)), p99(times.get('stock')!), pairedRatio(times.get('stock')!, b).toFixed(2)]);
      if (!model.bareOnly) {
        for (const variant of ['app', ...KINDS]) {
          const t = times.get(variant)!;
          latencyRows.push([model.label, variant === 'app' ? 'app.request (no sockets)' : `${variant} HTTP`, model.bodyKind, String(t.length), ms(p50(t)), p99(t), pairedRatio(t, b).toFixed(2)]);
        }
        for (const kind of KINDS)
          latencyRows.push([
            model.label,
            `${kind} no-op GET /v2/health/live`,
            '-',
            String(times.get(`${kind} no-op`)!.length),
            ms(p50(times.get(`${kind} no-op`)!)),
            p99(times.get(`${kind} no-op`)!),
            '-',
          ]);
      }
      if (model.large && bound) {
        const share = boundShare(macs, b, times.get('bound')!);
        boundGflops.push(share.boundGflops);
        boundRows.push([model.label, model.files.compiled ? 'compiled graph' : 'layers', ms(p50(b)), share.gflops.toFixed(1), share.boundGflops.toFixed(1), `${(100 * share.share).toFixed(0)}%`]);
      }
      if (stock) {
        const ratio = pairedRatio(times.get('node')!, times.get('stock')!);
        goals.push(`edgeflow serve, uint8 MobileNetV2 over HTTP / stock TF.js in process on the source: ${ratio.toFixed(2)}x (goal ≤ 0.6x) ${ratio <= 0.6 ? 'MET' : 'not met'}`);
      }
    }

    // 3. Throughput windows (≥ 10 s) at c=1 and c=32; the goal compares Node at c=32 with cores x the in-process rate.
    const throughputRows: string[][] = [];
    const ceilingRows: string[][] = [];
    for (const model of QUICK ? [tiny, ...(uint8 ? [uint8] : [])] : served) {
      for (const server of servers) {
        for (const concurrency of QUICK ? [32] : [1, 32]) {
          const ceiling = server.kind === 'node' && concurrency === 32 ? await parallelBare(model, cores, work) : undefined;
          progress(`throughput: ${server.kind}, ${model.name}, c=${concurrency}`);
          // Steady state: every serving process has loaded the model (the cold start is measured above).
          await throughput(`${server.url}/v1/models/${model.name}:predict`, model, concurrency, WARMUP_S);
          const { rps, times: t, failed } = await throughput(`${server.url}/v1/models/${model.name}:predict`, model, concurrency);
          if (ceiling)
            ceilingRows.push([
              model.label,
              (ceiling.rps / (cores * bareRate.get(model.name)!)).toFixed(2),
              String(ceiling.times.length),
              ms(p50(ceiling.times)),
              p99(ceiling.times),
              (rps / ceiling.rps).toFixed(2),
            ]);
          const scale = rps / (cores * bareRate.get(model.name)!);
          throughputRows.push([
            server.kind,
            model.label,
            String(concurrency),
            rps.toFixed(1),
            server.kind === 'node' && concurrency === 32 ? `${scale.toFixed(2)}` : '-',
            String(t.length),
            ms(p50(t)),
            p99(t),
            t.length >= P99_MIN_SAMPLES ? (quantile(t, 0.99) / p50(t)).toFixed(1) : '-',
            String(failed),
          ]);
          if (server.kind === 'node' && concurrency === 32) {
            goals.push(`Node c=32, --workers ${cores}, ${model.label}: ${rps.toFixed(1)} req/s = ${scale.toFixed(2)} x cores x in-process rate (goal ≥ 0.9) ${scale >= 0.9 ? 'MET' : 'not met'}`);
            if (t.length >= P99_MIN_SAMPLES) {
              const tail = quantile(t, 0.99) / p50(t);
              goals.push(`Node c=32, ${model.label}: p99 / p50 = ${tail.toFixed(1)} over ${t.length} requests (goal ≤ 3) ${tail <= 3 ? 'MET' : 'not met'}`);
            }
          }
        }
      }
    }

    // Memory at the end, after every round above.
    const memoryRows: string[][] = [];
    for (const server of servers) {
      const models = ((await (await fetch(`${server.url}/`)).json()) as { models: { tensors: number; wasmHeapBytes: number | null; bytes: number } }).models;
      memoryRows.push([server.kind, mib(await rss(server.pid)), mib(models.wasmHeapBytes), String(models.tensors), mib(models.bytes)]);
    }

    printTable(
      `Cold start, ${COLD_RUNS} runs (median (min–max), ms): asked to start (node: \`edgeflow serve\` spawned; workerd: Miniflare starts workerd, which loads the bundle in an isolate) → first prediction answered.\n` +
        `ready = start → listening; first request = ready → the answer (node: node itself ${ms(nodeMs)} ms, imports, wasm backend start); backend init, fetch + sha256 and build as the server reports them; rest = HTTP, body read and parse.`,
      ['server', 'model', 'total', 'ready', 'first request', 'backend init', 'fetch+sha256', 'build', 'first infer', 'rest', 'body at 8 MB/s: first request'],
      coldRows,
    );
    printTable(
      'Latency, variants interleaved round by round (ms); ratio = median over rounds of this variant / bare in the same round',
      ['model', 'variant', 'body', 'n', 'p50', 'p99', 'ratio to bare'],
      latencyRows,
    );
    if (boundRows.length)
      printTable(
        `MobileNetV2 in process against the single-core SIMD bound (a 1024³ float32 matMul, B constant, one round of it after each bare round; each at its median: ${Math.min(...boundGflops).toFixed(1)}–${Math.max(...boundGflops).toFixed(1)} GFLOP/s), ${(macs / 1e6).toFixed(0)} M multiply-adds`,
        ['model', 'runs as', 'p50 ms', 'GFLOP/s', 'bound GFLOP/s (same rounds)', '% of bound (goal ≥ 75%)'],
        boundRows,
      );
    printTable(
      `Throughput, ${WINDOW_S} s windows; node x = req/s / (${cores} cores x in-process rate)`,
      ['server', 'model', 'c', 'req/s', 'node x', 'n', 'p50 ms', 'p99 ms', 'p99/p50', 'failed'],
      throughputRows,
    );
    printTable(
      `The machine's ceiling: ${cores} processes predicting in process at once (no HTTP), ${WINDOW_S} s, just before Node's c=32 window`,
      ['model', `x (${cores} cores x in-process rate)`, 'n', 'p50 ms', 'p99 ms', 'Node c=32 req/s / this'],
      ceilingRows,
    );
    printTable('Memory at the end of the run', ['server', 'process RSS', 'wasm heap', 'live tensors', 'model weights'], memoryRows);
    for (const row of boundRows) goals.push(`${row[0]} in process: ${row[5]} of the single-core SIMD bound (goal ≥ 75%)`);
    for (const [key, totals] of coldTotals) {
      const [kind, name] = key.split('/');
      if (name !== uint8?.name) continue;
      const goal = kind === 'workerd' ? 150 : 600;
      const what = kind === 'workerd' ? 'fresh isolate → first prediction' : 'process start → first prediction';
      goals.push(`cold start ${kind}, uint8 MobileNetV2: ${range(totals)} ms ${what} (goal ≤ ${goal} ms) ${p50(totals) <= goal ? 'MET' : 'not met'}`);
    }
  } finally {
    bound?.dispose();
    for (const server of servers) await server.stop();
  }
  console.log('Goals (issue 13):');
  for (const line of goals) console.log(`  ${line}`);
  console.log("\nNote: on Cloudflare, performance.now() only advances across I/O (Spectre mitigation), so a deployed Worker's Server-Timing is coarse; local workerd and Node are exact.");
  console.log(`(bench ran ${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
  await rm(work, { recursive: true, force: true });
}

await main();
