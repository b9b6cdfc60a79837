// Workers entry: the store is the R2 binding MODELS; the backend is wasm-SIMD started from
// a precompiled module (runtime/backend-workerd.ts). One runtime per isolate, made lazily.
// The bindings' type (Env) is generated from wrangler.toml: worker-configuration.d.ts; the vars
// are parsed once by functions/worker-env.ts.
import type { ExecutionContext, MessageBatch } from '@cloudflare/workers-types';
import { WORKER_CONSUMER_LIMITS } from '../converter/consumer.ts';
import type { UploadEvent } from '../shared/bucket/uploads.ts';
import { handleUploadBatch } from './queue.ts';
import { R2Store } from '../shared/store/r2.ts';
import { createApp } from './app.ts';
import { startWorkerdBackend } from './runtime/backend-workerd.ts';
import { ModelRuntime } from './runtime/runtime.ts';
import { parseWorkerSettings, type WorkerEnv, type WorkerSettings } from './worker-env.ts';

let app: ReturnType<typeof createApp> | null = null;
let runtime: ModelRuntime | null = null;
let settings: WorkerSettings | null = null;
// Random values may only be drawn inside a handler in Workers: named on first use.
let isolate: string | null = null;

const STUCK_HINT =
  'if it stays queued, check that this Worker consumes the queue edgeflow-uploads (wrangler.toml [[queues.consumers]]; `npx wrangler queues info edgeflow-uploads`) and read its log with `npx wrangler tail`';

function appFor(env: WorkerEnv): ReturnType<typeof createApp> {
  if (!app) {
    const parsed = parseWorkerSettings(env, WORKER_CONSUMER_LIMITS);
    runtime = new ModelRuntime({
      store: new R2Store(env.MODELS, 'MODELS'),
      backend: startWorkerdBackend,
      memoryBudgetBytes: parsed.memoryBudgetBytes,
      indexTtlMs: parsed.indexTtlMs,
      warmUp: parsed.warmUp,
      batching: parsed.batching,
    });
    // Always sent by the route: wrangler dev has no R2 event notifications, and a deployment
    // may have none configured; a second message from a notification finds the upload done.
    const queue = env.UPLOAD_QUEUE as WorkerEnv['UPLOAD_QUEUE'] | undefined;
    const admin = {
      token: env.EDGEFLOW_ADMIN_TOKEN,
      maxUploadBytes: parsed.maxUploadBytes,
      bucket: parsed.bucket,
      notify: queue && (async (event: UploadEvent) => void (await queue.send(event))),
      converter: queue ? 'sent to the upload queue' : 'waiting for the R2 event notification (no UPLOAD_QUEUE binding)',
      requeueAfterMs: parsed.requeueAfterMs,
      stuckHint: STUCK_HINT,
    };
    app = createApp({ runtime, platform: 'workerd', limits: parsed.limits, admin });
    settings = parsed;
  }
  return app;
}

export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Response | Promise<Response> {
    let handler: ReturnType<typeof createApp>;
    try {
      handler = appFor(env);
    } catch (error) {
      console.error(`edgeflow: ${(error as Error).message}`);
      return Response.json({ error: (error as Error).message }, { status: 503 });
    }
    return handler.fetch(request, env, ctx as unknown as Parameters<ReturnType<typeof createApp>['fetch']>[2]);
  },

  /** Upload events (from the upload route, or R2 notifications) → convert → publish. */
  async queue(batch: MessageBatch<unknown>, env: WorkerEnv): Promise<void> {
    appFor(env);
    const shared = runtime!;
    await handleUploadBatch(batch, {
      store: shared.store,
      ensureBackend: () => shared.ready(),
      owner: (isolate ??= `worker:${crypto.randomUUID().slice(0, 8)}`),
      limits: { ...WORKER_CONSUMER_LIMITS, maxFloat32Bytes: settings!.maxConvertBytes },
      maxDeliveries: settings!.maxDeliveries,
      deadLetter: env.UPLOAD_DLQ,
      onPublished: (name) => shared.invalidate(name),
      log: (line) => console.log(`edgeflow queue: ${line}`),
    });
  },
};
