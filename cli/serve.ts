// `edgeflow serve --store <folder | s3://bucket/prefix> [--port 8080]`: the edge app on Node
// (@hono/node-server, stock wasm backend), serving the models published in the store.
// Runs until SIGINT / SIGTERM.
import { startNodeServer } from '../functions/node.ts';
import { DEFAULT_LIMITS } from '../functions/limits.ts';
import { DEFAULT_INDEX_TTL_MS, DEFAULT_NODE_MEMORY_BUDGET_BYTES } from '../functions/runtime/runtime.ts';
import { listAll } from '../shared/store/util.ts';
import { z } from 'zod';
import { EdgeflowError } from '../shared/errors.ts';
import { openExistingStore } from '../shared/store/open.ts';
import { UploadWatcher } from '../converter/watcher.ts';
import { describeOutcome } from './watch.ts';
import { parseCommandLine } from './args.ts';

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
--watch                 also convert uploads in this process (polls uploads/ every 5 s, and at
                        once after each admin upload); without it, run \`edgeflow watch\`
--max-upload <bytes>    admin upload body limit, 413 beyond (default 100 MiB)

The admin API (/admin/...) is on when EDGEFLOW_ADMIN_TOKEN is set in the environment.
`;

/** A flag given as text that must be a number ≥ 0. */
const nonNegative = (flag: string) =>
  z
    .string()
    .optional()
    .transform((text, context) => {
      if (text === undefined) return undefined;
      const n = Number(text);
      if (!Number.isFinite(n) || n < 0) {
        context.addIssue({ code: 'custom', message: `${flag} needs a non-negative number, got ${JSON.stringify(text)}` });
        return z.NEVER;
      }
      return n;
    });

/** The serve flags as parseArgs gives them, with their defaults, to the server's options. */
export const ServeFlags = z
  .object({
    store: z.string(),
    port: z
      .string()
      .default('8080')
      .transform((text, context) => {
        const port = Number(text);
        if (text.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
          context.addIssue({ code: 'custom', message: `--port needs a port number 0-65535 (0 picks a free one), got ${JSON.stringify(text)}` });
          return z.NEVER;
        }
        return port;
      }),
    host: z.string().default('127.0.0.1'),
    'memory-budget': nonNegative('--memory-budget'),
    'index-ttl': nonNegative('--index-ttl'),
    'warm-up': z.enum(['ready', 'always', 'never'], { error: (issue) => `--warm-up must be ready, always or never, got ${JSON.stringify(issue.input)}` }).default('ready'),
    'max-body': nonNegative('--max-body'),
    'max-batch': nonNegative('--max-batch'),
    'max-elements': nonNegative('--max-elements'),
    watch: z.boolean().default(false),
    'max-upload': nonNegative('--max-upload'),
  })
  .transform((flags) => ({
    store: flags.store,
    port: flags.port,
    hostname: flags.host,
    memoryBudgetBytes: flags['memory-budget'] === undefined ? undefined : flags['memory-budget'] * 2 ** 20,
    indexTtlMs: flags['index-ttl'],
    warmUp: flags['warm-up'],
    limits: { maxBodyBytes: flags['max-body'], maxBatch: flags['max-batch'], maxElements: flags['max-elements'] },
    watch: flags.watch,
    maxUploadBytes: flags['max-upload'],
  }));
export type ServeOptions = z.output<typeof ServeFlags>;

export function parseServeFlags(values: Record<string, unknown>): ServeOptions {
  const parsed = ServeFlags.safeParse(values);
  if (!parsed.success) throw new EdgeflowError('bad_request', parsed.error.issues[0]!.message);
  return parsed.data;
}

/** startNodeServer, with a port in use or not ours to take said as such. */
async function listen(options: Parameters<typeof startNodeServer>[0]) {
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
      watch: { type: 'boolean' },
      'max-upload': { type: 'string' },
    },
    ['store'],
  );
  if (typeof parsed === 'number') return parsed;
  const options = parseServeFlags(parsed.values);
  const store = await openExistingStore(options.store);
  let server;
  let watcher: UploadWatcher | undefined;
  try {
    server = await listen({
      store,
      port: options.port,
      hostname: options.hostname,
      memoryBudgetBytes: options.memoryBudgetBytes,
      indexTtlMs: options.indexTtlMs,
      warmUp: options.warmUp,
      limits: options.limits,
      admin: {
        token: process.env.EDGEFLOW_ADMIN_TOKEN || undefined,
        maxUploadBytes: options.maxUploadBytes,
        bucket: store.description,
        ...(options.watch ? { notify: async () => watcher?.kick(), converter: 'converted by this server (--watch)' } : { converter: 'waiting for `edgeflow watch` on this store' }),
      },
    });
    if (options.watch) {
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
    await server?.close();
    throw error;
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
