// Upload statuses through the admin API (the Hono app on Node, over a local folder store) and
// across watcher restarts: every failure is readable (state, code, a reason naming the
// problem, attempts), and the stored status, not a watcher's memory, decides that an upload is
// settled, so a restarted watcher converts nothing again. A status with a non-finite figure
// (what JSON makes of a NaN drift) stays readable; one that is unreadable is said to be so and
// rewritten by the next conversion. A converting upload shows its lease.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import type { FileSet } from '../../converter/model.ts';
import { UploadWatcher } from '../../converter/watcher.ts';
import { createNodeApp } from '../../functions/node.ts';
import { claimUpload } from '../../shared/bucket/claim.ts';
import { readStatus, uploadKeys, writeStatus, writeUpload } from '../../shared/bucket/uploads.ts';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { putJson } from '../../shared/store/util.ts';
import { tinyDenseModel, WEIGHTS_FILE } from '../helpers/tiny-models.ts';

const TOKEN = 'test-admin-token-upload-status';
let model: FileSet;
let folder: string;

beforeAll(async () => {
  await useNodeBackend();
  model = await tinyDenseModel();
  folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-status-'));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** The Node app and a watcher over a folder store; `restart()` is a fresh watcher (nothing remembered). */
function setup(name: string) {
  const store = new LocalFolderStore(path.join(folder, name));
  const { app, runtime } = createNodeApp({ store, admin: { token: TOKEN, bucket: 'folder', notify: async () => undefined } });
  const conversions: string[] = [];
  const watcher = () =>
    new UploadWatcher({ store, owner: 'test', intervalMs: 1000, samples: 2, ensureBackend: () => runtime.ready(), log: (line) => line.includes(': converting ') && conversions.push(line) });
  const request = (url: string, init: RequestInit = {}) => app.request(url, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) } });
  const status = async (id: string) => {
    const response = await request(`/admin/uploads/${id}`);
    return { code: response.status, body: (await response.json()) as Record<string, any> };
  };
  return { store, request, status, watcher, conversions };
}

/** The tiny model with NaN in its first weight (hidden/kernel, element 2). */
function nanModel(): FileSet {
  const weights = model.get(WEIGHTS_FILE)!.slice();
  new Float32Array(weights.buffer, weights.byteOffset, 4)[2] = Number.NaN;
  return new Map([...model, [WEIGHTS_FILE, weights]]);
}

describe('failures are readable through GET /admin/uploads/{id}, and settled for good', () => {
  it('NaN weights: 200, failed, code unconvertible, the reason names the weight, attempts 1; restarted watchers convert nothing', async () => {
    const { request, status, watcher, conversions } = setup('nan');
    const form = new FormData();
    for (const [file, bytes] of nanModel()) form.append('files', new Blob([bytes as Uint8Array<ArrayBuffer>]), file);
    const accepted = await request('/admin/models/nan/uploads', { method: 'POST', body: form });
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };

    expect(await watcher().pollOnce()).toEqual([{ kind: 'failed', uploadId: id, reason: expect.stringMatching(/^weight hidden\/kernel holds NaN at element 2/) }]);
    const failed = await status(id);
    expect(failed.code).toBe(200);
    expect(failed.body).toMatchObject({ id, state: 'failed', code: 'unconvertible', attempts: 1, reason: expect.stringMatching(/weight hidden\/kernel holds NaN/) });
    expect(conversions).toHaveLength(1);

    // Two restarts, two passes each: the status says failed, so nothing is converted again.
    for (let restart = 0; restart < 2; restart++) {
      const fresh = watcher();
      expect(await fresh.pollOnce()).toEqual([{ kind: 'failed', uploadId: id, reason: failed.body.reason, earlier: true }]);
      expect(await fresh.pollOnce()).toEqual([]);
    }
    expect(conversions).toHaveLength(1);
    expect((await status(id)).body).toEqual(failed.body);
  });

  it('a failed status whose drift report holds a non-finite figure (stored as null) stays readable and settled', async () => {
    const { store, status, watcher, conversions } = setup('drift');
    // A real report, from a real conversion.
    const good = await writeUpload(store, 'drift', model, { options: { quantize: 'float16' } });
    await watcher().pollOnce();
    const report = (await readStatus(store, good.uploadId))!.report!;
    expect(report.passed).toBe(true);
    conversions.length = 0;

    // The same model failed with an infinite drift (a NaN output): written as the consumer does, and as JSON alone would.
    const written = await writeUpload(store, 'drift', model);
    const failed = { ...written.status, state: 'failed' as const, attempts: 1, code: 'tolerance_exceeded' as const, reason: 'converted model drifts too far: relative error Infinity' };
    await writeStatus(store, { ...failed, report: { ...report, maxAbsError: Number.POSITIVE_INFINITY, relativeError: Number.NaN, passed: false } });
    const other = await writeUpload(store, 'drift', model);
    await putJson(store, uploadKeys.status(other.uploadId), { ...failed, id: other.uploadId, report: { ...report, maxAbsError: null, relativeError: null, passed: false } });

    for (const id of [written.uploadId, other.uploadId]) {
      const answer = await status(id);
      expect(answer.code).toBe(200);
      expect(answer.body).toMatchObject({ id, state: 'failed', code: 'tolerance_exceeded', attempts: 1, reason: failed.reason });
      expect(answer.body.report).toBeUndefined();
    }
    await watcher().pollOnce();
    expect(conversions).toEqual([]);
  });

  it('a converting upload shows its lease, and a hint once its holder stopped renewing it', async () => {
    const { store, status } = setup('lease');
    const written = await writeUpload(store, 'lease', model);
    await writeStatus(store, { ...written.status, state: 'converting', attempts: 1 });
    const claim = await claimUpload(store, written.uploadId, 'w1#1', 60_000);
    if (!('lease' in claim)) throw new Error('expected the lease');
    const live = await status(written.uploadId);
    expect(live.body).toMatchObject({ state: 'converting', lease: { owner: 'w1#1', expiresInMs: expect.any(Number), renewed: expect.any(String) } });
    expect(live.body.lease.expiresInMs).toBeGreaterThan(50_000);
    expect(live.body.hint).toBeUndefined();
    await claim.lease.release(); // a holder that dies leaves an expired lease, as a released one reads
    await putJson(store, uploadKeys.claim(written.uploadId), { owner: 'w1#1', expires: Date.now() - 5_000, taken: '' });
    expect((await status(written.uploadId)).body.hint).toMatch(/^w1#1 stopped renewing its lease 5 s ago \(crashed\?\): the next converter to look at it takes the upload over/);
  });

  it('an unreadable status: 503 naming the document; the next conversion rewrites it', async () => {
    const { store, status, watcher, conversions } = setup('torn');
    const written = await writeUpload(store, 'torn', model);
    await store.put(uploadKeys.status(written.uploadId), '{"state": "publ');
    const torn = await status(written.uploadId);
    expect(torn.code).toBe(503);
    expect(torn.body.error).toMatch(/^status\/uploads\/\S+\.json is not a valid upload status \(not JSON: .*\); the converter rewrites it on its next attempt$/);
    await putJson(store, uploadKeys.status(written.uploadId), { ...written.status, state: 'nonsense' });
    expect((await status(written.uploadId)).body.error).toMatch(/is not a valid upload status \(state: .*"published"/);

    await watcher().pollOnce();
    expect(conversions).toHaveLength(1);
    expect(await status(written.uploadId)).toMatchObject({ code: 200, body: { state: 'published', version: 1, attempts: 1 } });
  });
});
