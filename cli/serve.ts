// `edgeflow serve --store <folder | s3://bucket/prefix> [--port 8080]`: the edge app on Node
// (@hono/node-server, stock wasm backend), serving the models published in the store.
// Runs until SIGINT / SIGTERM.
import { startNodeServer } from '../functions/node.ts';
import { DEFAULT_LIMITS } from '../functions/limits.ts';
import { DEFAULT_INDEX_TTL_MS, DEFAULT_NODE_MEMORY_BUDGET_BYTES } from '../functions/runtime/runtime.ts';
import { listAll } from '../shared/store/util.ts';
import { openStore } from '../shared/store/open.ts';
import { UploadWatcher } from '../converter/watcher.ts';
import { describeOutcome } from './watch.ts';
import { parseCommandLine } from './args.ts';

const HELP = `Usage: edgeflow serve --store <folder | s3://bucket/prefix> [options]

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
--watch                 also convert uploads in this process (polls uploads/ every 5 s, and at
                        once after each admin upload); without it, run \`edgeflow watch\`
--max-upload <bytes>    admin upload body limit, 413 beyond (default 100 MiB)

The admin API (/admin/...) is on when EDGEFLOW_ADMIN_TOKEN is set in the environment.
`;

const optionalNumber = (text: string | undefined, flag: string): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} needs a non-negative number, got ${JSON.stringify(text)}`);
  return n;
};

export async function serveCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    'serve',
    HELP,
    argv,
    {
      store: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      'memory-budget': { type: 'string' },
      'index-ttl': { type: 'string' },
      'warm-up': { type: 'string', default: 'ready' },
      'max-body': { type: 'string' },
      'max-batch': { type: 'string' },
      'max-elements': { type: 'string' },
      watch: { type: 'boolean', default: false },
      'max-upload': { type: 'string' },
    },
    ['store'],
  );
  if (typeof parsed === 'number') return parsed;
  const values = { ...parsed.values, store: parsed.values.store! };
  let server;
  let watcher: UploadWatcher | undefined;
  try {
    const warmUp = values['warm-up'];
    if (warmUp !== 'ready' && warmUp !== 'always' && warmUp !== 'never') throw new Error(`--warm-up must be ready, always or never, got ${JSON.stringify(warmUp)}`);
    const store = openStore(values.store);
    const budget = optionalNumber(values['memory-budget'], '--memory-budget');
    server = await startNodeServer({
      store,
      port: optionalNumber(values.port, '--port'),
      hostname: values.host,
      memoryBudgetBytes: budget === undefined ? undefined : budget * 2 ** 20,
      indexTtlMs: optionalNumber(values['index-ttl'], '--index-ttl'),
      warmUp,
      limits: {
        maxBodyBytes: optionalNumber(values['max-body'], '--max-body'),
        maxBatch: optionalNumber(values['max-batch'], '--max-batch'),
        maxElements: optionalNumber(values['max-elements'], '--max-elements'),
      },
      admin: {
        token: process.env.EDGEFLOW_ADMIN_TOKEN || undefined,
        maxUploadBytes: optionalNumber(values['max-upload'], '--max-upload'),
        bucket: store.description,
        ...(values.watch ? { notify: async () => watcher?.kick(), converter: 'converted by this server (--watch)' } : { converter: 'waiting for `edgeflow watch` on this store' }),
      },
    });
    if (values.watch) {
      const runtime = server.runtime;
      watcher = new UploadWatcher({
        store,
        owner: `serve:${process.pid}`,
        intervalMs: 5000,
        ensureBackend: () => runtime.ready(),
        onPublished: (name) => runtime.invalidate(name),
        onOutcome: (outcome) => outcome.kind !== 'ignored' && console.log(`watch: ${describeOutcome(outcome)}`),
      });
    }
    const backend = await server.runtime.ready();
    const names = [...new Set((await listAll(store, 'models/')).filter((o) => o.key.endsWith('/index.json')).map((o) => o.key.split('/')[1]!))];
    console.log(`edgeflow serving ${store.description} at ${server.url}`);
    console.log(`backend: ${backend.backend}${backend.simd ? ' with SIMD' : ' WITHOUT SIMD (2.5-3x slower)'} (${backend.binary})`);
    console.log(`models: ${names.length ? names.join(', ') : 'none published yet'}`);
    if (names[0]) console.log(`try:    curl ${server.url}/v1/models/${names[0]}/metadata`);
    console.log(
      `admin:  ${process.env.EDGEFLOW_ADMIN_TOKEN ? `on (Bearer EDGEFLOW_ADMIN_TOKEN)${watcher ? ', uploads converted here' : ', uploads converted by `edgeflow watch`'}` : 'off (set EDGEFLOW_ADMIN_TOKEN to enable /admin)'}`,
    );
  } catch (error) {
    console.error(`edgeflow serve: ${(error as Error).message}`);
    await server?.close();
    return 1;
  }
  const stopped = new AbortController();
  const watching = watcher?.run(stopped.signal);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  stopped.abort();
  await watching;
  await server.close();
  return 0;
}
