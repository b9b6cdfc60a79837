// The upload layout and its documents, shared by every writer (admin API, `edgeflow train
// --upload`, tests, a user's own S3 client) and every consumer (Workers queue, `edgeflow watch`):
//   uploads/<name>/<uploadId>/<files...>              the raw model files, written first
//   uploads/<name>/<uploadId>/edgeflow-upload.json    the manifest, written LAST: its creation
//                                                     is the trigger (consumers ignore other keys)
//   status/uploads/<uploadId>.json                    queued / converting / published / failed
//   status/uploads/<uploadId>.claim                   the lease of the consumer converting it
//   status/uploads/<uploadId>.dead-letter             written once when its failure went to the dead-letter queue
// Upload ids are unique across models (time stamp + 64 random bits), so a status is found
// by id alone. Status documents live outside uploads/ so writing them fires no notification.
import * as z from 'zod';
import { hex } from '../bytes.ts';
import { AccuracyReport } from '../schemas/edgeflow-json.ts';
import { checkModelName } from '../names.ts';
import { checkKey, type ObjectStore } from '../store/types.ts';
import { getJson, getText, putJson } from '../store/util.ts';
import { ConversionError, describeZodError, EdgeflowError, ERROR_CODES } from '../errors.ts';
import { ConversionOptions } from '../options/conversion.ts';

export const MANIFEST_FILE = 'edgeflow-upload.json';
export const UPLOAD_ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{16}$/;

export const uploadKeys = {
  file: (name: string, uploadId: string, file: string) => `uploads/${checkModelName(name)}/${checkUploadId(uploadId)}/${checkKey(file)}`,
  manifest: (name: string, uploadId: string) => `uploads/${checkModelName(name)}/${checkUploadId(uploadId)}/${MANIFEST_FILE}`,
  status: (uploadId: string) => `status/uploads/${checkUploadId(uploadId)}.json`,
  claim: (uploadId: string) => `status/uploads/${checkUploadId(uploadId)}.claim`,
  deadLetter: (uploadId: string) => `status/uploads/${checkUploadId(uploadId)}.dead-letter`,
};

/** A problem with the upload itself (not the model): the message says what to fix. */
export class UploadError extends ConversionError {
  constructor(message: string) {
    super(message, 'bad_request');
    this.name = 'UploadError';
  }
}

export function checkUploadId(id: string): string {
  if (!UPLOAD_ID_PATTERN.test(id)) throw new UploadError(`invalid upload id ${JSON.stringify(id)}: expected e.g. 20261129T165012Z-3f9a1c0b5e7d2a46`);
  return id;
}

/** A new upload id that sorts by time: 20261129T165012Z-3f9a1c0b5e7d2a46. */
export function newUploadId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const random = crypto.getRandomValues(new Uint8Array(8));
  return `${stamp}-${hex(random)}`;
}

/** `uploads/<name>/<uploadId>/edgeflow-upload.json` → its parts; null for any other key. */
export function parseManifestKey(key: string): { name: string; uploadId: string } | null {
  const match = /^uploads\/([^/]+)\/([^/]+)\/edgeflow-upload\.json$/.exec(key);
  if (!match) return null;
  try {
    return { name: checkModelName(match[1]!), uploadId: checkUploadId(match[2]!) };
  } catch {
    return null;
  }
}

export const UploadManifest = z.object({
  edgeflowUpload: z.literal(1),
  name: z.string(),
  uploadId: z.string(),
  created: z.string(),
  /** Who wrote it: admin-api, train, cli, a user's script. */
  source: z.string().optional(),
  files: z.array(z.object({ path: z.string(), size: z.number().int().nonnegative() })).min(1),
  options: ConversionOptions.default({}),
});
export type UploadManifest = z.infer<typeof UploadManifest>;

export const UploadState = z.enum(['queued', 'converting', 'published', 'failed']);
export type UploadState = z.infer<typeof UploadState>;

