// Node entry: the same app on @hono/node-server, the store from openStore (folder or
// s3://), the stock wasm backend. Used by `edgeflow serve` and the benchmarks.
import { serve, type ServerType } from '@hono/node-server';
import type { ObjectStore } from '../shared/store/types.ts';
import { createApp } from './app.ts';
import type { Limits } from './limits.ts';
import type { AdminOptions } from './routes/admin.ts';
import { startNodeBackend } from './runtime/backend-node.ts';
import type { BatchingOptions } from './runtime/batcher.ts';
import { ModelRuntime, type WarmUpPolicy } from './runtime/runtime.ts';
import { DEFAULT_NODE_MEMORY_BUDGET_BYTES } from '../shared/options/serving.ts';

// The Node side's public face beside the server: what the CLI needs to describe and start it.
export type { BackendInfo } from './runtime/backend.ts';
export { startNodeBackend } from './runtime/backend-node.ts';
export type { BatchingOptions } from './runtime/batcher.ts';

export interface NodeServerOptions {
  store: ObjectStore;
  port?: number;
  hostname?: string;
  memoryBudgetBytes?: number;
  indexTtlMs?: number;
  warmUp?: WarmUpPolicy;
  /** Micro-batching of concurrent requests to one model version; absent: off. */
  batching?: BatchingOptions;
  limits?: Partial<Limits>;
  /** Admin API: token (EDGEFLOW_ADMIN_TOKEN), and notify to wake an in-process watcher. */
  admin?: AdminOptions;
}

export interface NodeServer {
  url: string;
  port: number;
  runtime: ModelRuntime;
  close(): Promise<void>;
}

export function createNodeApp(options: NodeServerOptions) {
  const runtime = new ModelRuntime({
    store: options.store,
    backend: startNodeBackend,
    memoryBudgetBytes: options.memoryBudgetBytes ?? DEFAULT_NODE_MEMORY_BUDGET_BYTES,
    indexTtlMs: options.indexTtlMs,
    warmUp: options.warmUp,
    batching: options.batching,
  });
  return { app: createApp({ runtime, platform: 'node', limits: options.limits, admin: options.admin }), runtime };
}

export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const { app, runtime } = createNodeApp(options);
  const hostname = options.hostname ?? '127.0.0.1';
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 8080, hostname }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8080);
  return {
    url: `http://${hostname}:${port}`,
    port,
    runtime,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
