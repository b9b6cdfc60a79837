// The admin API on the Node entry (the same Hono app as on Workers), over a MemoryStore:
// Bearer auth (none configured, missing, malformed, wrong, right; never echoed), uploads
// (raw body and multipart, options as query or form fields, calibration parts, 413, 400s), status, labels,
// rollback, deletes (409 while labelled, latest moves), and that the runtime sees label moves
// at once even with a long index cache.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { UploadWatcher } from '../../converter/watcher.ts';
import { createNodeApp } from '../../functions/node.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { listAll } from '../../shared/store/util.ts';
import { OWN_CALIBRATION_IMAGES, tinyDenseModel, tinyImageModel } from '../helpers/tiny-models.ts';
import type { FileSet } from '../../converter/model.ts';
import { json, multipart, withCalibration } from '../helpers/http.ts';

const TOKEN = 'test-admin-token-5b1f0c2e9a';
let model: FileSet;

beforeAll(async () => {
  await useNodeBackend();
  model = await tinyDenseModel();
});

function setup(token: string | undefined = TOKEN, maxUploadBytes?: number) {
  const store = new MemoryStore();
  const { app, runtime } = createNodeApp({ store, indexTtlMs: 3_600_000, admin: { token, maxUploadBytes, bucket: 'mem', notify: async () => void 0 } });
  const watcher = new UploadWatcher({ store, owner: 'test', intervalMs: 1000, samples: 2, ensureBackend: () => runtime.ready(), onPublished: (name) => runtime.invalidate(name) });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const request = (path: string, init: RequestInit = {}) => app.request(path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
  return { store, app, runtime, watcher, request };
}

describe('auth', () => {
  it('with no token configured, every admin route is refused', async () => {
    const { app } = setup('');
    for (const [method, path] of [
      ['GET', '/admin/models'],
      ['POST', '/admin/models/x/uploads'],
      ['GET', '/admin/uploads/20261129T000000Z-0000000000000001'],
    ]) {
      const response = await app.request(path, { method, headers: { authorization: 'Bearer anything' } });
      expect(response.status).toBe(403);
      expect((await json(response)).error).toMatch(/admin API is disabled: no EDGEFLOW_ADMIN_TOKEN is configured/);
    }
  });

  it('401 without a token or with another scheme, 403 with a wrong one; the token is never echoed', async () => {
    const { app } = setup();
    const missing = await app.request('/admin/models');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="edgeflow-admin"');
    expect((await json(missing)).error).toBe('the admin API needs Authorization: Bearer <token>');
    const basic = await app.request('/admin/models', { headers: { authorization: `Basic ${btoa(`admin:${TOKEN}`)}` } });
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toBe('Bearer realm="edgeflow-admin"');
    expect((await json(basic)).error).toBe('Authorization must be "Bearer <token>"');
    for (const wrong of [`${TOKEN}x`, TOKEN.slice(0, -1), 'wrong-token', TOKEN.toUpperCase()]) {
      const response = await app.request('/admin/models', { headers: { authorization: `Bearer ${wrong}` } });
      expect(response.status).toBe(403);
      const text = await response.text();
      expect(text).toBe('{"error":"the admin token is not valid"}');
      expect(text).not.toContain(wrong);
    }
    const right = await app.request('/admin/models', { headers: { authorization: `bearer ${TOKEN}` } });
    expect(right.status).toBe(200);
    expect(await json(right)).toEqual({ models: [] });
  });

  it('the public prediction routes need no token', async () => {
    const { app } = setup();
    expect((await app.request('/v2/health/live')).status).toBe(200);
  });

  it('an unauthenticated upload writes nothing', async () => {
    const { app, store } = setup();
    const response = await app.request('/admin/models/tiny/uploads', { method: 'POST', body: multipart(model), headers: { authorization: 'Bearer nope' } });
    expect(response.status).toBe(403);
    expect(await listAll(store, '')).toEqual([]);
  });
});

describe('uploads', () => {
  it('multipart model.json + shard with form options → 202, then queued → published with sizes and drift', async () => {
    const { request, watcher } = setup();
    const response = await request('/admin/models/tiny/uploads', { method: 'POST', body: multipart(model, { quantize: 'uint8', tolerance: '0.2', shardSize: '1KiB' }) });
    expect(response.status).toBe(202);
    const accepted = await json(response);
    expect(accepted).toMatchObject({
      name: 'tiny',
      state: 'queued',
      options: { quantize: 'uint8', tolerance: 0.2, shardBytes: 1024 },
      files: [{ path: 'group1-shard1of1.bin' }, { path: 'model.json' }],
    });
    expect(accepted.id).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{16}$/);
    expect(response.headers.get('location')).toBe(`/admin/uploads/${accepted.id}`);
    expect(accepted.statusUrl).toBe(`http://localhost/admin/uploads/${accepted.id}`);
    expect((await json(await request(`/admin/uploads/${accepted.id}`))).state).toBe('queued');

    await watcher.pollOnce();
    const status = await json(await request(`/admin/uploads/${accepted.id}`));
    expect(status).toMatchObject({ state: 'published', version: 1, quantization: { uint8: 4 }, report: { passed: true, tolerance: 0.2 }, model: 'http://localhost/v1/models/tiny/versions/1' });
    expect(status.sizes.converted).toBeLessThan(status.sizes.float32);
    expect(status.latencyMs).toBeGreaterThanOrEqual(0);
    const predict = await request('/v1/models/tiny:predict', { method: 'POST', body: JSON.stringify({ instances: [Array(16).fill(0.5)] }) });
    expect(predict.status).toBe(200);
    expect(((await json(predict)).predictions as number[][])[0]).toHaveLength(4);
  });

  it('a raw body with options in the query; the file name from ?filename= or sniffed', async () => {
    const { request, store } = setup();
    const h5 = new Uint8Array([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const sniffed = await json(await request('/admin/models/k/uploads?quantize=float16&shardSize=2MiB', { method: 'POST', body: h5 }));
    expect(sniffed).toMatchObject({ files: [{ path: 'model.h5', size: 11 }], options: { quantize: 'float16', shardBytes: 2 * 2 ** 20 } });
    const named = await json(await request('/admin/models/k/uploads?filename=emotion.keras', { method: 'POST', body: h5 }));
    expect(named.files).toEqual([{ path: 'emotion.keras', size: 11 }]);
    expect((await listAll(store, `uploads/k/${named.id}/`)).map((o) => o.key.split('/').pop())).toEqual(['edgeflow-upload.json', 'emotion.keras']);
  });

  it('413 over the upload limit (declared or streamed), writing nothing', async () => {
    const { request, store } = setup(TOKEN, 1000);
    const declared = await request('/admin/models/tiny/uploads', { method: 'POST', body: new Uint8Array(1001), headers: { 'content-length': '1001' } });
    expect(declared.status).toBe(413);
    expect((await json(declared)).error).toMatch(/^upload: 1001 bytes exceed the limit of 1000 bytes; convert larger models with `npx edgeflow convert --out s3:\/\/\.\.\.` on Node/);
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new Uint8Array(300));
        controller.close();
      },
    });
    const streamed = await request('/admin/models/tiny/uploads', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await listAll(store, '')).toEqual([]);
  });

  it('400 for a bad name, bad options, an empty body or a reserved file name', async () => {
    const { request } = setup();
    const cases: [string, BodyInit | undefined, RegExp][] = [
      ['/admin/models/Bad%20Name/uploads', new Uint8Array(4), /invalid model name "Bad Name"/],
      ['/admin/models/tiny/uploads?quantize=int3', new Uint8Array(4), /^quantize: /],
      ['/admin/models/tiny/uploads?tolerance=-1', new Uint8Array(4), /^tolerance: a number ≥ 0 is required/],
      ['/admin/models/tiny/uploads?minSnr=loud', new Uint8Array(4), /^minSnr: a number of dB is required, got "loud"/],
      ['/admin/models/tiny/uploads?minSnr=500', new Uint8Array(4), /minSnrDb: at most 200 dB/],
      ['/admin/models/tiny/uploads?quantize=auto:snr=x', new Uint8Array(4), /expected auto:snr=<dB>/],
      ['/admin/models/tiny/uploads?shardSize=10', new Uint8Array(4), /^shardSize: size 10 is too small/],
      ['/admin/models/tiny/uploads?keepBatchNorm=yes', new Uint8Array(4), /^keepBatchNorm: true or false, got "yes"/],
      ['/admin/models/tiny/uploads?equalize=maybe', new Uint8Array(4), /^equalize: true or false, got "maybe"/],
      ['/admin/models/tiny/uploads', undefined, /^upload: the body is empty/],
      ['/admin/models/tiny/uploads', multipart(new Map([['edgeflow-upload.json', new Uint8Array(2)]])), /reserved for the upload manifest/],
    ];
    for (const [path, body, message] of cases) {
      const response = await request(path, { method: 'POST', body });
      expect(response.status, path).toBe(400);
      expect((await json(response)).error).toMatch(message);
    }
  });

  it('calibration parts (one JSON file, or images) are stored under calibration/ and calibrate the conversion', async () => {
    const { request, watcher, store } = setup();
    const instances = Array.from({ length: 3 }, (_, i) => Array.from({ length: 16 }, (_, j) => Math.cos(i * j)));
    const form = withCalibration(multipart(model, { quantize: 'uint8', minSnr: '20', equalize: 'false' }), [['rows.json', new TextEncoder().encode(JSON.stringify({ instances }))]]);
    const accepted = await json(await request('/admin/models/tiny/uploads', { method: 'POST', body: form }));
    expect(accepted.files.map((f: { path: string }) => f.path)).toEqual(['group1-shard1of1.bin', 'model.json', 'calibration/rows.json']);
    expect(accepted.options).toMatchObject({ quantize: 'uint8', minSnrDb: 20, equalize: false });
    expect(await store.get(`uploads/tiny/${accepted.id}/calibration/rows.json`)).not.toBeNull();

    const images = readdirSync(OWN_CALIBRATION_IMAGES).map((name): [string, Uint8Array] => [name, new Uint8Array(readFileSync(path.join(OWN_CALIBRATION_IMAGES, name)))]);
    const imageForm = withCalibration(multipart(await tinyImageModel(), { quantize: 'uint8', image: '8x8,scale=0.00392156862745098' }), images);
    const imageUpload = await json(await request('/admin/models/tiny-image/uploads', { method: 'POST', body: imageForm }));

    await watcher.pollOnce();
    const status = await json(await request(`/admin/uploads/${accepted.id}`));
    expect(status).toMatchObject({ state: 'published', report: { calibrationKind: 'data', calibration: 'calibration/rows.json: 3 samples', samples: 3, minSnrDb: 20, passed: true } });
    const imageStatus = await json(await request(`/admin/uploads/${imageUpload.id}`));
    expect(imageStatus).toMatchObject({ state: 'published', report: { calibrationKind: 'data', samples: 3, calibration: '3 calibration images (8x8 rgb, pixel*0.00392156862745098+0)' } });
  });

  it('400 for calibration parts of another kind, mixed, or with no model', async () => {
    const { request, store } = setup();
    const png = new Uint8Array(readFileSync(path.join(OWN_CALIBRATION_IMAGES, 'gradient.png')));
    const cases: [FormData, RegExp][] = [
      [withCalibration(multipart(model), [['photo.gif', png]]), /^calibration file calibration\/photo\.gif: not a \.json, \.npy, \.png or \.jpg file/],
      [
        withCalibration(multipart(model), [
          ['rows.json', new Uint8Array(2)],
          ['a.png', png],
        ]),
        /give one \.json or \.npy file, or images only/,
      ],
      [withCalibration(new FormData(), [['a.png', png]]), /^upload: only calibration files: send the model file\(s\) beside them/],
    ];
    for (const [body, message] of cases) {
      const response = await request('/admin/models/tiny/uploads', { method: 'POST', body });
      expect(response.status).toBe(400);
      expect((await json(response)).error).toMatch(message);
    }
    expect(await listAll(store, '')).toEqual([]);
  });

  it('unknown upload ids are 404', async () => {
    const { request } = setup();
    expect((await request('/admin/uploads/20261129T000000Z-0000000000000001')).status).toBe(404);
    expect((await json(await request('/admin/uploads/../../etc'))).error).toMatch(/no route|invalid upload id/);
  });
});

