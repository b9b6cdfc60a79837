// `edgeflow serve --store <folder | s3://bucket/prefix> [--port 8080]`: the edge app on Node
// (@hono/node-server, stock wasm backend), serving the models published in the store.
// Runs until SIGINT / SIGTERM. The server (Hono, TF.js) is imported only by a process that
// serves: a cluster primary (--workers > 1) forks its workers without loading it.
import type { BackendInfo, NodeServerOptions } from '../functions/node.ts';
import { DEFAULT_BATCH_TIMEOUT_MICROS, DEFAULT_INDEX_TTL_MS, DEFAULT_LEASE_MS, DEFAULT_LIMITS, DEFAULT_NODE_MEMORY_BUDGET_BYTES } from '../shared/options/serving.ts';
import { listAll } from '../shared/store/util.ts';
import { EdgeflowError } from '../shared/errors.ts';
import { openExistingStore } from '../shared/store/open.ts';
import { parseCommandLine } from './args.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { availableParallelism } from 'node:os';
import type { UploadWatcher } from './serve-watch.ts';
import type { ServeOptions } from './serve-flags.ts';
import { followPrimary, isClusterWorker, startCluster, tellPrimary } from './serve-cluster.ts';

export const HELP = `Usage: edgeflow serve --store <folder | s3://bucket/prefix> [options]

--store <store>         where models are published (a folder, or s3://bucket/prefix with the
                        usual AWS_* variables and AWS_ENDPOINT_URL for R2 / MinIO)
--port <n>              port to listen on (default 8080; 0 picks a free one)
--host <addr>           address to bind (default 127.0.0.1; 0.0.0.0 for every interface)
--memory-budget <MiB>   float32 weight bytes kept loaded before LRU eviction (default ${DEFAULT_NODE_MEMORY_BUDGET_BYTES / 2 ** 20})
--index-ttl <ms>        how long a model's index.json (versions, labels) is cached (default ${DEFAULT_INDEX_TTL_MS})
--warm-up <when>        ready (default: warm-up prediction on loads from GET .../ready), always, never
--max-body <bytes>      request body limit, 413 beyond (default ${DEFAULT_LIMITS.maxBodyBytes})
--max-batch <n>         largest batch per request (default ${DEFAULT_LIMITS.maxBatch})
--max-elements <n>      most tensor elements per request (default ${DEFAULT_LIMITS.maxElements})
--max-image-pixels <n>  largest image :classify / :regress decodes (width x height, read from
                        its header first), 413 beyond (default ${DEFAULT_LIMITS.maxImagePixels})
--watch                 also convert uploads in this process (polls uploads/ every 5 s, and at
                        once after each admin upload); without it, run \`edgeflow watch\`
--lease <duration>      with --watch: how long its claim on an upload lasts without a heartbeat
                        (default ${DEFAULT_LEASE_MS / 1000}s, at least 1s): another watcher takes over after it
--max-upload <bytes>    admin upload body limit, 413 beyond (default 100 MiB)
--workers <n>           serving processes sharing the port, each with its own wasm backend and
                        model cache (default: one per core, ${availableParallelism()} here); with --watch
                        the conversions run in the primary process, apart from serving
--max-in-flight <n>     predictions running or waiting per process; beyond: 503 with
                        Retry-After (default ${DEFAULT_LIMITS.maxInFlight})
--batch-max-size <n>    micro-batching: concurrent requests to one model version with the same
                        input shapes run as one batch of up to n rows (TF Serving max_batch_size;
                        a request's own rows count); default 1: off
--batch-timeout-us <µs> with --batch-max-size: longest a request waits for others before a
                        partial batch runs (batch_timeout_micros, default ${DEFAULT_BATCH_TIMEOUT_MICROS})
--batch-max-enqueued <n>  with --batch-max-size: batches waiting per model version before
                        requests are refused with 503 (max_enqueued_batches; default 0: no limit)

The admin API (/admin/...) is on when EDGEFLOW_ADMIN_TOKEN is set in the environment.
`;

/** startNodeServer, with a port in use or not ours to take said as such. */
async function listen(options: NodeServerOptions) {
  const [{ startNodeServer }, { quietTensorFlow }] = await Promise.all([import('../functions/node.ts'), import('./quiet.ts')]);
  quietTensorFlow();
  try {
    return await startNodeServer(options);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new EdgeflowError('unavailable', `port ${options.port} on ${options.hostname} is in use: stop what listens there or pick another --port (0 picks a free one)`);
    if (code === 'EACCES') throw new EdgeflowError('forbidden', `port ${options.port} on ${options.hostname} needs privileges: pick a port above 1023 with --port`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new EdgeflowError('bad_request', `--host ${options.hostname} is not an address of this machine`);
    throw error;
  }
}

export async function serveCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    HELP,
    {
      store: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'memory-budget': { type: 'string' },
      'index-ttl': { type: 'string' },
      'warm-up': { type: 'string' },
      'max-body': { type: 'string' },
      'max-batch': { type: 'string' },
      'max-elements': { type: 'string' },
      'max-image-pixels': { type: 'string' },
      watch: { type: 'boolean' },
      lease: { type: 'string' },
      'max-upload': { type: 'string' },
      workers: { type: 'string' },
      'max-in-flight': { type: 'string' },
      'batch-max-size': { type: 'string' },
      'batch-timeout-us': { type: 'string' },
      'batch-max-enqueued': { type: 'string' },
    },
    ['store'],
  );
  if (typeof parsed === 'number') return parsed;
  const workers = isClusterWorker() ? 1 : requestedWorkers(parsed.values.workers);
  if (workers > 1) return servePrimary(parsed.values, workers);
  const options = (await import('./serve-flags.ts')).parseServeFlags(parsed.values);
  return serveProcess(await openExistingStore(options.store), options);
}

