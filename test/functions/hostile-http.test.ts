// The hostile HTTP table (test/helpers/hostile-requests.ts) against the Node app in process:
// every kind answers its status (never 500) with a short {"error"} naming the problem, and
// afterwards the server still predicts exactly what it predicted before.
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { createNodeApp } from '../../functions/node.ts';
import { demoModels } from '../../scripts/demo-models.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { checkHostileAnswer, GOOD_PREDICT, HOSTILE_ADMIN_TOKEN, HOSTILE_MAX_BODY_BYTES, hostileInit, hostileRequests } from '../helpers/hostile-requests.ts';

const store = new MemoryStore();
const { app } = createNodeApp({ store, limits: { maxBodyBytes: HOSTILE_MAX_BODY_BYTES }, admin: { token: HOSTILE_ADMIN_TOKEN, bucket: 'mem', notify: async () => undefined } });
const predict = () => app.request(GOOD_PREDICT.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: GOOD_PREDICT.body });
let before: unknown;

beforeAll(async () => {
  await useNodeBackend();
  for (const model of await demoModels()) await convertAndPublish(store, model.files, { name: model.name, quantize: model.quantize, ...model.classifier, samples: 1 });
  const response = await predict();
  expect(response.status).toBe(200);
  before = await response.json();
}, 60_000);

describe('hostile HTTP on Node (in process)', () => {
  const cases = hostileRequests();

  it('has at least 150 distinct kinds', () => {
    expect(new Set(cases.map((c) => c.kind)).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases.map((c) => [c.kind, c] as const))('%s', async (_kind, c) => {
    const response = await app.request(c.path, hostileInit(c));
    checkHostileAnswer(c, response.status, await response.text());
  });

  it('still predicts what it predicted before the hostile run', async () => {
    const response = await predict();
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(before);
  });
});
