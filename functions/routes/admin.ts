// Admin API (Bearer token, functions/auth.ts), the same on Workers and Node:
//   POST   /admin/models/{name}/uploads          one file (.zip / .h5 / .keras) as the body, or
//                                                multipart (model.json + shards); options as query
//                                                or form fields: quantize, shardSize, tolerance, minSnr (dB), keepBatchNorm, equalize,
//                                                labels (names, newline- or comma-separated; or a
//                                                labels.txt file part), image (HxW[,scale=..]);
//                                                `calibration` file parts (one .json / .npy, or
//                                                PNG / JPEG images), stored under calibration/ → 202
//   GET    /admin/uploads/{id}                    queued | converting (with its lease) | published | failed
//   GET    /admin/models                          names, versions, labels
//   GET    /admin/models/{name}                   versions, labels, sizes, quantization, drift, training
//   PUT    /admin/models/{name}/labels/{label}    {"version": n}  (rollback = move `stable` back)
//   DELETE /admin/models/{name}/labels/{label}
//   DELETE /admin/models/{name}/versions/{v}      409 while a label other than `latest` points at it
// An upload is written with shared/bucket/uploads.ts writeUpload (manifest last); then `notify`
// (when set) sends the R2 event message for the manifest: the upload queue on Workers (always,
// wrangler dev or deployed; a second message from an R2 event notification is harmless, the
// consumer is idempotent), the in-process watcher on Node. An upload still `queued`
// requeueAfterMs after its last status change is sent again when its status is read (at most
// once per requeueAfterMs per isolate), and its status carries a `hint` saying what to check;
// a `converting` one shows its lease, and a hint when its holder stopped renewing it.
import { Hono, type Context } from 'hono';
import { ConversionOptions, parseByteSize, resolveConversionOptions } from '../../shared/options/conversion.ts';
import { parseImageSpec, parseLabels } from '../../shared/options/image-spec.ts';
import { checkUploadId, readStatus, uploadEvent, uploadKeys, writeUpload, type UploadEvent, type UploadStatus } from '../../shared/bucket/uploads.ts';
import { readLease } from '../../shared/bucket/claim.ts';
import { CALIBRATION_FOLDER, checkCalibrationFiles, isCalibrationPath } from '../../shared/bucket/calibration.ts';
import { deleteVersion, describeModel, listModels, removeLabel, setLabel } from '../../shared/bucket/versions.ts';
import { checkModelName, type InvalidNameError, parseVersion } from '../../shared/names.ts';
import type { AppEnv } from '../app-env.ts';
import { bearerAuth } from '../auth.ts';
import { limitBody, readBody, readJsonBody } from '../body.ts';
import { clipMessage } from '../http-errors.ts';
import { badRequest, describeZodError, notFound } from '../../shared/errors.ts';
import type { ObjectStore } from '../../shared/store/types.ts';

export interface AdminOptions {
  /** EDGEFLOW_ADMIN_TOKEN; absent → the admin API refuses every request. */
  token?: string;
  /** Largest upload body (413 beyond). */
  maxUploadBytes?: number;
  /** Sends the manifest's event (the local paths); absent when bucket notifications do it. */
  notify?: (event: UploadEvent) => Promise<void>;
  /** Bucket name put in locally sent events. */
  bucket?: string;
  /** How the upload will be converted, told in the 202 answer. */
  converter?: string;
  /** A `queued` upload this long after its last status change is sent again (default 60 s). */
  requeueAfterMs?: number;
  /** What to check when an upload stays queued, told in its status' hint. */
  stuckHint?: string;
}

export const DEFAULT_REQUEUE_AFTER_MS = 60_000;

/** Workers accept request bodies up to 100 MB (Free and Pro plans). */
export const DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46];

function guessFileName(bytes: Uint8Array): string {
  if (HDF5_MAGIC.every((b, i) => bytes[i] === b)) return 'model.h5';
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return 'model.zip';
  if (bytes[0] === 0x7b) return 'model.json';
  return 'model.bin';
}

