// A published version whose files pass their sha256 check but cannot be built (here a NaN in a
// weight, which the loader's decoder refuses) answers 503 naming the version and the weight,
// never a 4xx blaming the request, and a good version of the same model keeps serving.
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertModel } from '../../converter/convert.ts';
import { createNodeApp } from '../../functions/node.ts';
import { publishVersion } from '../../shared/bucket/publish.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

let app: ReturnType<typeof createNodeApp>['app'];
const predict = (version: number) =>
  app.request(`/v1/models/dense/versions/${version}:predict`, {
    method: 'POST',
    body: JSON.stringify({ instances: [Array.from({ length: 16 }, (_, i) => i / 16)] }),
    headers: { 'content-type': 'application/json' },
  });

beforeAll(async () => {
  await useNodeBackend();
  const store = new MemoryStore();
  const { modelFiles, metadata } = await convertModel(await tinyDenseModel(), { name: 'dense', quantize: 'none', samples: 1 });
  expect(metadata.serving?.runtime).toBe('compiled-graph');
  await publishVersion(store, { name: 'dense', files: modelFiles.files, metadata });
  const broken = new Map([...modelFiles.files].map(([path, bytes]) => [path, path.endsWith('.bin') ? new Uint8Array(bytes) : bytes]));
  const shard = [...broken.keys()].find((path) => path.endsWith('.bin'))!;
  new Float32Array(broken.get(shard)!.buffer, 0, 1)[0] = Number.NaN;
  await publishVersion(store, { name: 'dense', files: broken, metadata });
  app = createNodeApp({ store }).app;
});

describe('a stored version that cannot be built', () => {
  it('answers 503 naming the version and the weight; the good version still serves', async () => {
    const response = await predict(2);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { error: string };
    expect(body.error).toMatch(/^model dense version 2 failed to load: weight \S+ holds NaN at element 0/);
    expect((await predict(1)).status).toBe(200);
  });
});
