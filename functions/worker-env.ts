// The Worker's settings: its string vars (wrangler.toml [vars], `--var`, dashboard), parsed
// once with their defaults by one schema; a bad value is an error naming the var. The
// converter's default size limit comes from the entry (converter/ is the entry's to import).
import * as z from 'zod';
import { describeZodError, EdgeflowError } from '../shared/errors.ts';
import { DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_REQUEUE_AFTER_MS } from './routes/admin.ts';
import type { BatchingOptions } from './runtime/batcher.ts';
import { DEFAULT_BATCH_TIMEOUT_MICROS, DEFAULT_INDEX_TTL_MS, DEFAULT_LIMITS, DEFAULT_MEMORY_BUDGET_BYTES } from '../shared/options/serving.ts';

/** The bindings: generated from wrangler.toml (worker-configuration.d.ts), plus the admin secret. */
export type WorkerEnv = Env & {
  /** Admin API secret (wrangler secret put EDGEFLOW_ADMIN_TOKEN); absent → admin refused. */
  EDGEFLOW_ADMIN_TOKEN?: string;
};

/** A var holding a number ≥ min; absent or '' → the default. */
const number = (fallback: number, min = 0) =>
  z.preprocess(
    (value) => (value === undefined || value === '' ? undefined : typeof value === 'string' ? value.trim() : value),
    z
      .string()
      .regex(/^\d+(\.\d+)?$/, 'a number is required')
      .transform(Number)
      .pipe(z.number().min(min))
      .optional()
      .default(fallback),
  );

/** A var holding a whole number ≥ min; absent or '' → the default. */
const whole = (fallback: number, min = 0) => number(fallback, min).refine(Number.isInteger, 'a whole number is required');

const MiB = 2 ** 20;

/** The vars' schema; the MAX_CONVERT_MB default from the converter's limits (WORKER_CONSUMER_LIMITS). */
export const workerVars = (converter: { maxFloat32Bytes: number }) =>
  z.object({
    MEMORY_BUDGET_MB: number(DEFAULT_MEMORY_BUDGET_BYTES / MiB, 1),
    INDEX_TTL_MS: number(DEFAULT_INDEX_TTL_MS),
    WARM_UP: z.preprocess((value) => (value === '' ? undefined : value), z.enum(['ready', 'always', 'never']).optional().default('ready')),
    MAX_BODY_BYTES: number(DEFAULT_LIMITS.maxBodyBytes, 1),
    MAX_BATCH: number(DEFAULT_LIMITS.maxBatch, 1),
    MAX_ELEMENTS: number(DEFAULT_LIMITS.maxElements, 1),
    MAX_IN_FLIGHT: number(DEFAULT_LIMITS.maxInFlight, 1),
    MAX_IMAGE_PIXELS: number(DEFAULT_LIMITS.maxImagePixels, 1),
    BUCKET_NAME: z.string().min(1).optional().default('edgeflow-models'),
    MAX_UPLOAD_BYTES: number(DEFAULT_MAX_UPLOAD_BYTES, 1),
    MAX_CONVERT_MB: number(converter.maxFloat32Bytes / MiB, 0),
    QUEUE_MAX_RETRIES: number(5, 0),
    UPLOAD_REQUEUE_AFTER_MS: number(DEFAULT_REQUEUE_AFTER_MS, 0),
    BATCH_MAX_SIZE: whole(1, 1),
    BATCH_TIMEOUT_US: number(DEFAULT_BATCH_TIMEOUT_MICROS, 0),
    BATCH_MAX_ENQUEUED: whole(0, 0),
  });

export interface WorkerSettings {
  memoryBudgetBytes: number;
  indexTtlMs: number;
  warmUp: 'ready' | 'always' | 'never';
  limits: { maxBodyBytes: number; maxBatch: number; maxElements: number; maxInFlight: number; maxImagePixels: number };
  bucket: string;
  maxUploadBytes: number;
  maxConvertBytes: number;
  /** Deliveries of one message before a transient failure is recorded as failed. */
  maxDeliveries: number;
  requeueAfterMs: number;
  /** Micro-batching (BATCH_MAX_SIZE ≥ 2); undefined: off. */
  batching?: BatchingOptions;
}

/** The settings of these bindings; a bad value throws naming the var and the problem. */
export function parseWorkerSettings(env: Partial<Record<keyof z.input<ReturnType<typeof workerVars>>, unknown>>, converter: { maxFloat32Bytes: number }): WorkerSettings {
  const parsed = workerVars(converter).safeParse(env);
  if (!parsed.success) throw new EdgeflowError('unavailable', `the Worker's vars (wrangler.toml [vars]) are invalid: ${describeZodError(parsed.error)}`);
  const vars = parsed.data;
  return {
    memoryBudgetBytes: vars.MEMORY_BUDGET_MB * MiB,
    indexTtlMs: vars.INDEX_TTL_MS,
    warmUp: vars.WARM_UP,
    limits: { maxBodyBytes: vars.MAX_BODY_BYTES, maxBatch: vars.MAX_BATCH, maxElements: vars.MAX_ELEMENTS, maxInFlight: vars.MAX_IN_FLIGHT, maxImagePixels: vars.MAX_IMAGE_PIXELS },
    bucket: vars.BUCKET_NAME,
    maxUploadBytes: vars.MAX_UPLOAD_BYTES,
    maxConvertBytes: vars.MAX_CONVERT_MB * MiB,
    maxDeliveries: vars.QUEUE_MAX_RETRIES + 1,
    requeueAfterMs: vars.UPLOAD_REQUEUE_AFTER_MS,
    batching: vars.BATCH_MAX_SIZE > 1 ? { maxBatchSize: vars.BATCH_MAX_SIZE, batchTimeoutMicros: vars.BATCH_TIMEOUT_US, maxEnqueuedBatches: vars.BATCH_MAX_ENQUEUED } : undefined,
  };
}