/**
 * --workers as a primary reads it before the flags are checked, to fork at once: a whole number,
 * or one per core when absent; 1 for anything else, which the check then refuses by name.
 */
function requestedWorkers(text: string | undefined): number {
  if (text === undefined) return availableParallelism();
  return /^\d+$/.test(text) ? Number(text) : 1;
}

/**
 * Resolves on the first SIGINT / SIGTERM. Asked for before a process starts serving, so that a
 * stop that comes while it starts (a worker still importing TF.js) ends it cleanly once started.
 */
function stopRequested(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

/** Runs the watcher (if any) until `stop`, then lets its conversion in progress finish. */
async function runUntilStopped(watcher: UploadWatcher | undefined, stop: Promise<void>): Promise<void> {
  const stopped = new AbortController();
  const watching = watcher?.run(stopped.signal);
  await stop;
  stopped.abort();
  await watching;
}

async function printBanner(store: ObjectStore, url: string, backend: BackendInfo, workers: number, watching: boolean): Promise<void> {
  const names = [...new Set((await listAll(store, 'models/')).filter((o) => o.key.endsWith('/index.json')).map((o) => o.key.split('/')[1]!))];
  console.log(`edgeflow serving ${store.description} at ${url}`);
  console.log(`backend: ${backend.backend}${backend.simd ? ' with SIMD' : ' WITHOUT SIMD (2.5-3x slower)'} (${backend.binary}), ${workers} serving process${workers > 1 ? 'es' : ''}`);
  console.log(`models: ${names.length ? names.join(', ') : 'none published yet'}`);
  if (names[0]) console.log(`try:    curl ${url}/v1/models/${names[0]}/metadata`);
  console.log(
    `admin:  ${process.env.EDGEFLOW_ADMIN_TOKEN ? `on (Bearer EDGEFLOW_ADMIN_TOKEN)${watching ? ', uploads converted here' : ', uploads converted by `edgeflow watch`'}` : 'off (set EDGEFLOW_ADMIN_TOKEN to enable /admin)'}`,
  );
}

/**
 * --workers n > 1, in the primary: the serving workers, and the watcher apart from them. The
 * workers are forked first; the primary checks the flags and the store while they start, and
 * stops them if either is wrong (each worker would refuse the same flags).
 */
async function servePrimary(values: Record<string, unknown>, count: number): Promise<number> {
  const stop = stopRequested();
  let watcher: UploadWatcher | undefined;
  const cluster = startCluster(
    count,
    (message) => message.type === 'upload' && watcher?.kick(),
    (line) => console.error(`serve: ${line}`),
  );
  let options: ServeOptions;
  let store: ObjectStore;
  try {
    options = (await import('./serve-flags.ts')).parseServeFlags(values);
    store = await openExistingStore(options.store);
  } catch (error) {
    await cluster.close();
    throw error;
  }
  const workers = await cluster.started;
  if (options.watch) watcher = (await import('./serve-watch.ts')).uploadWatcher(store, (name) => workers.broadcast({ type: 'published', name }), options.leaseMs);
  const ready = (await (await fetch(`${workers.url}/v2/health/ready`)).json()) as { backend: BackendInfo };
  await printBanner(store, workers.url, ready.backend, options.workers, Boolean(watcher));
  await runUntilStopped(watcher, stop);
  await workers.close();
  return 0;
}

/** One serving process: the whole server (with the watcher when --watch), or a worker of servePrimary. */
async function serveProcess(store: ObjectStore, options: ServeOptions): Promise<number> {
  const stop = stopRequested();
  const inWorker = isClusterWorker();
  let server;
  let watcher: UploadWatcher | undefined;
  const notify = inWorker ? () => tellPrimary({ type: 'upload' }) : async () => watcher?.kick();
  try {
    server = await listen({
      store,
      port: options.port,
      hostname: options.hostname,
      memoryBudgetBytes: options.memoryBudgetBytes,
      indexTtlMs: options.indexTtlMs,
      warmUp: options.warmUp,
      batching: options.batching,
      limits: options.limits,
      admin: {
        token: process.env.EDGEFLOW_ADMIN_TOKEN || undefined,
        maxUploadBytes: options.maxUploadBytes,
        bucket: store.description,
        ...(options.watch ? { notify, converter: 'converted by this server (--watch)' } : { converter: 'waiting for `edgeflow watch` on this store' }),
      },
    });
    const runtime = server.runtime;
    if (inWorker) {
      followPrimary((message) => message.type === 'published' && runtime.invalidate(message.name));
      await tellPrimary({ type: 'listening', url: server.url });
    } else {
      if (options.watch)
        watcher = (await import('./serve-watch.ts')).uploadWatcher(
          store,
          (name) => runtime.invalidate(name),
          options.leaseMs,
          () => runtime.ready(),
        );
      await printBanner(store, server.url, await runtime.ready(), 1, Boolean(watcher));
    }
  } catch (error) {
    await server?.close();
    if (inWorker) {
      // The primary says it once, for every worker.
      await tellPrimary({ type: 'failed', message: (error as Error).message });
      process.exit(1);
    }
    throw error;
  }
  await runUntilStopped(watcher, stop);
  await server.close();
  // A worker's IPC channel to the primary would keep it running.
  if (inWorker) process.exit(0);
  return 0;
}