describe('versions and labels', () => {
  async function twoVersions() {
    const context = setup();
    for (const quantize of ['none', 'uint8']) {
      const response = await context.request(`/admin/models/tiny/uploads?quantize=${quantize}&tolerance=0.2`, { method: 'POST', body: multipart(model) });
      expect(response.status).toBe(202);
      await context.watcher.pollOnce();
    }
    return context;
  }
  const predict = async (request: ReturnType<typeof setup>['request'], path: string) => {
    const response = await request(`${path}:predict`, { method: 'POST', body: JSON.stringify({ instances: [Array(16).fill(0.25)] }) });
    return { status: response.status, body: await json(response) };
  };

  it('lists and describes models: versions, labels, sizes, quantization, drift', async () => {
    const { request } = await twoVersions();
    expect(await json(await request('/admin/models'))).toEqual({ models: [{ name: 'tiny', versions: [1, 2], labels: { latest: 2 } }] });
    const described = await json(await request('/admin/models/tiny'));
    expect(described.labels).toEqual({ latest: 2 });
    expect(described.versions.map((v: any) => [v.version, v.labels, v.quantization.spec, Object.keys(v.quantization.dtypes)])).toEqual([
      [1, [], 'none', ['float32']],
      [2, ['latest'], 'uint8', ['uint8']],
    ]);
    expect(described.versions[1].sizes.converted).toBeLessThan(described.versions[0].sizes.converted - 1500);
    expect(described.versions[1].report.passed).toBe(true);
    // Each version names the upload it came from (edgeflow.json source.uploadId, index.json sourceId).
    for (const v of described.versions) expect(v.source.uploadId).toBe(v.sourceId);
    expect(described.versions[0].sourceId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{16}$/);
    expect((await request('/admin/models/ghost')).status).toBe(404);
  });

  it('moves stable, rolls back, and the runtime answers from the new target at once (1 h index cache)', async () => {
    const { request } = await twoVersions();
    const v1 = await predict(request, '/v1/models/tiny/versions/1');
    const v2 = await predict(request, '/v1/models/tiny/versions/2');
    expect(v1.body.predictions).not.toEqual(v2.body.predictions);

    const set = await request('/admin/models/tiny/labels/stable', { method: 'PUT', body: JSON.stringify({ version: 2 }) });
    expect(set.status).toBe(200);
    expect(await json(set)).toEqual({ name: 'tiny', labels: { latest: 2, stable: 2 } });
    expect((await predict(request, '/v1/models/tiny/labels/stable')).body).toEqual(v2.body);
    // Rollback: stable back to 1.
    await request('/admin/models/tiny/labels/stable', { method: 'PUT', body: JSON.stringify({ version: 1 }) });
    expect((await predict(request, '/v1/models/tiny/labels/stable')).body).toEqual(v1.body);

    const refusals: [string, string, unknown, number, RegExp][] = [
      ['PUT', '/admin/models/tiny/labels/stable', { version: 9 }, 404, /has no version 9 \(versions: 1, 2\)/],
      ['PUT', '/admin/models/tiny/labels/latest', { version: 1 }, 400, /latest is managed/],
      ['PUT', '/admin/models/tiny/labels/Bad!', { version: 1 }, 400, /label "Bad!"/],
      ['PUT', '/admin/models/tiny/labels/stable', { v: 1 }, 400, /\{"version": <positive integer>\} is required/],
      ['PUT', '/admin/models/ghost/labels/stable', { version: 1 }, 404, /model "ghost" not found/],
    ];
    for (const [method, path, body, status, message] of refusals) {
      const response = await request(path, { method, body: JSON.stringify(body) });
      expect(response.status, path).toBe(status);
      expect((await json(response)).error).toMatch(message);
    }
  });

  it('deletes: 409 while a label points at it; latest moves to the newest remaining; numbers are not reused', async () => {
    const { request, store, watcher } = await twoVersions();
    await request('/admin/models/tiny/labels/stable', { method: 'PUT', body: JSON.stringify({ version: 1 }) });
    const refused = await request('/admin/models/tiny/versions/1', { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect((await json(refused)).error).toBe('version 1 of tiny is labelled stable: point that label at another version first (PUT /admin/models/tiny/labels/stable)');

    expect((await predict(request, '/v1/models/tiny')).status).toBe(200);
    const deleted = await request('/admin/models/tiny/versions/2', { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    expect(await json(deleted)).toMatchObject({ deleted: 2, versions: [1], labels: { latest: 1, stable: 1 } });
    expect((await predict(request, '/v1/models/tiny/versions/2')).status).toBe(404);
    expect((await listAll(store, 'models/tiny/2/')).map((o) => o.key)).toEqual(['models/tiny/2/.claim']);
    expect((await request('/admin/models/tiny/versions/2', { method: 'DELETE' })).status).toBe(404);

    // The next upload gets version 3, not the deleted 2.
    await request('/admin/models/tiny/uploads?quantize=float16', { method: 'POST', body: multipart(model) });
    await watcher.pollOnce();
    expect((await json(await request('/admin/models/tiny'))).labels).toEqual({ latest: 3, stable: 1 });

    expect((await request('/admin/models/tiny/labels/stable', { method: 'DELETE' })).status).toBe(200);
    expect((await request('/admin/models/tiny/versions/1', { method: 'DELETE' })).status).toBe(200);
    expect((await request('/admin/models/tiny/versions/3', { method: 'DELETE' })).status).toBe(200);
    expect(await json(await request('/admin/models'))).toEqual({ models: [{ name: 'tiny', versions: [], labels: {} }] });
    expect((await predict(request, '/v1/models/tiny')).status).toBe(404);
  });
});