export const UploadStatus = z.object({
  id: z.string(),
  name: z.string(),
  state: UploadState,
  created: z.string(),
  updated: z.string(),
  files: z.array(z.object({ path: z.string(), size: z.number() })),
  options: ConversionOptions,
  /** Conversions started for this upload: the first, and one per retry after a failure. */
  attempts: z.number().int().nonnegative(),
  /** Conversions taken over from a holder that died mid-way (its lease lapsed): not attempts. */
  takeovers: z.number().int().nonnegative().optional(),
  /** Set while a transient failure waits for its retry. */
  lastError: z.string().optional(),
  /** failed, or lastError: the error's code (shared/errors.ts). */
  code: z.enum(ERROR_CODES).optional(),
  /** published: */
  version: z.number().int().positive().optional(),
  existing: z.boolean().optional(),
  sizes: z.object({ source: z.number(), float32: z.number(), converted: z.number() }).optional(),
  quantization: z.record(z.string(), z.number()).optional(),
  report: AccuracyReport.optional(),
  timings: z.record(z.string(), z.number()).optional(),
  /** failed: what the user can do about it. */
  reason: z.string().optional(),
  /** Milliseconds from the upload's creation to the version being visible. */
  latencyMs: z.number().optional(),
  /** Who converted it (a queue consumer isolate or a watcher process). */
  convertedBy: z.string().optional(),
});
export type UploadStatus = z.infer<typeof UploadStatus>;

/** Checks conversion options as given by a user (query / form fields / CLI); 400-worthy errors. */
export function checkConversionOptions(options: ConversionOptions): ConversionOptions {
  const parsed = ConversionOptions.safeParse(options);
  if (!parsed.success) throw new UploadError(describeZodError(parsed.error, 'options'));
  return parsed.data;
}

/** A file name inside an upload: relative, no '..', not the manifest's name. */
export function checkUploadPath(path: string): string {
  try {
    checkKey(path);
  } catch (error) {
    throw new UploadError(`file name ${JSON.stringify(path)}: ${(error as Error).message}`);
  }
  if (path === MANIFEST_FILE) throw new UploadError(`file name ${MANIFEST_FILE} is reserved for the upload manifest`);
  return path;
}

export interface WriteUploadOptions {
  options?: ConversionOptions;
  uploadId?: string;
  source?: string;
  /** Write a `queued` status first (default true); a consumer writes one anyway when absent. */
  writeStatus?: boolean;
  now?: Date;
}

export interface WrittenUpload {
  uploadId: string;
  name: string;
  manifestKey: string;
  /** Of the manifest: what an event notification for it carries. */
  manifestSize: number;
  manifestEtag: string;
  status: UploadStatus;
}

/**
 * Writes an upload: every file, then (when asked) its `queued` status, then the manifest LAST.
 * The manifest's creation is what triggers a conversion, so a consumer never sees half an upload.
 */
export async function writeUpload(store: ObjectStore, name: string, files: Map<string, Uint8Array>, options: WriteUploadOptions = {}): Promise<WrittenUpload> {
  checkModelName(name);
  if (files.size === 0) throw new UploadError('no files: send a .zip, .h5 or .keras file, or model.json with its weight files');
  const conversion = checkConversionOptions(options.options ?? {});
  const uploadId = checkUploadId(options.uploadId ?? newUploadId(options.now));
  const created = (options.now ?? new Date()).toISOString();
  const listed = [...files].map(([path, bytes]) => ({ path: checkUploadPath(path), size: bytes.byteLength }));

  await Promise.all(
    [...files].map(([path, bytes]) => store.put(uploadKeys.file(name, uploadId, path), bytes, { contentType: path.endsWith('.json') ? 'application/json' : 'application/octet-stream' })),
  );
  const status: UploadStatus = { id: uploadId, name, state: 'queued', created, updated: created, files: listed, options: conversion, attempts: 0 };
  if (options.writeStatus ?? true) await writeStatus(store, status);
  const manifest: UploadManifest = { edgeflowUpload: 1, name, uploadId, created, ...(options.source ? { source: options.source } : {}), files: listed, options: conversion };
  const written = await putJson(store, uploadKeys.manifest(name, uploadId), manifest, { ifNoneMatch: '*' });
  return { uploadId, name, manifestKey: uploadKeys.manifest(name, uploadId), manifestSize: written.size, manifestEtag: written.etag, status };
}

