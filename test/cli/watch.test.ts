// `edgeflow watch` as real subprocesses (bin/edgeflow.mjs):
//  - against s3rver (a real S3-protocol server on loopback) with AWS S3's conditional writes put
//    in front of it (s3rver 3.7.1 ignores If-None-Match / If-Match, docs/ARCHITECTURE.md; without them two
//    watchers can both convert and publish twice): a real Keras fixture uploaded with
//    @aws-sdk/client-s3 (files, then the manifest, as any S3 client can) → two watchers → one
//    conversion, exactly one version → the Node server answers predictions from the same bucket;
//  - against a local folder, whose store honours conditional writes across processes: two
//    watchers racing over four uploads convert each exactly once (the claim); watchers killed
//    (SIGKILL) mid-conversion twice: the third takes the upload over once the lease lapses and
//    publishes it, the crashes counted as takeovers, not attempts; `serve --watch --lease`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { readIndex } from '../../shared/bucket/published.ts';
import { newUploadId, readStatus, uploadKeys, writeUpload, type UploadManifest } from '../../shared/bucket/uploads.ts';
import { DEFAULT_LEASE_MS } from '../../shared/options/serving.ts';
import { getJson } from '../../shared/store/util.ts';
import { parseServeFlags } from '../../cli/serve-flags.ts';
import { startNodeServer } from '../../functions/node.ts';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { openStore } from '../../shared/store/open.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { repoRoot } from '../../scripts/edge-worker.ts';
import { fixturePath, HAVE_FIXTURES, NO_FIXTURES_REASON } from '../helpers/fixtures.ts';
import { startS3rver } from '../helpers/s3rver.ts';
import { PreconditionFailedError } from '../../shared/store/types.ts';
import { fixedValues, tinyDenseModel } from '../helpers/tiny-models.ts';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { modelFiles } from '../../models/train/save.ts';
import type { FileSet } from '../../converter/model.ts';

interface Watcher {
  child: ChildProcess;
  lines: string[];
  ready: Promise<void>;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
/** Kills the watchers still running: a failed test must not leave them polling (s3rver waits for their connections to close). */
function killWatchers() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
afterAll(killWatchers);

function startWatcher(store: string, name: string, env: Record<string, string>, extra: string[] = []): Watcher {
  return startEdgeflow(['watch', '--store', store, '--name', name, '--samples', '2', ...extra], name, env, 'polling');
}

/** `edgeflow <args>` as a subprocess; ready once it prints a line containing readyText. */
function startEdgeflow(args: string[], name: string, env: Record<string, string>, readyText: string): Watcher {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/edgeflow.mjs'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let onReady: () => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    void exited.then((code) => reject(new Error(`${name} exited with ${code} before printing ${readyText}:\n${lines.join('\n')}`)));
  });
  ready.catch(() => undefined); // awaited only by tests that expect the watcher to start
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      if (line.includes(readyText)) onReady();
    });
  }
  return { child, lines, ready, exited };
}

