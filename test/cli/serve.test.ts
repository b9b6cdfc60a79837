// The Node entry (`edgeflow serve`): the same app on @hono/node-server over a LocalFolderStore,
// with the stock wasm backend; LRU eviction under a memory budget; the CLI end to end.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { createNodeApp, startNodeServer, type NodeServer } from '../../functions/node.ts';
import { demoModels, type DemoModel } from '../../scripts/demo-models.ts';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { repoRoot } from '../../scripts/edge-worker.ts';
import { greyPng, topLeftWhite } from '../helpers/images.ts';

let folder: string;
let store: LocalFolderStore;
let server: NodeServer;
let models: DemoModel[];

const post = (base: string, p: string, body: unknown) => fetch(`${base}${p}`, { method: 'POST', body: JSON.stringify(body) });

beforeAll(async () => {
  await useNodeBackend();
  folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-serve-'));
  store = new LocalFolderStore(folder);
  models = await demoModels();
  for (const model of models) await convertAndPublish(store, model.files, { name: model.name, quantize: model.quantize, samples: 2 });
  server = await startNodeServer({ store, port: 0, indexTtlMs: 0 });
});

afterAll(async () => {
  await server?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe('Node entry over a local folder', () => {
  it('reports the stock wasm backend with SIMD', async () => {
    const ready = (await (await fetch(`${server.url}/v2/health/ready`)).json()) as { ready: boolean; backend: { backend: string; simd: boolean } };
    expect(ready).toMatchObject({ ready: true, backend: { backend: 'wasm', simd: true } });
    const meta = (await (await fetch(`${server.url}/v2`)).json()) as { edgeflow: { platform: string; store: string } };
    expect(meta.edgeflow).toMatchObject({ platform: 'node', store: store.description });
  });

  it('serves both protocols with the same numbers', async () => {
    const instance = models[1]!.example();
    const tfs = await post(server.url, '/v1/models/mnist-cnn:predict', { instances: [instance] });
    expect(tfs.status).toBe(200);
    expect(tfs.headers.get('server-timing')).toMatch(/^read;dur=[\d.]+, ?parse;dur=[\d.]+, ?load;dur=[\d.]+, ?decode;dur=[\d.]+, ?infer;dur=[\d.]+, ?encode;dur=[\d.]+$/);
    const { predictions } = (await tfs.json()) as { predictions: number[][] };
    expect(predictions[0]).toHaveLength(10);
    const v2 = (await (await post(server.url, '/v2/models/mnist-cnn/versions/1/infer', { inputs: [{ name: 'conv1_input', shape: [1, 28, 28, 1], datatype: 'FP64', data: [instance] }] })).json()) as {
      outputs: { data: number[] }[];
    };
    expect(v2.outputs[0]!.data).toEqual(predictions[0]);
  });

  it('answers errors with {"error"} and the status', async () => {
    const bad = await post(server.url, '/v1/models/iris-dense:predict', { instances: [[1, 2, 3]] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^instances: shape \[1, 3\]/);
    const missing = await fetch(`${server.url}/v2/models/ghost/ready`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'model "ghost" not found' });
  });

  it('keeps tensors flat across requests', async () => {
    const count = async () => ((await (await fetch(`${server.url}/`)).json()) as { models: { tensors: number } }).models.tensors;
    await post(server.url, '/v1/models/iris-dense:predict', { instances: [[1, 2, 3, 4]] });
    const before = await count();
    await Promise.all(Array.from({ length: 30 }, (_, i) => post(server.url, '/v1/models/iris-dense:predict', { instances: [[i, 1, 2, 3]] })));
    await post(server.url, '/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'UINT8', data: [1, 2, 999, 4] }] });
    expect(await count()).toBe(before);
  });
});

describe('a prediction on a cold model', () => {
  it('loads the model while the request body is still arriving; a bad body still answers 400 first', async () => {
    const { app, runtime } = createNodeApp({ store, indexTtlMs: 0 });
    const text = JSON.stringify({ instances: [models[1]!.example()] });
    let loadedBeforeBodyEnded: boolean | undefined;
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode(text.slice(0, 10)));
        // Hold the rest back until the model has loaded (or give up after 10 s).
        for (let waited = 0; waited < 10_000 && !runtime.isLoaded('mnist-cnn', 1); waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
        loadedBeforeBodyEnded = runtime.isLoaded('mnist-cnn', 1);
        controller.enqueue(new TextEncoder().encode(text.slice(10)));
        controller.close();
      },
    });
    const response = await app.request('/v1/models/mnist-cnn:predict', { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(200);
    expect(loadedBeforeBodyEnded).toBe(true);
    expect(((await response.json()) as { predictions: number[][] }).predictions[0]).toHaveLength(10);

    const bad = await app.request('/v1/models/ghost:predict', { method: 'POST', body: '{"instances": ' });
    expect(bad.status).toBe(400);
    const unknown = await app.request('/v2/models/ghost/infer', { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }) });
    expect(unknown.status).toBe(404);
  });
});

