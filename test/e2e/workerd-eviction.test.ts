// The Worker inside workerd (Miniflare) under eviction: three models rotating under a memory
// budget that holds one, index.json refreshed all through (INDEX_TTL_MS=2), a burst of
// concurrent predictions with some malformed bodies among them. Every answer must be 200 with the model's own prediction (never a
// disposed model, never a request hung on another request's I/O), every model must still answer
// afterwards, and the idle isolate must hold no more than its budget.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { rm } from 'node:fs/promises';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import type { FileSet } from '../../converter/model.ts';
import { modelFiles } from '../../models/train/save.ts';
import { buildWorker, startWorker, type RunningWorker } from '../../scripts/edge-worker.ts';
import { maxAbsDiff, stockPredict, testImages } from '../helpers/reference.ts';
import { fixedValues } from '../helpers/tiny-models.ts';

const MODELS = ['rot-a', 'rot-b', 'rot-c'];
const SIZE = 12;
const REQUESTS = 300;
const CONCURRENCY = 32;
/** Every BAD_EVERY-th request sends a malformed body: 400, and a load it started must not die with it. */
const BAD_EVERY = 25;
/** A request still unanswered after this is counted as hung (a cold load takes milliseconds here). */
const REQUEST_TIMEOUT_MS = 10_000;

/** Conv → Flatten → Dense(360) → Dense(3): about 0.58 MB of float32 weights, so a 1 MB budget holds one. */
async function rotatingModel(seed: number): Promise<FileSet> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [SIZE, SIZE, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 360, activation: 'relu' }),
      tfl.layers.dense({ units: 3, activation: 'softmax' }),
    ],
  });
  model.setWeights(
    model.weights.map((w, i) =>
      tf.tensor(
        fixedValues(
          w.shape.reduce((a: number, b) => a * (b ?? 1), 1),
          seed * 10 + i + 1,
        ),
        w.shape as number[],
      ),
    ),
  );
  try {
    return await modelFiles(model);
  } finally {
    model.dispose();
  }
}

let worker: RunningWorker;
let bundleDir = '';
const input = testImages(1, SIZE, 9);
const expected = new Map<string, number[][]>();

beforeAll(async () => {
  await useNodeBackend();
  const bundle = await buildWorker();
  bundleDir = bundle.dir;
  worker = await startWorker(bundle, { vars: { MEMORY_BUDGET_MB: '1', INDEX_TTL_MS: '2', WARM_UP: 'never' } });
  for (const [i, name] of MODELS.entries()) {
    const files = await rotatingModel(i + 1);
    expected.set(name, await stockPredict(files, input));
    const published = await convertAndPublish(worker.store, files, { name, quantize: 'none', samples: 1 });
    expect(published.metadata.sizes.float32).toBeGreaterThan(0.5 * 2 ** 20);
  }
  // The three models give different answers, so a wrong model would be seen.
  expect(maxAbsDiff(expected.get('rot-a')!, expected.get('rot-b')!)).toBeGreaterThan(1e-3);
  expect(maxAbsDiff(expected.get('rot-b')!, expected.get('rot-c')!)).toBeGreaterThan(1e-3);
}, 180_000);

afterAll(async () => {
  await worker?.dispose();
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

const predict = async (name: string, body = JSON.stringify({ instances: input.nested })): Promise<{ status: number; body: string }> => {
  try {
    const response = await worker.fetch(`/v1/models/${name}:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { status: 0, body: `no answer (hung?): ${(error as Error).message}` };
  }
};

describe('workerd: three models rotating under a budget that holds one', () => {
  it(`${REQUESTS} requests at concurrency ${CONCURRENCY}: every prediction 200 with its model's answer, every malformed body 400, none hung`, async () => {
    const failures: string[] = [];
    let next = 0;
    let ok = 0;
    let refused = 0;
    const lane = async () => {
      while (next < REQUESTS) {
        const i = next++;
        const name = MODELS[i % MODELS.length]!;
        if (i % BAD_EVERY === BAD_EVERY - 1) {
          const { status, body } = await predict(name, '{"instances": [');
          if (status === 400 && /JSON/i.test(body)) refused++;
          else failures.push(`${name}, malformed body: ${status} ${body.slice(0, 200)}`);
          continue;
        }
        const { status, body } = await predict(name);
        if (status !== 200) {
          failures.push(`${name}: ${status} ${body.slice(0, 200)}`);
          continue;
        }
        const diff = maxAbsDiff((JSON.parse(body) as { predictions: number[][] }).predictions, expected.get(name)!);
        if (diff < 1e-4) ok++;
        else failures.push(`${name}: wrong prediction (max diff ${diff})`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    const summary = [...new Set(failures)].slice(0, 5).join('\n');
    expect(failures.length, `${failures.length} of ${REQUESTS} failed:\n${summary}`).toBe(0);
    expect(ok).toBe(REQUESTS - REQUESTS / BAD_EVERY);
    expect(refused).toBe(REQUESTS / BAD_EVERY);
  });

  it('afterwards every model answers, is AVAILABLE, and the idle isolate holds at most its budget', async () => {
    for (const name of MODELS) {
      const { status, body } = await predict(name);
      expect(status, body).toBe(200);
      expect(maxAbsDiff((JSON.parse(body) as { predictions: number[][] }).predictions, expected.get(name)!)).toBeLessThan(1e-4);
      const state = (await (await worker.fetch(`/v1/models/${name}`)).json()) as { model_version_status: { state: string }[] };
      expect(state.model_version_status[0]!.state).toBe('AVAILABLE');
    }
    const server = (await (await worker.fetch('/v2')).json()) as { edgeflow: { models: { bytes: number; budgetBytes: number; evictions: number; loading: string[] } } };
    const { models } = server.edgeflow;
    expect(models.budgetBytes).toBe(2 ** 20);
    expect(models.bytes).toBeLessThanOrEqual(models.budgetBytes);
    expect(models.loading).toEqual([]);
    expect(models.evictions).toBeGreaterThan(0);
  });
});