/** Resolves as promise does, or fails after ms naming the step and showing what the watchers printed. */
async function within<T>(ms: number, step: string, promise: Promise<T>, watchers: Watcher[]): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step}: no answer in ${ms} ms; the watchers printed:\n${watchers.map((w) => w.lines.join('\n')).join('\n---\n')}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, watchers: Watcher[], timeoutMs = 60_000): Promise<T> {
  const poll = async () => {
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  return within(timeoutMs, `waiting for ${what}`, poll(), watchers);
}

const converting = (lines: string[], uploadId: string) => lines.filter((l) => l.includes(`${uploadId}: converting`)).length;

describe.skipIf(!HAVE_FIXTURES)(`two watchers over s3rver${HAVE_FIXTURES ? '' : ` (${NO_FIXTURES_REASON})`}`, () => {
  it('an upload made with @aws-sdk/client-s3 becomes exactly one version, served by the Node server', async () => {
    const s3 = await startS3rver('edgeflow-test', { conditional: true });
    try {
      const location = `s3://${s3.bucket}/edge`;
      // The server honours conditional writes over the wire: one of eight racing creators wins.
      const probe = await openStore(`s3://${s3.bucket}/probe`, s3.env);
      const race = await within(30_000, 'eight racing conditional creates', Promise.allSettled(Array.from({ length: 8 }, (_, i) => probe.put('claim', `writer ${i}`, { ifNoneMatch: '*' }))), []);
      expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(race.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof PreconditionFailedError)).toBe(true);
      const current = (await probe.head('claim'))!;
      await expect(probe.put('claim', 'stale', { ifMatch: 'not-the-etag' })).rejects.toBeInstanceOf(PreconditionFailedError);
      await probe.put('claim', 'next', { ifMatch: current.etag });

      const watchers = [startWatcher(location, 'w1', s3.env, ['--interval', '300ms']), startWatcher(location, 'w2', s3.env, ['--interval', '300ms'])];
      await within(30_000, 'starting the watchers', Promise.all(watchers.map((w) => w.ready)), watchers);

      // A user's own upload: the model file, then the manifest (its creation is the trigger).
      const started = performance.now();
      const bytes = readFileSync(fixturePath('keras-h5/fer2013_mini_XCEPTION.102-0.66.hdf5'));
      const uploadId = newUploadId();
      const prefix = `edge/uploads/emotion/${uploadId}/`;
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}fer2013.hdf5`, Body: bytes }));
      const manifest: UploadManifest = {
        edgeflowUpload: 1,
        name: 'emotion',
        uploadId,
        created: new Date().toISOString(),
        files: [{ path: 'fer2013.hdf5', size: bytes.byteLength }],
        options: { quantize: 'float16' },
      };
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}edgeflow-upload.json`, Body: JSON.stringify(manifest), ContentType: 'application/json' }));

      const store: ObjectStore = await openStore(location, s3.env);
      const status = await waitFor(
        'the upload to be published',
        async () => {
          const s = await readStatus(store, uploadId);
          return s?.state === 'published' || s?.state === 'failed' ? s : undefined;
        },
        watchers,
      );
      const publishedMs = performance.now() - started;
      expect(status).toMatchObject({ state: 'published', version: 1, report: { passed: true } });
      expect(['w1', 'w2']).toContain(status.convertedBy);

      await useNodeBackend();
      const server = await startNodeServer({ store, port: 0 });
      try {
        const image = Array.from({ length: 64 }, (_, r) => Array.from({ length: 64 }, (_, c) => [((r * 7 + c * 3) % 64) / 64 - 0.5]));
        const response = await fetch(`${server.url}/v1/models/emotion:predict`, { method: 'POST', body: JSON.stringify({ instances: [image] }), signal: AbortSignal.timeout(60_000) });
        expect(response.status).toBe(200);
        const { predictions } = (await response.json()) as { predictions: number[][] };
        expect(predictions[0]).toHaveLength(7);
        expect(predictions[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
        console.log(
          `node + s3rver: upload → published ${publishedMs.toFixed(0)} ms (consumer: ${status.latencyMs} ms, stages ${JSON.stringify(status.timings)}); → first prediction ${(performance.now() - started).toFixed(0)} ms`,
        );
      } finally {
        await server.close();
      }

      // Give both a few more polls: nothing more is published.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const w of watchers) w.child.kill('SIGTERM');
      expect(await within(30_000, 'stopping the watchers (SIGTERM)', Promise.all(watchers.map((w) => w.exited)), watchers)).toEqual([0, 0]);
      const index = (await readIndex(store, 'emotion'))!.index;
      expect(index.versions.map((v) => [v.version, v.sourceId])).toEqual([[1, uploadId]]);
      const conversions = watchers.map((w) => converting(w.lines, uploadId));
      console.log(
        `node + s3rver: conversions per watcher ${JSON.stringify(conversions)}, claims refused (busy) ${JSON.stringify(watchers.map((w) => w.lines.filter((l) => l.includes('is converting it')).length))}`,
      );
      expect(conversions.reduce((a, b) => a + b, 0)).toBe(1);
    } finally {
      killWatchers();
      await s3.close();
    }
  });
});