function contentDispositionName(header: string | undefined): string | undefined {
  return header ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header)?.[1] : undefined;
}

function parseOptions(fields: Map<string, string>): ConversionOptions {
  const options: ConversionOptions = {};
  const quantize = fields.get('quantize');
  if (quantize) options.quantize = quantize;
  const shard = fields.get('shardSize') ?? fields.get('shard_size') ?? fields.get('shard-size');
  if (shard) {
    try {
      options.shardBytes = parseByteSize(shard);
    } catch (error) {
      throw badRequest(`shardSize: ${(error as Error).message}`);
    }
  }
  const tolerance = fields.get('tolerance');
  if (tolerance !== undefined && tolerance !== '') {
    const value = Number(tolerance);
    if (!Number.isFinite(value) || value < 0) throw badRequest(`tolerance: a number ≥ 0 is required, got ${JSON.stringify(tolerance)}`);
    options.tolerance = value;
  }
  const minSnr = fields.get('minSnr') ?? fields.get('minSnrDb');
  if (minSnr !== undefined && minSnr !== '') {
    const value = Number(minSnr);
    if (!Number.isFinite(value)) throw badRequest(`minSnr: a number of dB is required, got ${JSON.stringify(minSnr)}`);
    options.minSnrDb = value;
  }
  for (const flag of ['keepBatchNorm', 'equalize'] as const) {
    const value = fields.get(flag);
    if (value === undefined || value === '') continue;
    if (!/^(true|false)$/.test(value)) throw badRequest(`${flag}: true or false, got ${JSON.stringify(value)}`);
    options[flag] = value === 'true';
  }
  const labels = fields.get('labels');
  if (labels !== undefined && labels !== '') options.labels = parseLabels(labels, { commas: true });
  const image = fields.get('image');
  if (image !== undefined && image !== '') options.image = parseImageSpec(image, 'image');
  const format = fields.get('format');
  if (format) options.format = format as ConversionOptions['format'];
  // The one schema of conversion options decides what is valid (quantize specs, formats, ranges).
  const checked = ConversionOptions.safeParse(options);
  if (!checked.success) throw badRequest(describeZodError(checked.error, 'options'));
  return checked.data;
}

/** The files and option fields of an upload request. */
async function readUpload(c: Context): Promise<{ files: Map<string, Uint8Array>; fields: Map<string, string> }> {
  const fields = new Map(Object.entries(c.req.query()));
  const bytes = await readBody(c, 'upload', 'the body is empty: send the model file, or multipart form data with model.json and its shards');
  const type = c.req.header('content-type') ?? '';
  const files = new Map<string, Uint8Array>();
  if (/^multipart\/form-data/i.test(type)) {
    let form: FormData;
    try {
      form = await new Request('http://upload/', { method: 'POST', headers: { 'content-type': type }, body: bytes }).formData();
    } catch (error) {
      throw badRequest(`upload: unreadable multipart body (${(error as Error).message})`);
    }
    for (const [field, value] of form.entries()) {
      if (typeof value === 'string') fields.set(field, value);
      else {
        const name = value.name && value.name !== 'blob' ? value.name : field;
        // Calibration parts go under calibration/, where the converter looks for them.
        const path = field === 'calibration' ? `${CALIBRATION_FOLDER}/${name.split('/').pop()}` : name;
        if (files.has(path)) throw badRequest(`upload: two files named ${path}`);
        files.set(path, new Uint8Array(await value.arrayBuffer()));
      }
    }
    checkCalibrationFiles([...files.keys()].filter(isCalibrationPath));
  } else if (bytes.byteLength > 0) {
    const name = fields.get('filename') ?? contentDispositionName(c.req.header('content-disposition')) ?? guessFileName(bytes);
    fields.delete('filename');
    files.set(name.split('/').pop()!, bytes);
  }
  // Class names as a labels.txt part beside the model files (Teachable Machine's export).
  const labelsFile = files.get('labels.txt');
  if (labelsFile && files.size > 1 && !fields.has('labels')) {
    fields.set('labels', new TextDecoder().decode(labelsFile));
    files.delete('labels.txt');
  }
  if (files.size === 0) throw badRequest('upload: no file: send a .zip, .h5 or .keras file as the body, or multipart form data with model.json and its weight files');
  if ([...files.keys()].every(isCalibrationPath)) throw badRequest('upload: only calibration files: send the model file(s) beside them');
  return { files, fields };
}

