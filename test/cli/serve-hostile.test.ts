// End to end: `edgeflow serve --watch` keeps answering a good model's predictions, correctly,
// while hostile uploads (a zero-weight model with input [null, 8000, 8000], a zip that lies
// about its sizes) are refused as permanent failures. The longest prediction stall is printed
// (a figure, not an assertion).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { readIndex } from '../../shared/bucket/published.ts';
import { readStatus, writeUpload, type UploadStatus } from '../../shared/bucket/uploads.ts';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { repoRoot } from '../../scripts/edge-worker.ts';
import { deflatedZeros, zipOf } from '../helpers/hostile-files.ts';

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Dense 3 → 2 without bias: [1, 2, 3] predicts [2.2, 2.8]. */
const goodModel = () =>
  new Map([
    [
      'model.json',
      json({
        format: 'layers-model',
        modelTopology: { class_name: 'Sequential', config: { name: 'seq', layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, use_bias: false, batch_input_shape: [null, 3] } }] } },
        weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'd/kernel', shape: [3, 2], dtype: 'float32' }] }],
      }),
    ],
    ['w.bin', new Uint8Array(new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).buffer)],
  ]);

const hugeInput = () =>
  new Map([
    [
      'model.json',
      json({
        format: 'layers-model',
        modelTopology: { class_name: 'Sequential', config: { name: 'seq', layers: [{ class_name: 'Activation', config: { name: 'a', activation: 'relu', batch_input_shape: [null, 8000, 8000] } }] } },
        weightsManifest: [],
      }),
    ],
  ]);

const lyingZip = () => new Map([['model.zip', zipOf([{ name: 'model.json', data: deflatedZeros(256 * 2 ** 20), method: 8, size: 100 }])]]);

describe('serve --watch under hostile uploads', () => {
  it('keeps answering predictions while a [null, 8000, 8000] model and a lying zip are refused', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-hostile-'));
    try {
      const store = new LocalFolderStore(folder);
      await useNodeBackend();
      await convertAndPublish(store, goodModel(), { name: 'good', quantize: 'none', samples: 2 });

      const child = spawn(process.execPath, [path.join(repoRoot, 'bin/edgeflow.mjs'), 'serve', '--store', folder, '--port', '0', '--workers', '1', '--watch'], {
        cwd: repoRoot,
        env: { ...process.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const lines: string[] = [];
      const url = await new Promise<string>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${lines.join('\n')}`)));
        for (const stream of [child.stdout!, child.stderr!]) {
          createInterface({ input: stream }).on('line', (line) => {
            lines.push(line);
            const match = /edgeflow serving .* at (http:\/\/\S+)/.exec(line);
            if (match) resolve(match[1]!);
          });
        }
      });

      const predict = async () => {
        const response = await fetch(`${url}/v1/models/good:predict`, { method: 'POST', body: JSON.stringify({ instances: [[1, 2, 3]] }), headers: { 'content-type': 'application/json' } });
        expect(response.status).toBe(200);
        return ((await response.json()) as { predictions: number[][] }).predictions[0]!;
      };
      const first = await predict();
      expect(first[0]).toBeCloseTo(2.2, 5);
      expect(first[1]).toBeCloseTo(2.8, 5);

      const uploads = await Promise.all([writeUpload(store, 'huge', hugeInput(), { source: 'test' }), writeUpload(store, 'liar', lyingZip(), { source: 'test' })]);
      let answers = 0;
      let longestMs = 0;
      const settled = async () => {
        const statuses = await Promise.all(uploads.map((u) => readStatus(store, u.uploadId)));
        return statuses.every((s) => s?.state === 'failed' || s?.state === 'published') ? (statuses as UploadStatus[]) : undefined;
      };
      const deadline = Date.now() + 90_000;
      let statuses: UploadStatus[] | undefined;
      while (!(statuses = await settled())) {
        if (Date.now() > deadline) throw new Error(`the hostile uploads were not settled in 90 s:\n${lines.join('\n')}`);
        const started = performance.now();
        const answer = await predict();
        longestMs = Math.max(longestMs, performance.now() - started);
        expect(answer[0]).toBeCloseTo(2.2, 5);
        expect(answer[1]).toBeCloseTo(2.8, 5);
        answers++;
      }
      console.log(`serve --watch: ${answers} predictions answered while the hostile uploads were refused; longest prediction ${longestMs.toFixed(0)} ms`);
      expect(answers).toBeGreaterThan(0);
      expect(statuses[0]).toMatchObject({ state: 'failed', code: 'unconvertible', attempts: 1 });
      expect(statuses[0]!.reason).toMatch(/input "a" of shape \[null, 8000, 8000\]: about \d+ MiB of activations/);
      expect(statuses[1]).toMatchObject({ state: 'failed', code: 'unconvertible', attempts: 1 });
      expect(statuses[1]!.reason).toMatch(/"model\.json" declares 100 bytes but holds more/);
      expect(await readIndex(store, 'huge')).toBeNull();
      expect(await readIndex(store, 'liar')).toBeNull();
      child.kill('SIGTERM');
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }, 180_000);
});