describe('warm-up', () => {
  it('runs on loads from GET .../ready, not on loads a prediction triggers (that prediction is the first run)', async () => {
    const fresh = await startNodeServer({ store, port: 0 });
    try {
      const timings = async () =>
        Object.fromEntries(
          ((await (await fetch(`${fresh.url}/`)).json()) as { models: { models: { key: string; timings: { warmUpMs: number } }[] } }).models.models.map((m) => [m.key, m.timings.warmUpMs]),
        );
      expect((await fetch(`${fresh.url}/v2/models/mnist-cnn/ready`)).status).toBe(200);
      expect((await post(fresh.url, '/v1/models/iris-dense:predict', { instances: [[1, 2, 3, 4]] })).status).toBe(200);
      const warm = await timings();
      expect(warm['mnist-cnn/1']).toBeGreaterThan(0);
      expect(warm['iris-dense/1']).toBe(0);
    } finally {
      await fresh.close();
    }
  });
});

describe('memory budget', () => {
  it('evicts the least recently used model and reloads it on demand', async () => {
    // iris-dense is 524 float32 bytes, mnist-cnn 21,032: a 21,500-byte budget holds one at a time.
    const small = await startNodeServer({ store, port: 0, memoryBudgetBytes: 21_500 });
    try {
      const stats = async () => ((await (await fetch(`${small.url}/`)).json()) as { models: { models: { key: string }[]; evictions: number; bytes: number } }).models;
      expect((await post(small.url, '/v1/models/iris-dense:predict', { instances: [[1, 2, 3, 4]] })).status).toBe(200);
      expect((await post(small.url, '/v1/models/mnist-cnn:predict', { instances: [models[1]!.example()] })).status).toBe(200);
      let now = await stats();
      expect(now.models.map((m) => m.key)).toEqual(['mnist-cnn/1']);
      expect(now.evictions).toBe(1);
      expect((await post(small.url, '/v1/models/iris-dense:predict', { instances: [[1, 2, 3, 4]] })).status).toBe(200);
      now = await stats();
      expect(now.models.map((m) => m.key)).toEqual(['iris-dense/1']);
      expect(now.evictions).toBe(2);
      expect(now.bytes).toBe(524);
    } finally {
      await small.close();
    }
  });
});

describe('edgeflow serve (CLI)', () => {
  it('starts on the folder, prints its URL and a curl example, predicts, holds --max-image-pixels, stops on SIGTERM', async () => {
    const args = ['serve', '--store', folder, '--port', '0', '--max-image-pixels', '1000'];
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/edgeflow.mjs'), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed: ${output}`)), 60_000);
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match && /try:/.test(output)) {
            clearTimeout(timer);
            resolve(match[1]!);
          }
        });
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
      });
      expect(output).toMatch(/backend: wasm with SIMD/);
      expect(output).toMatch(/models: iris-dense, mnist-cnn/);
      const response = await post(url, '/v1/models/iris-dense/labels/latest:predict', { instances: [[5.1, 3.5, 1.4, 0.2]] });
      expect(response.status).toBe(200);
      // 28x28 (784 pixels) is within the 1000-pixel budget; 32x32 (1024) is refused before decoding.
      const classify = (size: number) => fetch(`${url}/v1/models/mnist-cnn:classify`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(greyPng(topLeftWhite(size))) });
      expect((await classify(28)).status).toBe(200);
      const big = await classify(32);
      expect(big.status).toBe(413);
      expect(await big.json()).toEqual({ error: 'body: a 32x32 image (1024 pixels) exceeds the limit of 1000 pixels: send it downscaled' });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
