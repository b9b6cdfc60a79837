// Admission control: past maxInFlight prediction requests in one process, the next ones are
// answered 503 with Retry-After at once (not queued without bound); other routes are not counted,
// and the count goes back down as requests finish.
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { createNodeApp } from '../../functions/node.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

const store = new MemoryStore();
const body = JSON.stringify({ instances: [Array.from({ length: 16 }, (_, i) => i / 16)] });

beforeAll(async () => {
  await useNodeBackend();
  await convertAndPublish(store, await tinyDenseModel(), { name: 'dense', samples: 2 });
});

describe('admission', () => {
  it('answers 503 with Retry-After past maxInFlight predictions, and admits again once they finish', async () => {
    const { app } = createNodeApp({ store, limits: { maxInFlight: 2 } });
    const predict = () => app.request('/v1/models/dense:predict', { method: 'POST', body });
    // The first two wait for the model's cold load; the other four arrive meanwhile.
    const answers = await Promise.all(Array.from({ length: 6 }, predict));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 503, 503, 503, 503]);
    const refused = answers.find((r) => r.status === 503)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: string }).error).toMatch(/server busy: 2 predictions are in progress \(the limit is 2\)/);
    // Status and metadata routes are not predictions: not counted.
    const [status, again] = await Promise.all([app.request('/v1/models/dense'), predict()]);
    expect([status.status, again.status]).toEqual([200, 200]);
  });
});
