// The training job's upload triggers conversion exactly like the admin route: `edgeflow train
// celsius --upload <store>` writes through writeUpload (files, status, manifest last), an
// `edgeflow watch` pass converts it, and the Node server predicts 212 °F for 100 °C.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readStatus, uploadKeys } from '../../shared/bucket/uploads.ts';
import { UploadWatcher } from '../../converter/watcher.ts';
import { useNodeBackend } from '../../cli/backend.ts';
import { startNodeServer } from '../../functions/node.ts';
import { runTraining } from '../../models/train/run.ts';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { getJson } from '../../shared/store/util.ts';

const folder = mkdtempSync(join(tmpdir(), 'edgeflow-upload-train-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe('edgeflow train --upload → watch → serve', () => {
  it('the trained celsius model is converted from its upload and answers 212 °F', async () => {
    const store = new LocalFolderStore(join(folder, 'store'));
    const result = await runTraining({ model: 'celsius', upload: store, logdir: join(folder, 'runs'), log: () => {}, progress: { write: () => {}, isTTY: false } });
    const uploaded = result.uploaded!;
    const manifest = (await getJson(store, uploadKeys.manifest('celsius', uploaded.uploadId)))!.value;
    expect(manifest).toMatchObject({ edgeflowUpload: 1, name: 'celsius', source: 'edgeflow train' });
    // The model's files and its held-out inputs, which the conversion calibrates on.
    expect((manifest as { files: { path: string }[] }).files.map((f) => f.path).sort()).toEqual(['calibration.json', 'group1-shard1of1.bin', 'model.json']);
    expect(await readStatus(store, uploaded.uploadId)).toMatchObject({ state: 'queued' });

    await useNodeBackend();
    const watcher = new UploadWatcher({ store, owner: 'test-watch', intervalMs: 1000, samples: 2, ensureBackend: useNodeBackend });
    expect(await watcher.pollOnce()).toEqual([{ kind: 'done', uploadId: uploaded.uploadId, name: 'celsius', version: 1, existing: false }]);
    const status = (await readStatus(store, uploaded.uploadId))!;
    expect(status).toMatchObject({ state: 'published', version: 1, convertedBy: 'test-watch', report: { calibrationKind: 'data', samples: 64 } });

    const server = await startNodeServer({ store, port: 0 });
    try {
      const response = await fetch(`${server.url}/v1/models/celsius:predict`, { method: 'POST', body: JSON.stringify({ instances: [[100]] }) });
      const { predictions } = (await response.json()) as { predictions: number[][] };
      expect(Math.abs(predictions[0]![0]! - 212)).toBeLessThan(1);
      // The version keeps the training run's metrics and the upload it came from.
      const edgeflow = (await getJson(store, 'models/celsius/1/edgeflow.json'))!.value as { training: { metrics: unknown }; source: { uploadId: string } };
      expect(edgeflow.training.metrics).toEqual(result.record.metrics);
      expect(edgeflow.source.uploadId).toBe(uploaded.uploadId);
    } finally {
      await server.close();
    }
  });
});
