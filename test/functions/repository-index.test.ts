// POST /v2/repository/index (Triton's repository index), public: every published version of
// every model, READY once loaded in this process, UNAVAILABLE before; {"ready": true} keeps the
// loaded ones; a bad body is a 400 naming what is expected.
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { createNodeApp } from '../../functions/node.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

let app: ReturnType<typeof createNodeApp>['app'];
const index = (body?: string) => app.request('/v2/repository/index', { method: 'POST', ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) });

beforeAll(async () => {
  await useNodeBackend();
  const store = new MemoryStore();
  const files = await tinyDenseModel();
  await convertAndPublish(store, files, { name: 'alpha', samples: 1, sourceId: 'a1' });
  await convertAndPublish(store, files, { name: 'alpha', samples: 1, sourceId: 'a2' });
  await convertAndPublish(store, files, { name: 'beta', samples: 1, sourceId: 'b1' });
  app = createNodeApp({ store, indexTtlMs: 0 }).app;
}, 60_000);

describe('POST /v2/repository/index', () => {
  it('lists every published version without a token, loaded or not', async () => {
    const response = await index();
    expect(response.status).toBe(200);
    const rows = (await response.json()) as { name: string; version: string; state: string }[];
    expect(rows.map((r) => `${r.name}/${r.version}:${r.state}`).sort()).toEqual(['alpha/1:UNAVAILABLE', 'alpha/2:UNAVAILABLE', 'beta/1:UNAVAILABLE']);
    expect(await (await index('{"ready": true}')).json()).toEqual([]);
  });

  it('a loaded version is READY; {"ready": true} keeps it alone', async () => {
    const predict = await app.request('/v1/models/beta:predict', { method: 'POST', body: JSON.stringify({ instances: [Array(16).fill(0.1)] }) });
    expect(predict.status).toBe(200);
    expect(await (await index('{"ready": true}')).json()).toEqual([{ name: 'beta', version: '1', state: 'READY', reason: '' }]);
    expect(((await (await index('')).json()) as unknown[]).length).toBe(3);
  });

  it('a bad body is a 400 naming what is expected', async () => {
    for (const body of ['{"ready": "yes"}', '[1]', 'null']) {
      const response = await index(body);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: 'body: {"ready": true | false} or nothing is expected' });
    }
    expect((await index('{')).status).toBe(400);
  });
});
