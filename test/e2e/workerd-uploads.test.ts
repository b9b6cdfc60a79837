// End to end inside workerd (Miniflare, the real bundled Worker, R2 + Queues bindings as in
// wrangler.toml, and no R2 event notification wiring, as in `wrangler dev`): a real Keras fixture
// uploaded through the admin API → the upload route sends the event message to the queue itself
// → the Worker's queue() consumer converts with the wasm backend and publishes → TF Serving
// predict answers; an upload whose message never came (written straight into the bucket) is
// sent again when its status is read after UPLOAD_REQUEUE_AFTER_MS, with a hint, and converts;
// a second version, `stable` moved and rolled back, deletes; calibration images uploaded beside a
// model calibrate its conversion; a permanent failure lands in the
// dead-letter queue; a model too large for a Worker is refused with the Node CLI command to use.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInput } from '../../converter/read/files.ts';
import { writeUpload } from '../../shared/bucket/uploads.ts';
import { listAll } from '../../shared/store/util.ts';
import { buildWorker } from '../../scripts/edge-worker.ts';
import { fixturePath, HAVE_FIXTURES, NO_FIXTURES_REASON } from '../helpers/fixtures.ts';
import { loadMnistDigits, sampleDigits } from '../helpers/mnist.ts';
import { fixturePresent, MOBILENET_DIR } from '../helpers/publish-models.ts';
import { startUploadWorker, type UploadWorker } from '../helpers/upload-worker.ts';
import { multipart } from '../helpers/http.ts';
import { OWN_CALIBRATION_IMAGES, tinyImageModel } from '../helpers/tiny-models.ts';

const HAVE_MOBILENET = await fixturePresent(MOBILENET_DIR);
const TOKEN = 'workerd-admin-token-7d41e9';
const auth = { authorization: `Bearer ${TOKEN}` };
let worker: UploadWorker;

const json = async (response: Response) => (await response.json()) as Record<string, any>;