describe('two watchers over a local folder', () => {
  it('race over four uploads: each is converted by exactly one of them, four versions in index.json', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-watch-'));
    try {
      const store = new LocalFolderStore(folder);
      await useNodeBackend();
      const model = await tinyDenseModel();
      const watchers = [startWatcher(folder, 'w1', {}, ['--interval', '200ms']), startWatcher(folder, 'w2', {}, ['--interval', '200ms'])];
      await within(30_000, 'starting the watchers', Promise.all(watchers.map((w) => w.ready)), watchers);
      const uploads = await Promise.all(Array.from({ length: 4 }, (_, i) => writeUpload(store, 'tiny', model, { options: { quantize: i % 2 ? 'uint8' : 'float16', tolerance: 0.2 }, source: 'test' })));
      for (const upload of uploads) {
        await waitFor(`upload ${upload.uploadId}`, async () => ((await readStatus(store, upload.uploadId))?.state === 'published' ? true : undefined), watchers);
      }
      await new Promise((resolve) => setTimeout(resolve, 600));
      for (const w of watchers) w.child.kill('SIGTERM');
      expect(await within(30_000, 'stopping the watchers (SIGTERM)', Promise.all(watchers.map((w) => w.exited)), watchers)).toEqual([0, 0]);

      const lines = watchers.flatMap((w) => w.lines);
      for (const upload of uploads) {
        expect(converting(lines, upload.uploadId), upload.uploadId).toBe(1);
        expect(await readStatus(store, upload.uploadId)).toMatchObject({ state: 'published', attempts: 1 });
      }
      const index = (await readIndex(store, 'tiny'))!.index;
      expect(index.versions.map((v) => v.version)).toEqual([1, 2, 3, 4]);
      expect(index.versions.map((v) => v.sourceId).sort()).toEqual(uploads.map((u) => u.uploadId).sort());
      const count = (w: Watcher, text: string) => w.lines.filter((l) => l.includes(text)).length;
      console.log(
        `local folder: conversions per watcher ${JSON.stringify(watchers.map((w) => count(w, ': converting')))}, claims refused (busy) ${JSON.stringify(watchers.map((w) => count(w, 'is converting it')))}`,
      );
    } finally {
      killWatchers();
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('a watcher killed mid-conversion, twice: the third takes it over after the lease and publishes it; attempts 1, takeovers 2', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-watch-'));
    const all: Watcher[] = [];
    try {
      const store = new LocalFolderStore(folder);
      await useNodeBackend();
      // 256 → 2048 → 2048 → 10, 20 MB of float32 weights: converting takes a while after the watcher says `converting`.
      const upload = await writeUpload(store, 'big', await denseModel(256, 2048), { options: { quantize: 'uint8', tolerance: 1 }, source: 'test' });
      const id = upload.uploadId;
      const start = (name: string) => {
        const w = startWatcher(folder, name, {}, ['--interval', '200ms', '--lease', '1s']);
        all.push(w);
        return w;
      };
      /** Waits for the watcher to start converting the upload, then kills it without a chance to clean up. */
      const killMidConversion = async (w: Watcher) => {
        const line = await waitFor(`${w.child.pid} to start converting`, async () => w.lines.find((l) => l.includes(`${id}: converting`)), all, 30_000);
        w.child.kill('SIGKILL');
        expect(await within(10_000, 'the SIGKILL', w.exited, all)).toBeNull();
        return line;
      };

      const first = await killMidConversion(start('w1'));
      expect(first).toMatch(/attempt 1$/);
      expect(await readStatus(store, id)).toMatchObject({ state: 'converting', attempts: 1, convertedBy: 'w1' });
      const second = await killMidConversion(start('w2'));
      expect(second).toMatch(/attempt 1, takeover 1$/);
      expect(await readStatus(store, id)).toMatchObject({ state: 'converting', attempts: 1, takeovers: 1, convertedBy: 'w2' });
      expect(await readIndex(store, 'big')).toBeNull();

      const third = start('w3');
      const status = await waitFor(
        'the third watcher to settle it',
        async () => {
          const s = await readStatus(store, id);
          return s?.state === 'published' || s?.state === 'failed' ? s : undefined;
        },
        all,
        30_000,
      );
      expect(status).toMatchObject({ state: 'published', version: 1, attempts: 1, takeovers: 2, convertedBy: 'w3' });
      expect(converting(third.lines, id)).toBe(1);
      // The status document is written before the watcher prints its line: wait for the line too.
      await waitFor('w3 to say published', async () => third.lines.find((l) => l.includes(`${id}: published`)), all, 10_000);
      const stamp = (text: string) => Date.parse(`1970-01-01T${/^\[([\d:.]+)\]/.exec(third.lines.find((l) => l.includes(text))!)![1]}Z`);
      console.log(`kill -9 twice: published by w3 after ${status.latencyMs} ms in all; its conversion took ${stamp(`${id}: published`) - stamp(`${id}: converting`)} ms (what each kill interrupted)`);
      third.child.kill('SIGTERM');
      expect(await within(10_000, 'stopping w3 (SIGTERM)', third.exited, all)).toBe(0);
      expect((await readIndex(store, 'big'))!.index.versions.map((v) => [v.version, v.sourceId])).toEqual([[1, id]]);
    } finally {
      killWatchers();
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('two live watchers, a conversion that blocks longer than the lease: taken over, the lease doubles, published once', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-watch-'));
    try {
      const store = new LocalFolderStore(folder);
      await useNodeBackend();
      const { uploadId: id } = await writeUpload(store, 'big', await denseModel(256, 2048), { options: { quantize: 'uint8', tolerance: 1 }, source: 'test' });
      // The conversion (~1.7 s here) runs on the watcher's thread: no heartbeat renews a 1 s lease meanwhile.
      const watchers = [startWatcher(folder, 'w1', {}, ['--interval', '200ms', '--lease', '1s']), startWatcher(folder, 'w2', {}, ['--interval', '200ms', '--lease', '1s'])];
      const status = await waitFor(
        'the upload to settle',
        async () => {
          const s = await readStatus(store, id);
          return s?.state === 'published' || s?.state === 'failed' ? s : undefined;
        },
        watchers,
        40_000,
      );
      expect(status).toMatchObject({ state: 'published', version: 1, attempts: 1 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const w of watchers) w.child.kill('SIGTERM');
      await within(10_000, 'stopping the watchers (SIGTERM)', Promise.all(watchers.map((w) => w.exited)), watchers);
      expect((await readIndex(store, 'big'))!.index.versions.map((v) => [v.version, v.sourceId])).toEqual([[1, id]]);
      const lost = watchers.flatMap((w) => w.lines).filter((l) => l.includes('lost the lease')).length;
      console.log(
        `two live watchers, 1 s lease, blocking conversion: conversions ${JSON.stringify(watchers.map((w) => converting(w.lines, id)))}, takeovers ${status.takeovers ?? 0}, overtaken holders that published nothing ${lost}`,
      );
    } finally {
      killWatchers();
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('serve --watch --lease 1s: its claims last 1 s; killed mid-conversion, a watcher takes the upload over within seconds', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-watch-'));
    const all: Watcher[] = [];
    try {
      const store = new LocalFolderStore(folder);
      await useNodeBackend();
      const { uploadId: id } = await writeUpload(store, 'big', await denseModel(256, 2048), { options: { quantize: 'uint8', tolerance: 1 }, source: 'test' });
      const server = startEdgeflow(['serve', '--store', folder, '--port', '0', '--workers', '1', '--watch', '--lease', '1s'], 'serve', {}, 'edgeflow serving');
      all.push(server);
      await waitFor('serve --watch to start converting', async () => ((await readStatus(store, id))?.state === 'converting' ? true : undefined), all, 30_000);
      const claim = (await getJson(store, uploadKeys.claim(id)))!.value as { owner: string; expires: number; renewed: string };
      expect(claim.owner).toMatch(/^serve:\d+#/);
      expect(claim.expires - Date.parse(claim.renewed)).toBeGreaterThanOrEqual(999);
      expect(claim.expires - Date.parse(claim.renewed)).toBeLessThanOrEqual(1001);
      server.child.kill('SIGKILL');
      await within(10_000, 'the SIGKILL', server.exited, all);
      const killed = Date.now();

      const rescuer = startWatcher(folder, 'rescuer', {}, ['--interval', '200ms', '--lease', '1s']);
      all.push(rescuer);
      await waitFor('the rescuer to take it over', async () => (converting(rescuer.lines, id) ? true : undefined), all, 30_000);
      const tookOverMs = Date.now() - killed;
      const status = await waitFor('the rescuer to publish it', async () => ((await readStatus(store, id))?.state === 'published' ? readStatus(store, id) : undefined), all, 30_000);
      expect(status).toMatchObject({ state: 'published', attempts: 1, takeovers: 1, convertedBy: 'rescuer' });
      console.log(`serve --watch --lease 1s killed mid-conversion: a watcher started then took the upload over ${tookOverMs} ms later (its start-up included)`);
    } finally {
      killWatchers();
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('--lease: parsed by watch and serve (one duration syntax), too short refused naming it', async () => {
    expect(parseServeFlags({ store: 's' }).leaseMs).toBe(DEFAULT_LEASE_MS);
    expect(parseServeFlags({ store: 's', lease: '2m' }).leaseMs).toBe(120_000);
    expect(() => parseServeFlags({ store: 's', lease: '500ms' })).toThrow(/--lease 500 ms is too short: give at least 1s/);
    expect(() => parseServeFlags({ store: 's', lease: 'soon' })).toThrow(/bad duration "soon"/);
    const w = startWatcher('some-folder', 'x', {}, ['--lease', '0.2s']);
    expect(await within(30_000, 'watch --lease 0.2s to exit', w.exited, [w])).toBe(2);
    expect(w.lines.join('\n')).toMatch(/--lease 200 ms is too short/);
  });

  it('usage errors exit 2 with the help', async () => {
    const w = startWatcher('some-folder', 'x', {}, ['--interval', 'soon']);
    expect(await w.exited).toBe(2);
    expect(w.lines.join('\n')).toMatch(/bad duration "soon"/);
  });
});

/** Dense inputs → units → units → 10 (softmax) with fixed weights. */
async function denseModel(inputs: number, units: number): Promise<FileSet> {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [inputs], units, activation: 'relu' }), tfl.layers.dense({ units, activation: 'relu' }), tfl.layers.dense({ units: 10, activation: 'softmax' })],
  });
  model.setWeights(
    model.weights.map((w, i) =>
      tf.tensor(
        fixedValues(
          (w.shape as number[]).reduce((a, b) => a * b, 1),
          i + 1,
        ),
        w.shape as number[],
      ),
    ),
  );
  const files = await modelFiles(model);
  model.dispose();
  return files;
}