function checkName(name: string): string {
  try {
    return checkModelName(name);
  } catch (error) {
    throw badRequest((error as InvalidNameError).message);
  }
}

function versionParam(text: string): number {
  const version = parseVersion(text);
  if (version === null) throw badRequest(`version ${JSON.stringify(text)}: a positive integer is required`);
  return version;
}

function statusView(status: UploadStatus, origin: string) {
  return {
    ...status,
    statusUrl: `${origin}/admin/uploads/${status.id}`,
    ...(status.state === 'published' && status.version ? { model: `${origin}/v1/models/${status.name}/versions/${status.version}` } : {}),
  };
}

export function adminRoutes(options: AdminOptions = {}): Hono<AppEnv> {
  const admin = new Hono<AppEnv>();
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  admin.use('/admin/*', bearerAuth(options.token));

  const uploadLimit = limitBody(maxUploadBytes, { field: 'upload', hint: 'convert larger models with `npx edgeflow convert --out s3://...` on Node' });
  admin.post('/admin/models/:name/uploads', uploadLimit, async (c) => {
    const name = checkName(c.req.param('name'));
    const { files, fields } = await readUpload(c);
    const store = c.get('runtime').store;
    const written = await writeUpload(store, name, files, { options: parseOptions(fields), source: 'admin-api' });
    let delivery = options.converter ?? (options.notify ? 'queued for the converter' : 'waiting for a converter (R2 event notification, or `edgeflow watch`)');
    if (options.notify) {
      try {
        await options.notify(uploadEvent(written, options.bucket ?? 'local'));
      } catch (error) {
        delivery = `written, but sending its event failed (${(error as Error).message}): a watcher or a redelivery will pick it up`;
      }
    }
    const origin = new URL(c.req.url).origin;
    c.header('Location', `/admin/uploads/${written.uploadId}`);
    return c.json(
      {
        ...statusView(written.status, origin),
        options: { ...resolveConversionOptions(written.status.options), ...written.status.options },
        delivery,
      },
      202,
    );
  });

  const requeueAfterMs = options.requeueAfterMs ?? DEFAULT_REQUEUE_AFTER_MS;
  const stuckHint = options.stuckHint ?? 'if it stays queued, check that a converter runs on this store (`edgeflow watch`, or `edgeflow serve --watch`)';
  /** Upload id → when this isolate last sent its event again. */
  const requeued = new Map<string, number>();

  /** Sends a stuck upload's event again (at most once per requeueAfterMs here); says what happened. */
  async function requeue(store: ObjectStore, status: UploadStatus, ageMs: number): Promise<string> {
    const waiting = `queued for ${Math.round(ageMs / 1000)} s${status.lastError ? ` (the last attempt failed: ${status.lastError})` : ''}`;
    if (!options.notify) return `${waiting} and nothing here sends uploads to a converter (${options.converter ?? 'no converter configured'}); ${stuckHint}`;
    const now = Date.now();
    const last = requeued.get(status.id);
    if (last !== undefined && now - last < requeueAfterMs) return `${waiting}: its event was sent to the converter again ${Math.round((now - last) / 1000)} s ago; ${stuckHint}`;
    const manifestKey = uploadKeys.manifest(status.name, status.id);
    const manifest = await store.head(manifestKey);
    if (!manifest) return `${waiting}, but its manifest ${manifestKey} is missing, so no converter will take it: upload the model again`;
    for (const [id, at] of requeued) if (now - at >= requeueAfterMs) requeued.delete(id);
    requeued.set(status.id, now);
    try {
      await options.notify(uploadEvent({ manifestKey, manifestSize: manifest.size, manifestEtag: manifest.etag }, options.bucket ?? 'local'));
    } catch (error) {
      return `${waiting}: sending its event to the converter again failed (${(error as Error).message}); ${stuckHint}`;
    }
    return `${waiting}: its event was sent to the converter again just now; ${stuckHint}`;
  }

  /** A converting upload's lease, and what happens when its holder stopped renewing it. */
  async function leaseView(store: ObjectStore, id: string) {
    const lease = await readLease(store, id);
    if (!lease) return {};
    const expiresInMs = lease.expires - Date.now();
    return {
      lease: { owner: lease.owner, expiresInMs, ...(lease.renewed ? { renewed: lease.renewed } : {}) },
      ...(expiresInMs < 0
        ? {
            hint: `${lease.owner} stopped renewing its lease ${Math.round(-expiresInMs / 1000)} s ago (crashed?): the next converter to look at it takes the upload over (a watcher on this store, or the queue's redelivery)`,
          }
        : {}),
    };
  }

  admin.get('/admin/uploads/:id', async (c) => {
    const id = c.req.param('id');
    try {
      checkUploadId(id);
    } catch (error) {
      throw notFound((error as Error).message);
    }
    const store = c.get('runtime').store;
    const status = await readStatus(store, id);
    if (!status) throw notFound(`no upload ${id}`);
    const view = statusView(status, new URL(c.req.url).origin);
    const ageMs = Date.now() - Date.parse(status.updated);
    if (status.state === 'queued' && ageMs >= requeueAfterMs) return c.json({ ...view, hint: await requeue(store, status, ageMs) });
    if (status.state === 'converting') return c.json({ ...view, ...(await leaseView(store, status.id)) });
    return c.json(view);
  });

  admin.get('/admin/models', async (c) => c.json({ models: await listModels(c.get('runtime').store) }));

  admin.get('/admin/models/:name', async (c) => c.json(await describeModel(c.get('runtime').store, checkName(c.req.param('name')))));

  admin.put('/admin/models/:name/labels/:label', async (c) => {
    const name = checkName(c.req.param('name'));
    const body = (await readJsonBody(c, 4096)) as { version?: unknown };
    const version = typeof body?.version === 'number' ? body.version : typeof body?.version === 'string' && /^\d+$/.test(body.version) ? Number(body.version) : NaN;
    if (!Number.isInteger(version) || version < 1) throw badRequest('body: {"version": <positive integer>} is required');
    const index = await setLabel(c.get('runtime').store, name, c.req.param('label'), version);
    c.get('runtime').invalidate(name);
    return c.json({ name, labels: index.labels });
  });

  admin.delete('/admin/models/:name/labels/:label', async (c) => {
    const name = checkName(c.req.param('name'));
    const index = await removeLabel(c.get('runtime').store, name, c.req.param('label'));
    c.get('runtime').invalidate(name);
    return c.json({ name, labels: index.labels });
  });

  admin.delete('/admin/models/:name/versions/:version', async (c) => {
    const name = checkName(c.req.param('name'));
    const version = versionParam(c.req.param('version'));
    const { index, deletedFiles } = await deleteVersion(c.get('runtime').store, name, version);
    c.get('runtime').invalidate(name);
    return c.json({ name, deleted: version, deletedFiles, versions: index.versions.map((v) => v.version), labels: index.labels });
  });

  admin.all('/admin/*', (c) => c.json({ error: clipMessage(`no admin route ${c.req.method} ${c.req.path}`) }, 404));
  return admin;
}
