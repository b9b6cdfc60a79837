// Labels and the image spec through the admin upload route: a labels.txt part beside the model
// files or a `labels` field (newline- or comma-separated), an `image` field; stored in the upload
// manifest, applied by the converter, refused naming the problem.
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { UploadWatcher } from '../../converter/watcher.ts';
import { createNodeApp } from '../../functions/node.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import type { FileSet } from '../../converter/model.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';
import { json, multipart } from '../helpers/http.ts';

const TOKEN = 'test-admin-token-labels-7d2a';
let model: FileSet;

beforeAll(async () => {
  await useNodeBackend();
  model = await tinyDenseModel();
});

function setup() {
  const store = new MemoryStore();
  const { app, runtime } = createNodeApp({ store, admin: { token: TOKEN, bucket: 'mem', notify: async () => void 0 } });
  const watcher = new UploadWatcher({ store, owner: 'test', intervalMs: 1000, samples: 2, ensureBackend: () => runtime.ready(), onPublished: (name) => runtime.invalidate(name) });
  const request = (path: string, init: RequestInit = {}) => app.request(path, { ...init, headers: { authorization: `Bearer ${TOKEN}` } });
  return { request, watcher };
}

describe('admin uploads with labels and an image spec', () => {
  it('a labels.txt part becomes the labels option (Teachable Machine indices stripped) and lands in the metadata', async () => {
    const { request, watcher } = setup();
    const files = new Map([...model, ['labels.txt', new TextEncoder().encode('0 cat\n1 dog\n2 bird\n3 fish\n')]]);
    const accepted = await json(await request('/admin/models/pets/uploads', { method: 'POST', body: multipart(files) }));
    expect(accepted.options.labels).toEqual(['cat', 'dog', 'bird', 'fish']);
    expect(accepted.files.map((f: { path: string }) => f.path)).toEqual(['group1-shard1of1.bin', 'model.json']);
    await watcher.pollOnce();
    expect((await json(await request(`/admin/uploads/${accepted.id}`))).state).toBe('published');
    expect((await json(await request('/v1/models/pets/metadata'))).edgeflow.labels).toEqual(['cat', 'dog', 'bird', 'fish']);
  });

  it('takes labels and image as query fields; a label count that does not fit fails the conversion naming both numbers', async () => {
    const { request, watcher } = setup();
    const accepted = await json(await request('/admin/models/pets/uploads?labels=a,b,c', { method: 'POST', body: multipart(model) }));
    expect(accepted.options.labels).toEqual(['a', 'b', 'c']);
    await watcher.pollOnce();
    const status = await json(await request(`/admin/uploads/${accepted.id}`));
    expect(status.state).toBe('failed');
    expect(status.reason).toContain('--labels: 3 class names given, but output probs has 4 classes (its last dimension)');
    const image = await json(await request('/admin/models/pets/uploads?image=32x32,channels=grayscale', { method: 'POST', body: multipart(model) }));
    expect(image.options.image).toEqual({ height: 32, width: 32, channels: 'grayscale' });
  });

  it('400 for a bad image spec, naming the field', async () => {
    const { request } = setup();
    const response = await request('/admin/models/pets/uploads?image=big', { method: 'POST', body: multipart(model) });
    expect(response.status).toBe(400);
    expect((await json(response)).error).toMatch(/^bad image "big": "big" is not <H>x<W>/);
  });
});
