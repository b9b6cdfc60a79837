// The whole training job on the celsius model: train (wasm backend chosen), write TensorBoard
// events / CSV / PNG, save to a folder, upload to a store, convert and publish the upload with the
// converter, then load the published version with stock TF.js: 100 °C → 212 °F within 1 °F.
// The published edgeflow.json must carry the training metrics.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertAndPublish } from '../converter/convert.ts';
import { toFahrenheit } from '../models/celsius.ts';
import { runTraining, type TrainJobResult } from '../models/train/run.ts';
import { decodeEventFile } from '../models/train/tensorboard.ts';
import { loadModel } from '../shared/model-loader.ts';
import { EdgeflowJson } from '../shared/schemas/edgeflow-json.ts';
import { ModelJson } from '../shared/schemas/model-json.ts';
import { readIndex } from '../converter/publish.ts';
import { LocalFolderStore } from '../shared/store/local.ts';
import { getJson, listAll } from '../shared/store/util.ts';

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
    expect(lines).toContainEqual(expect.stringMatching(/^backend: wasm \(@tensorflow\/tfjs-backend-wasm\): .*not installed; wasm registers all \d+ kernels the training runs/));
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
    expect(train.slice(1).map((e) => e.step)).toEqual(result.history.map((r) => r.epoch));
    result.history.forEach((record, i) => {
      expect(train[i + 1]!.scalars).toEqual({
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
    expect(readdirSync(join(folder, 'out')).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
    const modelJson = ModelJson.parse(JSON.parse(readFileSync(join(folder, 'out', 'model.json'), 'utf8')));
    expect(modelJson.format).toBe('layers-model');
    const training = (modelJson.userDefinedMetadata as { training: Record<string, unknown> }).training;
    expect(training).toMatchObject({ model: 'celsius', backend: 'wasm', metrics: result.record.metrics });
    expect(Date.parse(training.trainedAt as string)).toBeGreaterThan(0);
  });

  it('uploads under uploads/celsius/<id>/, model.json last; conversion publishes the metrics and the model answers 212 °F', async () => {
    expect(result.uploaded!.keys).toEqual([`uploads/celsius/${result.uploaded!.uploadId}/group1-shard1of1.bin`, `uploads/celsius/${result.uploaded!.uploadId}/model.json`]);
    const prefix = `uploads/celsius/${result.uploaded!.uploadId}/`;
    const files = new Map<string, Uint8Array>();
    for (const object of await listAll(store, prefix)) files.set(object.key.slice(prefix.length), (await store.get(object.key))!.body);
    expect(files.get('model.json')).toEqual(new Uint8Array(readFileSync(join(folder, 'out', 'model.json'))));

    const published = await convertAndPublish(store, files, { name: 'celsius', sourceId: result.uploaded!.uploadId });
    const edgeflow = EdgeflowJson.parse((await getJson(store, `models/celsius/${published.version}/edgeflow.json`))!.value);
    expect(edgeflow.training).toMatchObject({ model: 'celsius', backend: 'wasm', epochs: 60, metrics: result.record.metrics, trainedAt: result.record.trainedAt });
    expect((await readIndex(store, 'celsius'))!.index.labels.latest).toBe(published.version);

    // The published version, loaded by stock tf.loadLayersModel from the store's bytes.
    const modelJson = ModelJson.parse((await getJson(store, `models/celsius/${published.version}/model.json`))!.value);
    const shards = new Map<string, Uint8Array>();
    for (const path of modelJson.weightsManifest.flatMap((g) => g.paths)) shards.set(path, (await store.get(`models/celsius/${published.version}/${path}`))!.body);
    const model = await loadModel(modelJson, (path) => shards.get(path)!);
    const [output] = await model.predict([tf.tensor2d([[100], [-40], [37]])]);
    const fahrenheit = Array.from(await output!.data());
    expect(fahrenheit[0]).toBeCloseTo(212, 0);
    expect(Math.abs(fahrenheit[0]! - 212)).toBeLessThan(1);
    expect(Math.abs(fahrenheit[1]! - toFahrenheit(-40))).toBeLessThan(1);
    expect(Math.abs(fahrenheit[2]! - toFahrenheit(37))).toBeLessThan(1);
    model.dispose();
  });
});
