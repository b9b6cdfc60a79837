// The Worker's vars parsed by one schema (functions/worker-env.ts): defaults when absent or
// empty, numbers from strings, and a bad value refused naming the var.
import { describe, expect, it } from 'vitest';
import { WORKER_CONSUMER_LIMITS } from '../../converter/consumer.ts';
import { parseWorkerSettings as parse } from '../../functions/worker-env.ts';

const parseWorkerSettings = (env: Record<string, string>) => parse(env, WORKER_CONSUMER_LIMITS);

describe('parseWorkerSettings', () => {
  it('defaults for absent or empty vars', () => {
    expect(parseWorkerSettings({ MAX_BATCH: '' })).toEqual({
      memoryBudgetBytes: 24 * 2 ** 20,
      indexTtlMs: 5000,
      warmUp: 'ready',
      limits: { maxBodyBytes: 8 * 2 ** 20, maxBatch: 64, maxElements: 2 * 2 ** 20, maxInFlight: 64, maxImagePixels: 4_000_000 },
      bucket: 'edgeflow-models',
      maxUploadBytes: 100 * 2 ** 20,
      maxConvertBytes: 12 * 2 ** 20,
      maxDeliveries: 6,
      requeueAfterMs: 60_000,
    });
  });

  it('the values of wrangler.toml-style strings', () => {
    const settings = parseWorkerSettings({
      MEMORY_BUDGET_MB: '64',
      INDEX_TTL_MS: '0',
      WARM_UP: 'never',
      MAX_ELEMENTS: '400000',
      MAX_IMAGE_PIXELS: '1000000',
      MAX_CONVERT_MB: '4',
      QUEUE_MAX_RETRIES: '2',
      UPLOAD_REQUEUE_AFTER_MS: ' 30000 ',
      BUCKET_NAME: 'b',
    });
    expect(settings).toMatchObject({
      memoryBudgetBytes: 64 * 2 ** 20,
      indexTtlMs: 0,
      warmUp: 'never',
      limits: { maxElements: 400000, maxImagePixels: 1_000_000 },
      maxConvertBytes: 4 * 2 ** 20,
      maxDeliveries: 3,
      requeueAfterMs: 30000,
      bucket: 'b',
    });
  });

  it('a bad value is an error naming the var', () => {
    expect(() => parseWorkerSettings({ MEMORY_BUDGET_MB: '24MB' })).toThrow(/MEMORY_BUDGET_MB: a number is required/);
    expect(() => parseWorkerSettings({ MAX_BATCH: '0' })).toThrow(/MAX_BATCH: /);
    expect(() => parseWorkerSettings({ WARM_UP: 'sometimes' })).toThrow(/WARM_UP: /);
    expect(() => parseWorkerSettings({ MAX_IMAGE_PIXELS: '4MP' })).toThrow(/MAX_IMAGE_PIXELS: a number is required/);
  });

  it('micro-batching: off by default and at BATCH_MAX_SIZE 1, on from 2, bad values named', () => {
    expect(parseWorkerSettings({}).batching).toBeUndefined();
    expect(parseWorkerSettings({ BATCH_MAX_SIZE: '1', BATCH_TIMEOUT_US: '500' }).batching).toBeUndefined();
    expect(parseWorkerSettings({ BATCH_MAX_SIZE: '32' }).batching).toEqual({ maxBatchSize: 32, batchTimeoutMicros: 1000, maxEnqueuedBatches: 0 });
    expect(parseWorkerSettings({ BATCH_MAX_SIZE: '8', BATCH_TIMEOUT_US: '250', BATCH_MAX_ENQUEUED: '4' }).batching).toEqual({ maxBatchSize: 8, batchTimeoutMicros: 250, maxEnqueuedBatches: 4 });
    expect(() => parseWorkerSettings({ BATCH_MAX_SIZE: '0' })).toThrow(/BATCH_MAX_SIZE: /);
    expect(() => parseWorkerSettings({ BATCH_MAX_SIZE: '2.5' })).toThrow(/BATCH_MAX_SIZE: a whole number is required/);
    expect(() => parseWorkerSettings({ BATCH_TIMEOUT_US: '1ms' })).toThrow(/BATCH_TIMEOUT_US: a number is required/);
    expect(() => parseWorkerSettings({ BATCH_MAX_ENQUEUED: '-1' })).toThrow(/BATCH_MAX_ENQUEUED: /);
  });
});
