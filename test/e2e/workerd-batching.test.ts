// Micro-batching inside workerd (the deploy bundle in Miniflare, BATCH_MAX_SIZE set): concurrent
// requests to one isolate are merged, a batch started by one request (by filling it, or by its
// timer) answers the others, and no waiting request is cancelled as hung. Every answer must equal,
// byte for byte, the answer of the same bundle with batching off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertModel, publishConverted } from '../../converter/convert.ts';
import { buildMnistCnn } from '../../scripts/demo-models.ts';
import { buildWorker, startWorker, type RunningWorker } from '../../scripts/edge-worker.ts';
import { loadMnistDigits, sampleDigits } from '../helpers/mnist.ts';

const REQUEST_TIMEOUT_MS = 20_000;
let off: RunningWorker;
let on: RunningWorker;
let bundleDir = '';

beforeAll(async () => {
  await useNodeBackend();
  const bundle = await buildWorker();
  bundleDir = bundle.dir;
  off = await startWorker(bundle);
  // A long timeout, so batches form on this loaded machine; 8 rows fill one.
  on = await startWorker(bundle, { vars: { BATCH_MAX_SIZE: '8', BATCH_TIMEOUT_US: '30000' } });
  // Converted once: a conversion picks its serving runtime by timing, and two could differ in the last bit.
  const converted = await convertModel(await buildMnistCnn(), { name: 'mnist-cnn', quantize: 'uint8', samples: 4 });
  for (const worker of [off, on]) await publishConverted(worker.store, converted, { name: 'mnist-cnn' });
}, 180_000);

afterAll(async () => {
  await Promise.all([off?.dispose(), on?.dispose()]);
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

/** Request bodies of real digits, `rows[i]` digits each (28x28x1 nested rows). */
function bodies(rows: number[]): string[] {
  const { pixels } = sampleDigits(
    loadMnistDigits(),
    rows.reduce((a, b) => a + b, 0),
  );
  let at = 0;
  return rows.map((n) => {
    const instances = Array.from({ length: n }, () => {
      const image = Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [pixels[at * 784 + y * 28 + x]!]));
      at++;
      return image;
    });
    return JSON.stringify({ instances });
  });
}

async function predict(worker: RunningWorker, body: string): Promise<{ status: number; body: string }> {
  try {
    const response = await worker.fetch('/v1/models/mnist-cnn:predict', { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { status: 0, body: `no answer (hung?): ${(error as Error).message}` };
  }
}

const batching = async () =>
  ((await (await on.fetch('/v2')).json()) as { edgeflow: { models: { batching: { mergedRuns: number; mergedRequests: number; reruns: number } } } }).edgeflow.models.batching;

/** Sends every body to `on` at once and each to `off` alone; the answers must match. */
async function expectSameAnswers(sent: string[]): Promise<void> {
  const batched = await Promise.all(sent.map((body) => predict(on, body)));
  for (const [i, body] of sent.entries()) {
    const alone = await predict(off, body);
    expect(alone.status, alone.body).toBe(200);
    expect(batched[i], `request ${i}`).toEqual(alone);
  }
}

describe('workerd: micro-batching', () => {
  it('48 concurrent requests of 1-3 real digits: merged, none hung, each answer equal to the unbatched one', async () => {
    await predict(on, bodies([1])[0]!); // loads the model
    const before = await batching();
    await expectSameAnswers(bodies(Array.from({ length: 48 }, (_, i) => 1 + (i % 3))));
    const after = await batching();
    expect(after.mergedRuns - before.mergedRuns).toBeGreaterThanOrEqual(2);
    expect(after.mergedRequests - before.mergedRequests).toBeGreaterThanOrEqual(8);
    expect(after.reruns).toBe(0);
  });

  it('a partial batch run by the first request timer answers the requests that joined it', async () => {
    const before = await batching();
    await expectSameAnswers(bodies([1, 2, 1]));
    const after = await batching();
    expect(after.mergedRequests - before.mergedRequests).toBeGreaterThanOrEqual(2);
  });

  it('malformed bodies among batched requests are refused alone (400); the others answer', async () => {
    const sent = bodies([1, 1, 1, 1, 1, 1]);
    const results = await Promise.all([...sent.map((body) => predict(on, body)), predict(on, '{"instances": ['), predict(on, '{"instances": [[1, 2]]}')]);
    expect(results.slice(0, sent.length).map((r) => r.status)).toEqual(sent.map(() => 200));
    expect(results.slice(sent.length).map((r) => r.status)).toEqual([400, 400]);
  });
});
