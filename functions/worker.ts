// Workers entry: the store is the R2 binding MODELS; the backend is wasm-SIMD started from
// a precompiled module (runtime/backend-workerd.ts). One runtime per isolate, made lazily.
import type { ExecutionContext, R2Bucket } from '@cloudflare/workers-types';
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
}

const num = (text: string | undefined) => (text === undefined || text === '' ? undefined : Number(text));

let app: ReturnType<typeof createApp> | null = null;

function appFor(env: Env): ReturnType<typeof createApp> {
  if (!app) {
    const budgetMb = num(env.MEMORY_BUDGET_MB);
    const runtime = new ModelRuntime({
      store: new R2Store(env.MODELS, 'MODELS'),
      backend: startWorkerdBackend,
      memoryBudgetBytes: budgetMb === undefined ? undefined : budgetMb * 1024 * 1024,
      indexTtlMs: num(env.INDEX_TTL_MS),
      warmUp: env.WARM_UP === 'always' || env.WARM_UP === 'never' ? (env.WARM_UP as WarmUpPolicy) : 'ready',
    });
    app = createApp({ runtime, platform: 'workerd', limits: { maxBodyBytes: num(env.MAX_BODY_BYTES), maxBatch: num(env.MAX_BATCH), maxElements: num(env.MAX_ELEMENTS) } });
  }
  return app;
}

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    return appFor(env).fetch(request, env, ctx as unknown as Parameters<ReturnType<typeof createApp>["fetch"]>[2]);
  },
};
