// A conversion in the Worker shares its isolate with serving (queue() and fetch() run on one
// thread): it yields between its steps and calibration passes, so a prediction asked while it
// converts is answered before the conversion ends; and the Worker's budgets (converter/limits.ts
// WORKER_LIMITS) refuse by name an archive the Node converter reads.
import * as tfl from '@tensorflow/tfjs-layers';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { modelFiles } from '../../models/train/save.ts';
import { buildWorker, type WorkerBundle } from '../../scripts/edge-worker.ts';
import { zeroDenseZip } from '../helpers/hostile-files.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';
import { startUploadWorker, type UploadWorker } from '../helpers/upload-worker.ts';

const TOKEN = 'workerd-conversion-token-5e21';
const auth = { authorization: `Bearer ${TOKEN}` };
let bundle: WorkerBundle;
let worker: UploadWorker;
const logs: string[] = [];

const GOOD = JSON.stringify({ instances: [Array.from({ length: 16 }, (_, i) => i / 16)] });
const predict = (): Promise<Response> => worker.fetch('/v1/models/served:predict', { method: 'POST', headers: { 'content-type': 'application/json' }, body: GOOD });

async function upload(name: string, zip: Uint8Array, options = ''): Promise<string> {
  const response = await worker.fetch(`/admin/models/${name}/uploads?filename=${name}.zip${options}`, { method: 'POST', headers: auth, body: zip as Uint8Array<ArrayBuffer> });
  expect(response.status).toBe(202);
  return ((await response.json()) as { id: string }).id;
}

async function settled(id: string, withinMs = 100_000): Promise<{ state: string; reason?: string }> {
  const deadline = Date.now() + withinMs;
  let status = { state: 'never read' };
  while (Date.now() < deadline) {
    status = (await (await worker.fetch(`/admin/uploads/${id}`, { headers: auth })).json()) as { state: string; reason?: string };
    if (status.state === 'published' || status.state === 'failed') return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // What the Worker said of this upload, to see where it stopped.
  throw new Error(`upload ${id} did not settle in ${withinMs / 1000} s (last state ${status.state}); the Worker logged:\n${logs.filter((line) => line.includes(id)).join('\n')}`);
}

/** Resolves once a line the Worker logged matches. */
async function logged(pattern: RegExp): Promise<void> {
  while (!logs.some((line) => pattern.test(line))) await new Promise((resolve) => setTimeout(resolve, 5));
}

beforeAll(async () => {
  await useNodeBackend();
  bundle = await buildWorker();
  worker = await startUploadWorker(bundle, { EDGEFLOW_ADMIN_TOKEN: TOKEN, MAX_CONVERT_MB: '12', MAX_UPLOAD_BYTES: String(16 * 2 ** 20) }, (line) => void logs.push(line));
  await convertAndPublish(worker.store, await tinyDenseModel(), { name: 'served', quantize: 'none', samples: 1 });
}, 180_000);

afterAll(async () => {
  await worker?.dispose();
});

describe('conversions in the Worker', () => {
  it('a prediction asked while the queue consumer converts in the same isolate is answered before the conversion ends', async () => {
    // Dense 1024 → 2048 → 10: 8 MiB of float32 weights. `auto` at a tight tolerance runs several
    // trial conversions between the reference and verify steps (about a second in workerd here):
    // since synthetic calibration no longer tries outlier clipping, plain uint8 left too short a window.
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [1024], units: 2048, activation: 'relu' }), tfl.layers.dense({ units: 10, activation: 'softmax' })] });
    const files = await modelFiles(model);
    model.dispose();
    const id = await upload('slow', zipSync(Object.fromEntries(files)), '&quantize=auto&tolerance=0.0001');
    // workerd closes the kept-alive connection after a large upload: the next request on it fails ("other side closed").
    await predict().catch(() => undefined);
    const expected = await (await predict()).text();
    await logged(new RegExp(`${id}: reference running the float32 model`));
    // From here until the conversion's verify step begins there is no I/O in it: a prediction
    // answered meanwhile was served between two of its steps.
    const answered: string[] = [];
    while (!logs.some((line) => line.includes(`${id}: verify`)) && !logs.some((line) => line.includes(`${id}: failed`))) {
      const response = await predict();
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toBe(expected);
      if (!logs.some((line) => line.includes(`${id}: verify`))) answered.push(text);
    }
    console.log(`predictions answered between the conversion's reference and verify steps: ${answered.length}`);
    expect(answered.length).toBeGreaterThan(0);
    expect(await settled(id)).toMatchObject({ state: 'published' });
  }, 300_000);

  it("an archive unpacking past the Worker's 64 MiB budget (read on Node) is refused naming the budget", async () => {
    const id = await upload('big', await zeroDenseZip(4096, 4480));
    const status = await settled(id);
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(/^zip expands to more than 67108864 bytes \(64 MiB, the decompressed budget of a conversion in a Worker \(a 128 MB isolate\);/);
    expect((await predict()).status).toBe(200);
  }, 120_000);
});