export async function readManifest(store: ObjectStore, name: string, uploadId: string): Promise<UploadManifest | null> {
  const found = await getJson(store, uploadKeys.manifest(name, uploadId)).catch((error: Error) => {
    throw new UploadError(error.message);
  });
  if (!found) return null;
  const parsed = UploadManifest.safeParse(found.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UploadError(`${uploadKeys.manifest(name, uploadId)} is not a valid upload manifest: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  if (parsed.data.name !== name || parsed.data.uploadId !== uploadId)
    throw new UploadError(`${uploadKeys.manifest(name, uploadId)} names another upload (${parsed.data.name}/${parsed.data.uploadId})`);
  for (const file of parsed.data.files) checkUploadPath(file.path);
  return parsed.data;
}

/** A status document that exists but cannot be read (not ours, or torn): the consumer rewrites it. */
export class InvalidStatusError extends EdgeflowError {
  constructor(key: string, problem: string) {
    super('unavailable', `${key} is not a valid upload status (${problem}); the converter rewrites it on its next attempt`);
    this.name = 'InvalidStatusError';
  }
}

/**
 * A status document as stored (JSON) → the status. Optional parts that fail their schema are
 * dropped (a drift report with a NaN figure, stored as null), so an upload never vanishes
 * behind one bad field; a document whose core (state, attempts, ...) is unreadable throws.
 */
export function parseStatus(key: string, value: unknown): UploadStatus {
  const parsed = UploadStatus.safeParse(value);
  if (parsed.success) return parsed.data;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const kept: Record<string, unknown> = { ...value };
    for (const issue of parsed.error.issues) {
      const field = issue.path[0];
      if (typeof field === 'string' && UploadStatus.shape[field as keyof typeof UploadStatus.shape]?.safeParse(undefined).success) delete kept[field];
    }
    const salvaged = UploadStatus.safeParse(kept);
    if (salvaged.success) return salvaged.data;
  }
  throw new InvalidStatusError(key, describeZodError(parsed.error, 'status'));
}

/** The upload's status; null when it has none (yet). Throws InvalidStatusError for an unreadable one. */
export async function readStatus(store: ObjectStore, uploadId: string): Promise<UploadStatus | null> {
  const key = uploadKeys.status(uploadId);
  const found = await getText(store, key);
  if (!found) return null;
  let value: unknown;
  try {
    value = JSON.parse(found.text);
  } catch (error) {
    throw new InvalidStatusError(key, `not JSON: ${(error as Error).message}`);
  }
  return parseStatus(key, value);
}

/** Writes the status as readStatus will read it back (non-finite figures, stored as null, are dropped with their part). */
export async function writeStatus(store: ObjectStore, status: UploadStatus): Promise<UploadStatus> {
  const key = uploadKeys.status(status.id);
  const stored = parseStatus(key, JSON.parse(JSON.stringify(status)));
  await putJson(store, key, stored);
  return stored;
}

/** The R2 event notification message (and what the local paths send in its place). */
export interface UploadEvent {
  account: string;
  action: string;
  bucket: string;
  object: { key: string; size?: number; eTag?: string };
  eventTime: string;
  copySource?: { bucket: string; object: string };
}

/** The message an R2 object-create notification would carry for this upload's manifest. */
export function uploadEvent(upload: Pick<WrittenUpload, 'manifestKey' | 'manifestSize' | 'manifestEtag'>, bucket: string, account = 'local'): UploadEvent {
  return { account, action: 'PutObject', bucket, object: { key: upload.manifestKey, size: upload.manifestSize, eTag: upload.manifestEtag }, eventTime: new Date().toISOString() };
}
