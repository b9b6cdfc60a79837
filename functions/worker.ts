// Workers entry: the store is the R2 binding MODELS; the backend is wasm-SIMD started from
// a precompiled module (runtime/backend-workerd.ts). One runtime per isolate, made lazily.
import type { ExecutionContext, MessageBatch, Queue, R2Bucket } from '@cloudflare/workers-types';
import { WORKER_CONSUMER_LIMITS } from '../converter/consumer.ts';
import type { UploadEvent } from '../shared/bucket/uploads.ts';
import { handleUploadBatch } from './queue.ts';
import { R2Store } from '../shared/store/r2.ts';
import { createApp } from './app.ts';
import { startWorkerdBackend } from './runtime/backend-workerd.ts';
import { ModelRuntime, type WarmUpPolicy } from './runtime/runtime.ts';

export interface Env {
  MODELS: R2Bucket;
  /** Optional overrides (wrangler.toml [vars]). */
  MEMORY_BUDGET_MB?: string;
  INDEX_TTL_MS?: string;
  /** 'ready' (default), 'always' or 'never': see RuntimeOptions.warmUp. */
  WARM_UP?: string;
  MAX_BODY_BYTES?: string;
  MAX_BATCH?: string;
  MAX_ELEMENTS?: string;
  /** Admin API secret (wrangler secret put EDGEFLOW_ADMIN_TOKEN); absent → admin refused. */
  EDGEFLOW_ADMIN_TOKEN?: string;
  /** Producer binding of the uploads queue, and of its dead-letter queue. */
  UPLOAD_QUEUE?: Queue;
  UPLOAD_DLQ?: Queue;
  /** 'notifications': R2 event notifications send the message (deployed); else the upload route sends it (wrangler dev). */
  UPLOAD_EVENTS?: string;
  /** Bucket name put in the messages the route sends. */
  BUCKET_NAME?: string;
  MAX_UPLOAD_BYTES?: string;
  /** Largest model converted in the Worker, MiB of float32 weights (default 12). */
  MAX_CONVERT_MB?: string;
  /** Keep equal to max_retries of the queue consumer in wrangler.toml. */
  QUEUE_MAX_RETRIES?: string;
}

const num = (text: string | undefined) => (text === undefined || text === '' ? undefined : Number(text));

let app: ReturnType<typeof createApp> | null = null;
let runtime: ModelRuntime | null = null;
// Random values may only be drawn inside a handler in Workers: named on first use.
let isolate: string | null = null;

function appFor(env: Env): ReturnType<typeof createApp> {
  if (!app) {
    const budgetMb = num(env.MEMORY_BUDGET_MB);
    runtime = new ModelRuntime({
      store: new R2Store(env.MODELS, 'MODELS'),
      backend: startWorkerdBackend,
      memoryBudgetBytes: budgetMb === undefined ? undefined : budgetMb * 1024 * 1024,
      indexTtlMs: num(env.INDEX_TTL_MS),
      warmUp: env.WARM_UP === 'always' || env.WARM_UP === 'never' ? (env.WARM_UP as WarmUpPolicy) : 'ready',
    });
    const queue = env.UPLOAD_EVENTS === 'notifications' ? undefined : env.UPLOAD_QUEUE;
    const admin = {
      token: env.EDGEFLOW_ADMIN_TOKEN,
      maxUploadBytes: num(env.MAX_UPLOAD_BYTES),
      bucket: env.BUCKET_NAME ?? 'edgeflow-models',
      notify: queue && (async (event: UploadEvent) => void (await queue.send(event))),
      converter: queue ? 'sent to the upload queue' : 'waiting for the R2 event notification',
    };
    app = createApp({ runtime, platform: 'workerd', limits: { maxBodyBytes: num(env.MAX_BODY_BYTES), maxBatch: num(env.MAX_BATCH), maxElements: num(env.MAX_ELEMENTS) }, admin });
  }
  return app;
}

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    return appFor(env).fetch(request, env, ctx as unknown as Parameters<ReturnType<typeof createApp>["fetch"]>[2]);
  },

  /** Upload events (R2 notifications, or the route's in wrangler dev) → convert → publish. */
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    appFor(env);
    const shared = runtime!;
    const convertMb = num(env.MAX_CONVERT_MB);
    await handleUploadBatch(batch, {
      store: shared.store,
      ensureBackend: () => shared.ready(),
      owner: (isolate ??= `worker:${crypto.randomUUID().slice(0, 8)}`),
      limits: convertMb === undefined ? WORKER_CONSUMER_LIMITS : { ...WORKER_CONSUMER_LIMITS, maxFloat32Bytes: convertMb * 2 ** 20 },
      maxDeliveries: (num(env.QUEUE_MAX_RETRIES) ?? 5) + 1,
      deadLetter: env.UPLOAD_DLQ,
      onPublished: (name) => shared.invalidate(name),
      log: (line) => console.log(`edgeflow queue: ${line}`),
    });
  },
};
