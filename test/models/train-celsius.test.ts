// The whole training job on the celsius model: train (wasm backend chosen), write TensorBoard
// events / CSV / PNG, save to a folder, upload to a store; the upload trigger (one `edgeflow watch`
// pass) converts and publishes it, and the HTTP API answers 100 °C → 212 °F within 1 °F.
// The published edgeflow.json must carry the training metrics; the held-out inputs saved beside the
// model (calibration.json) calibrate both `convert` on the out folder and the upload's conversion.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { UploadWatcher } from '../../converter/watcher.ts';
import { convertModel } from '../../converter/convert.ts';
import { readInput } from '../../converter/read/files.ts';
import { createNodeApp } from '../../functions/node.ts';
import { toFahrenheit } from '../../models/celsius.ts';
import { runTraining, type TrainJobResult } from '../../models/train/run.ts';
import { decodeEventFile } from '../../models/train/tensorboard.ts';
import { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { ModelJson } from '../../shared/schemas/model-json.ts';
import { readIndex } from '../../shared/bucket/published.ts';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { getJson } from '../../shared/store/util.ts';

const folder = mkdtempSync(join(tmpdir(), 'edgeflow-train-celsius-'));
const store = new LocalFolderStore(join(folder, 'store'));
const lines: string[] = [];
const progress: string[] = [];
let result: TrainJobResult;

beforeAll(async () => {
  result = await runTraining({
    model: 'celsius',
    out: join(folder, 'out'),
    upload: store,
    logdir: join(folder, 'logs'),
    log: (line) => lines.push(line),
    progress: { write: (text) => void progress.push(text), isTTY: false },
  });
});

describe('edgeflow train celsius', () => {
  it('says which backend it chose and why, and prints the evaluation table', () => {
    expect(result.backend.backend).toBe('wasm');
    expect(lines).toContainEqual(expect.stringMatching(/^backend: wasm \(@tensorflow\/tfjs-backend-wasm\): .*not installed; (webgpu: [^;]+; )?wasm registers all \d+ kernels the training runs/));
    expect(lines.join('\n')).toMatch(/\| held-out \| mae \(°F\) \| +mse \(°F²\) \|/);
    expect(progress).toHaveLength(result.history.length);
    expect(progress[0]).toMatch(/^epoch +1\/60 \[=+\] [\d.]+s loss [\d.e+-]+ · mae [\d.]+ · val_loss/);
  });

  it('learns F = 1.8·C + 32 (held-out MAE under 0.5 °F)', () => {
    expect(result.record.metrics.mae).toBeLessThan(0.5);
    expect(result.record).toMatchObject({ model: 'celsius', backend: 'wasm', epochs: 60, unit: '°F', heldOutSamples: 200 });
  });

  it('writes TensorBoard event files whose CRCs check and whose scalars are the history', () => {
    const train = decodeEventFile(new Uint8Array(readFileSync(result.eventFiles.train)));
    const validation = decodeEventFile(new Uint8Array(readFileSync(result.eventFiles.validation)));
    expect(train[0]!.fileVersion).toBe('brain.Event:2');
    const scalars = train.slice(1).filter((e) => !e.histograms);
    expect(scalars.map((e) => e.step)).toEqual(result.history.map((r) => r.epoch));
    // And a histogram event per epoch of the Dense unit's kernel and bias.
    const histograms = train.filter((e) => e.histograms);
    expect(histograms.map((e) => e.step)).toEqual(result.history.map((r) => r.epoch));
    expect(Object.keys(histograms[0]!.histograms!)).toEqual(['fahrenheit/kernel', 'fahrenheit/bias']);
    result.history.forEach((record, i) => {
      expect(scalars[i]!.scalars).toEqual({
        epoch_loss: Math.fround(record.train.loss!),
        epoch_mae: Math.fround(record.train.mae!),
        epoch_learning_rate: Math.fround(record.learningRate),
      });
      expect(validation[i + 1]!.scalars).toEqual({ epoch_loss: Math.fround(record.validation.loss!), epoch_mae: Math.fround(record.validation.mae!) });
    });
  });

  it('writes the history as CSV and a PNG plot', () => {
    const csv = readFileSync(join(result.logdir, 'history.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('epoch,loss,mae,val_loss,val_mae,learning_rate,seconds');
    expect(csv).toHaveLength(61);
    const last = csv[60]!.split(',').map(Number);
    const record = result.history[59]!;
    expect(last.slice(0, 6)).toEqual([60, record.train.loss, record.train.mae, record.validation.loss, record.validation.mae, record.learningRate]);
    const png = PNG.sync.read(readFileSync(join(result.logdir, 'history.png')));
    expect([png.width, png.height]).toEqual([840, 340]);
  });

  it('saves a TF.js layers model with the metrics in userDefinedMetadata.training', () => {
    expect(readdirSync(join(folder, 'out')).sort()).toEqual(['calibration.json', 'group1-shard1of1.bin', 'model.json']);
    const modelJson = ModelJson.parse(JSON.parse(readFileSync(join(folder, 'out', 'model.json'), 'utf8')));
    expect(modelJson.format).toBe('layers-model');
    const training = (modelJson.userDefinedMetadata as { training: Record<string, unknown> }).training;
    expect(training).toMatchObject({ model: 'celsius', backend: 'wasm', metrics: result.record.metrics });
    expect(Date.parse(training.trainedAt as string)).toBeGreaterThan(0);
  });

  it('writes the first 64 held-out inputs beside the model as calibration.json', async () => {
    const { instances } = JSON.parse(readFileSync(join(folder, 'out', 'calibration.json'), 'utf8')) as { instances: number[][] };
    expect(instances).toHaveLength(64);
    expect(instances.every((row) => row.length === 1 && Number.isFinite(row[0]))).toBe(true);
    expect(new Set(instances.map((row) => row[0])).size).toBeGreaterThan(50);
  });

  it('edgeflow convert on the out folder calibrates on the held-out inputs (calibration: data)', async () => {
    const converted = await convertModel(await readInput(join(folder, 'out')), { name: 'celsius', quantize: 'uint8' });
    expect(converted.report).toMatchObject({ calibrationKind: 'data', samples: 64, calibration: 'calibration.json: 64 samples', passed: true });
    // Named by its model.json, the calibration.json beside it comes along too.
    const named = await readInput(join(folder, 'out', 'model.json'));
    expect([...named.keys()].sort()).toEqual(['calibration.json', 'group1-shard1of1.bin', 'model.json']);
  });

  it('uploads under uploads/celsius/<id>/ with the manifest written last', async () => {
    const { uploadId, keys, manifestKey } = result.uploaded!;
    expect(keys).toEqual([`uploads/celsius/${uploadId}/group1-shard1of1.bin`, `uploads/celsius/${uploadId}/calibration.json`, `uploads/celsius/${uploadId}/model.json`]);
    expect(manifestKey).toBe(`uploads/celsius/${uploadId}/edgeflow-upload.json`);
    expect((await store.get(keys.at(-1)!))!.body).toEqual(new Uint8Array(readFileSync(join(folder, 'out', 'model.json'))));
  });

  it('the upload trigger converts it: edgeflow.json carries the metrics, and over HTTP 100 °C is 212 °F', async () => {
    // One pass of `edgeflow watch` over the store: the trigger for stores without event notifications.
    const watcher = new UploadWatcher({ store, owner: 'train-test', intervalMs: 1000, ensureBackend: useNodeBackend, log: () => {} });
    const outcomes = await watcher.pollOnce();
    expect(outcomes).toEqual([expect.objectContaining({ kind: 'done', name: 'celsius', uploadId: result.uploaded!.uploadId, existing: false })]);
    const version = (outcomes[0] as { version: number }).version;

    const edgeflow = EdgeflowJson.parse((await getJson(store, `models/celsius/${version}/edgeflow.json`))!.value);
    // The upload carried the held-out inputs: the consumer calibrated on them.
    expect(edgeflow.report).toMatchObject({ calibrationKind: 'data', samples: 64, calibration: 'calibration.json: 64 samples' });
    expect(edgeflow.training).toMatchObject({ model: 'celsius', backend: 'wasm', epochs: 60, metrics: result.record.metrics, trainedAt: result.record.trainedAt });
    // The per-epoch history travels with it, and the admin API's model description passes it through.
    const history = result.history.map(({ epoch, train, validation }) => ({ epoch, train, validation }));
    expect(edgeflow.training!.history).toEqual(history);
    expect(history).toHaveLength(60);
    expect(history[59]!.validation.loss).toBeLessThan(history[0]!.validation.loss!);
    expect((await readIndex(store, 'celsius'))!.index.labels.latest).toBe(version);

    // The published version, served by the Node entry of the Hono app (stock TF.js loader, wasm).
    const { app } = createNodeApp({ store, admin: { token: 'train-test-token' } });
    const described = (await (await app.request('/admin/models/celsius', { headers: { authorization: 'Bearer train-test-token' } })).json()) as { versions: { training?: { history: unknown[] } }[] };
    expect(described.versions[0]!.training).toMatchObject({ model: 'celsius', history });
    const response = await app.request('/v1/models/celsius:predict', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [[100], [-40], [37]] }) });
    expect(response.status).toBe(200);
    const { predictions } = (await response.json()) as { predictions: number[][] };
    expect(Math.abs(predictions[0]![0]! - 212)).toBeLessThan(1);
    expect(Math.abs(predictions[1]![0]! - toFahrenheit(-40))).toBeLessThan(1);
    expect(Math.abs(predictions[2]![0]! - toFahrenheit(37))).toBeLessThan(1);
  });
});