async function waitForStatus(id: string, states = ['published', 'failed'], timeoutMs = 60_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await json(await worker.fetch(`/admin/uploads/${id}`, { headers: auth }));
    if (states.includes(status.state)) return status;
    if (Date.now() > deadline) throw new Error(`upload ${id} still ${status.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const digits = sampleDigits(loadMnistDigits(), 20);
const instances = Array.from({ length: 20 }, (_, i) => Array.from({ length: 28 }, (_, r) => Array.from(digits.pixels.subarray(i * 784 + r * 28, i * 784 + r * 28 + 28))));

async function predict(path: string): Promise<{ status: number; predictions: number[][] }> {
  const response = await worker.fetch(`/v1/models/mnist${path}:predict`, { method: 'POST', body: JSON.stringify({ instances }) });
  const body = await json(response);
  return { status: response.status, predictions: body.predictions };
}

const correct = (predictions: number[][]) => predictions.filter((p, i) => p.indexOf(Math.max(...p)) === digits.labels[i]).length;

beforeAll(async () => {
  if (!HAVE_FIXTURES) return;
  const bundle = await buildWorker();
  worker = await startUploadWorker(bundle, {
    EDGEFLOW_ADMIN_TOKEN: TOKEN,
    UPLOAD_REQUEUE_AFTER_MS: '30000',
    // A 10 minute index cache: label moves and publishes must invalidate it, not wait for it.
    INDEX_TTL_MS: '600000',
    MAX_CONVERT_MB: '4',
    MAX_UPLOAD_BYTES: String(4 * 2 ** 20),
    QUEUE_MAX_RETRIES: '2',
  });
}, 180_000);

afterAll(async () => {
  await worker?.dispose();
});

describe.skipIf(!HAVE_FIXTURES)(`upload → queue → convert → serve in workerd${HAVE_FIXTURES ? '' : ` (${NO_FIXTURES_REASON})`}`, () => {
  const keras = HAVE_FIXTURES ? readFileSync(fixturePath('keras-v3/mnist_mlp_keras3.3.3.keras')) : Buffer.alloc(0);
  let v1: number[][];

  it('auth: 401 without a token, 403 with a wrong one', async () => {
    expect((await worker.fetch('/admin/models')).status).toBe(401);
    expect((await worker.fetch('/admin/models', { headers: { authorization: 'Bearer nope' } })).status).toBe(403);
    expect((await worker.fetch('/admin/models', { headers: auth })).status).toBe(200);
  });

  it('a .keras file uploaded as the body is converted by the queue consumer and answers predictions', async () => {
    const started = performance.now();
    const response = await worker.fetch('/admin/models/mnist/uploads?filename=mnist.keras&quantize=float16', { method: 'POST', headers: auth, body: keras });
    expect(response.status).toBe(202);
    const accepted = await json(response);
    expect(accepted).toMatchObject({ name: 'mnist', state: 'queued', delivery: 'sent to the upload queue', files: [{ path: 'mnist.keras', size: keras.byteLength }] });
    const status = await waitForStatus(accepted.id);
    expect(status).toMatchObject({ state: 'published', version: 1, attempts: 1, quantization: { float16: 4 }, report: { passed: true } });
    expect(status.convertedBy).toMatch(/^worker:/);
    expect(status.hint).toBeUndefined();
    const first = await predict('');
    const elapsed = performance.now() - started;
    expect(first.status).toBe(200);
    expect(correct(first.predictions)).toBeGreaterThanOrEqual(18);
    v1 = first.predictions;
    console.log(`workerd: upload → published ${status.latencyMs} ms (stages ${JSON.stringify(status.timings)}); upload → first prediction ${elapsed.toFixed(0)} ms`);
  });

  it('a second version (multipart, uint8) becomes latest at once; stable moves and rolls back; deletes', async () => {
    const form = new FormData();
    form.append('model', new Blob([keras]), 'mnist.keras');
    form.append('quantize', 'uint8');
    const accepted = await json(await worker.fetch('/admin/models/mnist/uploads', { method: 'POST', headers: auth, body: form }));
    const status = await waitForStatus(accepted.id);
    expect(status).toMatchObject({ state: 'published', version: 2, quantization: { uint8: 4 } });
    expect(status.sizes.converted).toBeLessThan(status.sizes.float32 / 3.5);

    const latest = await predict('');
    const v2 = await predict('/versions/2');
    expect(latest.predictions).toEqual(v2.predictions);
    expect(v2.predictions).not.toEqual(v1);
    expect(correct(v2.predictions)).toBeGreaterThanOrEqual(18);

    const label = (version: number) => worker.fetch('/admin/models/mnist/labels/stable', { method: 'PUT', headers: auth, body: JSON.stringify({ version }) });
    expect((await label(2)).status).toBe(200);
    expect((await predict('/labels/stable')).predictions).toEqual(v2.predictions);
    expect(await json(await label(1))).toEqual({ name: 'mnist', labels: { latest: 2, stable: 1 } });
    expect((await predict('/labels/stable')).predictions).toEqual(v1);

    const described = await json(await worker.fetch('/admin/models/mnist', { headers: auth }));
    expect(described.versions.map((v: any) => [v.version, v.labels, v.quantization.spec, v.source.format])).toEqual([
      [1, ['stable'], 'float16', 'keras-v3'],
      [2, ['latest'], 'uint8', 'keras-v3'],
    ]);

    const refused = await worker.fetch('/admin/models/mnist/versions/1', { method: 'DELETE', headers: auth });
    expect(refused.status).toBe(409);
    const deleted = await worker.fetch('/admin/models/mnist/versions/2', { method: 'DELETE', headers: auth });
    expect(await json(deleted)).toMatchObject({ deleted: 2, versions: [1], labels: { latest: 1, stable: 1 } });
    expect((await predict('/versions/2')).status).toBe(404);
    expect((await predict('')).predictions).toEqual(v1);
    expect(await json(await worker.fetch('/admin/models', { headers: auth }))).toEqual({ models: [{ name: 'mnist', versions: [1], labels: { latest: 1, stable: 1 } }] });
  });

  it('calibration images uploaded beside the model calibrate the queue consumer conversion (report: data)', async () => {
    const form = multipart(await tinyImageModel(), { quantize: 'uint8', image: '8x8,scale=0.00392156862745098' });
    for (const name of readdirSync(OWN_CALIBRATION_IMAGES)) form.append('calibration', new Blob([readFileSync(path.join(OWN_CALIBRATION_IMAGES, name))]), name);
    const accepted = await json(await worker.fetch('/admin/models/tiny-image/uploads', { method: 'POST', headers: auth, body: form }));
    expect(accepted.files.map((f: { path: string }) => f.path)).toContain('calibration/gradient.png');
    const status = await waitForStatus(accepted.id);
    expect(status).toMatchObject({
      state: 'published',
      report: { calibrationKind: 'data', samples: 3, calibration: '3 calibration images (8x8 rgb, pixel*0.00392156862745098+0)', passed: true },
    });
  });

  it('an upload whose event never came is sent to the queue again once its status is read after a while, with a hint', async () => {
    // Written straight into the bucket, 5 minutes ago, with no message sent (a deployment without
    // R2 event notifications, or a lost message).
    const written = await writeUpload(worker.store, 'lost', new Map([['mnist.keras', new Uint8Array(keras)]]), {
      options: { quantize: 'float16' },
      source: 'test',
      now: new Date(Date.now() - 5 * 60_000),
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Nothing converts it until its status is read: that read sends its event again.
    const first = await json(await worker.fetch(`/admin/uploads/${written.uploadId}`, { headers: auth }));
    expect(first.state).toBe('queued');
    expect(first.hint).toMatch(/^queued for 30\d s: its event was sent to the converter again just now; if it stays queued, check that this Worker consumes the queue edgeflow-uploads /);
    // Read again at once: not sent a second time.
    const stuck = await json(await worker.fetch(`/admin/uploads/${written.uploadId}`, { headers: auth }));
    if (stuck.state === 'queued')
      expect(stuck.hint).toMatch(
        /^queued for 30\d s: its event was sent to the converter again \d+ s ago; if it stays queued, check that this Worker consumes the queue edgeflow-uploads .*`npx wrangler tail`$/,
      );
    const status = await waitForStatus(written.uploadId);
    expect(status).toMatchObject({ state: 'published', version: 1, attempts: 1, quantization: { float16: 4 } });
    expect(status.hint).toBeUndefined();
    const response = await worker.fetch('/v1/models/lost:predict', { method: 'POST', body: JSON.stringify({ instances }) });
    expect(response.status).toBe(200);
    expect(correct((await json(response)).predictions)).toBeGreaterThanOrEqual(18);
  });

  it('a model with unknown layer classes fails with the reason, and its message goes to the dead-letter queue', async () => {
    const bad = readFileSync(fixturePath('keras-v3/mnist_mct_quantized_keras2.13.keras'));
    const accepted = await json(await worker.fetch('/admin/models/mct/uploads?filename=mct.keras', { method: 'POST', headers: auth, body: bad }));
    const status = await waitForStatus(accepted.id);
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(/KerasQuantizationWrapper/);
    let letters: string[] = [];
    for (let i = 0; i < 100 && letters.length === 0; i++) {
      letters = (await listAll(worker.store, 'dead-letters/')).map((o) => o.key);
      if (!letters.length) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(letters).toHaveLength(1);
    const letter = JSON.parse(new TextDecoder().decode((await worker.store.get(letters[0]!))!.body));
    expect(letter).toMatchObject({
      account: 'local',
      action: 'PutObject',
      bucket: 'edgeflow-models',
      object: { key: `uploads/mct/${accepted.id}/edgeflow-upload.json` },
      edgeflow: { uploadId: accepted.id, reason: status.reason },
    });
    expect((await worker.fetch('/v1/models/mct')).status).toBe(404);
  });

  it('the dead-letter queue gets a failed upload once: the same event sent again (a redelivery, an R2 notification) adds no letter', async () => {
    const before = (await listAll(worker.store, 'dead-letters/')).length;
    const junk = await writeUpload(worker.store, 'junk', new Map([['notes.txt', new TextEncoder().encode('not a model')]]));
    const event = { account: 'local', action: 'PutObject', bucket: 'edgeflow-models', object: { key: junk.manifestKey }, eventTime: new Date().toISOString() };
    const queue = await worker.mf.getQueueProducer('UPLOAD_QUEUE', 'edgeflow');
    await queue.send(event);
    expect(await waitForStatus(junk.uploadId)).toMatchObject({ state: 'failed', reason: expect.stringMatching(/no model found/) });
    await queue.send(event);
    await queue.send({ ...event, eventTime: new Date().toISOString() });
    // A last, different failing upload: its letter lands after the two duplicates were consumed (one consumer, batches of 1, in order).
    const marker = await writeUpload(worker.store, 'junk', new Map([['other.txt', new TextEncoder().encode('nor this')]]));
    await queue.send({ ...event, object: { key: marker.manifestKey } });
    let letters: { edgeflow: { uploadId: string } }[] = [];
    for (let i = 0; i < 200 && !letters.some((l) => l.edgeflow.uploadId === marker.uploadId); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const keys = (await listAll(worker.store, 'dead-letters/')).map((o) => o.key);
      letters = await Promise.all(keys.map(async (k) => JSON.parse(new TextDecoder().decode((await worker.store.get(k))!.body))));
    }
    expect(letters).toHaveLength(before + 2);
    expect(letters.filter((l) => l.edgeflow.uploadId === junk.uploadId)).toHaveLength(1);
    expect(letters.filter((l) => l.edgeflow.uploadId === marker.uploadId)).toHaveLength(1);
  });

  it.skipIf(!HAVE_MOBILENET)('a model too large for a Worker is refused with the Node command to use; 413 over the body limit', async () => {
    const zip = zipSync(Object.fromEntries(await readInput(MOBILENET_DIR)), { level: 0 });
    const accepted = await json(await worker.fetch('/admin/models/mobilenet/uploads?filename=mobilenet.zip', { method: 'POST', headers: auth, body: zip }));
    const status = await waitForStatus(accepted.id);
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(
      /^the model has \d+\.\d MiB of float32 weights, more than the 4 MiB this converter takes \(a Worker has 128 MB of memory\): run `npx edgeflow convert <file> --name <name> --out s3:\/\/<bucket>`/,
    );

    // Refused from Content-Length; the body is drained, so a plain fetch client gets the 413.
    const tooBig = await worker.fetch('/admin/models/mobilenet/uploads', { method: 'POST', headers: auth, body: new Uint8Array(5 * 2 ** 20) });
    expect(tooBig.status).toBe(413);
    expect((await json(tooBig)).error).toMatch(/^upload: 5242880 bytes exceed the limit of 4194304 bytes/);
  });
});
