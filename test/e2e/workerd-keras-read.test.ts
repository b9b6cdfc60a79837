// The Keras readers inside workerd (the queue consumer's runtime): a tiny worker bundling
// converter/read readModel converts each real fixture, and its result (names, shapes, a checksum
// of every value, the translated topology) must equal the Node result byte for byte.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModel } from '../../converter/read/index.ts';
import { fixtureBytes, hasFixture, KERAS_FIXTURES, needs, repoRoot } from '../helpers/keras.ts';
import { summarizeModel, type ModelSummary } from '../helpers/model-summary.ts';
import { bundleWorkerEntry, startTestWorker, type TestWorker } from '../helpers/workerd.ts';

let worker: TestWorker;

beforeAll(async () => {
  // No nodejs_compat: the readers must run on web-standard APIs alone.
  worker = await startTestWorker(await bundleWorkerEntry(path.join(repoRoot, 'test/helpers/keras-worker.ts')));
});

afterAll(async () => {
  await worker?.dispose();
});

async function readInWorkerd(relative: string): Promise<{ status: number; body: ModelSummary & { error?: string; errorName?: string } }> {
  const bytes = fixtureBytes(relative);
  const response = await worker.fetch(`/read?name=${encodeURIComponent(path.basename(relative))}`, { method: 'POST', body: bytes as Uint8Array<ArrayBuffer> });
  return { status: response.status, body: (await response.json()) as ModelSummary & { error?: string; errorName?: string } };
}

describe('Keras conversion inside workerd', () => {
  for (const relative of [KERAS_FIXTURES.xception, KERAS_FIXTURES.lstm, KERAS_FIXTURES.mnistMlp]) {
    it.skipIf(!hasFixture(relative))(`${path.basename(relative)}: same weights and topology as in Node${needs(relative)}`, async () => {
      const node = summarizeModel(await readModel(new Map([[path.basename(relative), fixtureBytes(relative)]])));
      const { status, body } = await readInWorkerd(relative);
      expect(body.error).toBeUndefined();
      expect(status).toBe(200);
      expect(body).toEqual(JSON.parse(JSON.stringify(node)));
      console.log(`${path.basename(relative)} in workerd: ${body.weightCount} weights, checksum ${body.checksum} (Node ${node.checksum})`);
    });
  }

  it.skipIf(!hasFixture(KERAS_FIXTURES.mctQuantized))(`refuses the custom-layer .keras with the same message${needs(KERAS_FIXTURES.mctQuantized)}`, async () => {
    const { status, body } = await readInWorkerd(KERAS_FIXTURES.mctQuantized);
    expect(status).toBe(422);
    expect(body.errorName).toBe('ConversionError');
    expect(body.error).toContain('KerasQuantizationWrapper');
  });

  it.skipIf(!hasFixture(KERAS_FIXTURES.ssrnetWeights))(`refuses the weights-only file${needs(KERAS_FIXTURES.ssrnetWeights)}`, async () => {
    const { status, body } = await readInWorkerd(KERAS_FIXTURES.ssrnetWeights);
    expect(status).toBe(422);
    expect(body.error).toMatch(/weights only/);
  });
});
