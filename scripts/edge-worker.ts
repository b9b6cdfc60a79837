// Builds the edge Worker exactly as `wrangler deploy` would (dry run, minified) and runs it
// in workerd through Miniflare, with the MODELS R2 binding. Shared by the worker tests and
// bench/serve.ts (test/helpers/workerd.ts builds small test workers).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Miniflare } from 'miniflare';
import type { R2Bucket } from '@cloudflare/workers-types';
import { R2Store } from '../shared/store/r2.ts';

export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

export interface WorkerBundle {
  dir: string;
  script: string;
  /** Every uploaded module (script + wasm), bytes and gzip bytes. */
  bytes: number;
  gzipBytes: number;
}

/** `wrangler deploy --dry-run --outdir <dir> --minify`: the bundle a deploy would upload. */
export async function buildWorker(outdir = path.join(repoRoot, '.build', `worker-${process.pid}`)): Promise<WorkerBundle> {
  await fs.rm(outdir, { recursive: true, force: true });
  await promisify(execFile)(process.execPath, [path.join(repoRoot, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', outdir, '--minify'], {
    cwd: repoRoot,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const files = (await fs.readdir(outdir)).filter((f) => f.endsWith('.js') || f.endsWith('.wasm'));
  let bytes = 0;
  let gzipBytes = 0;
  for (const file of files) {
    const body = await fs.readFile(path.join(outdir, file));
    bytes += body.byteLength;
    gzipBytes += gzipSync(body, { level: 9 }).byteLength;
  }
  return { dir: outdir, script: path.join(outdir, 'worker.js'), bytes, gzipBytes };
}

export interface RunningWorker {
  url: string;
  /** The bucket as an ObjectStore, for publishing models into it from Node. */
  store: R2Store;
  fetch(pathname: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

export interface StartOptions {
  /** Folder persisting R2 across restarts (a fresh isolate reading the same bucket); memory when absent. */
  r2Persist?: string;
  vars?: Record<string, string>;
  /** Binds UPLOAD_QUEUE and consumes it in the same Worker (as wrangler.toml), so admin uploads convert. */
  uploadQueue?: boolean;
}

export async function startWorker(bundle: WorkerBundle, options: StartOptions = {}): Promise<RunningWorker> {
  const mf = new Miniflare({
    modules: true,
    scriptPath: bundle.script,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-01',
    r2Buckets: ['MODELS'],
    ...(options.r2Persist ? { r2Persist: options.r2Persist } : {}),
    bindings: { INDEX_TTL_MS: '0', ...options.vars },
    ...(options.uploadQueue ? { queueProducers: { UPLOAD_QUEUE: 'edgeflow-uploads' }, queueConsumers: { 'edgeflow-uploads': { maxBatchSize: 1, maxBatchTimeout: 1, maxRetries: 2 } } } : {}),
    host: '127.0.0.1',
    port: 0,
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const bucket = (await mf.getR2Bucket('MODELS')) as unknown as R2Bucket;
  return {
    url,
    store: new R2Store(bucket, 'MODELS'),
    fetch: (pathname, init) => fetch(`${url}${pathname}`, init),
    dispose: () => mf.dispose(),
  };
}
