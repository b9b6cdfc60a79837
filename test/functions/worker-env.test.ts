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
});
