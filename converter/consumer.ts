// The one consumer of upload events, runtime-neutral: the Workers queue() handler
// (functions/queue.ts) and `edgeflow watch` (converter/watcher.ts) both call consumeUploadEvent
// with the R2 event notification message shape. Per event:
//   ignore keys other than an upload manifest; skip uploads already published or failed (the
//   status document decides, not the caller's memory); take the upload's lease
//   (shared/bucket/claim.ts, renewed while converting); count an attempt, or a takeover when the
//   last holder died mid-conversion (not the upload's fault); read the manifest and files; refuse models
//   too large for this runtime; set its calibration files apart (calibration/..., calibration.json);
//   convert with them, verify, publish with sourceId = uploadId (a redelivery
//   publishes nothing twice); record the status. The caller maps the outcome to ack / retry /
//   dead-letter. Store errors are retried with backoff inside (RetryingStore); what still fails
//   is `retry` until the last delivery, then `failed`. Permanent vs transient: by error code, here only.
import { hex } from '../shared/bytes.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { dtypeCounts } from '../shared/bucket/published.ts';
import { claimUpload, MAX_LEASE_MS } from '../shared/bucket/claim.ts';
import { DEFAULT_LEASE_MS } from '../shared/options/serving.ts';
import { convertModel, publishConverted, ToleranceError, type ConvertOptions, type ConvertProgress, type ConvertResult, type PublishedConversion } from './convert.ts';
import { ConversionError, isEdgeflowError, type ErrorCode } from '../shared/errors.ts';
import type { DecodedModel, FileSet } from './model.ts';
import { DEFAULT_LIMITS, WORKER_LIMITS, type ConversionLimits } from './limits.ts';
import { pacer } from './pace.ts';
import { readModel } from './read/index.ts';
import { takeCalibrationFiles, type CalibrationFile } from './calibration-files.ts';
import { RetryingStore, DEFAULT_RETRY_DELAYS_MS } from '../shared/store/retrying.ts';
import { InvalidStatusError, parseManifestKey, readManifest, readStatus, uploadKeys, writeStatus, type UploadEvent, type UploadManifest, type UploadStatus } from '../shared/bucket/uploads.ts';

export interface ConsumerLimits {
  /** Largest upload (sum of its files) this runtime converts. */
  maxSourceBytes: number;
  /** Largest model, as float32 weights, this runtime converts (a conversion holds ~3x this). */
  maxFloat32Bytes: number;
  /** The reading budgets (archives, JSON, shapes) of this runtime: converter/limits.ts. */
  read: ConversionLimits;
}

/**
 * Sized for a 128 MB Workers isolate. Measured in workerd: converting MobileNetV2 (10 MiB of
 * float32 weights) leaves a 69 MiB wasm heap (two loads and calibration runs), and the JS side
 * holds the source, the decoded float32 weights and the shards meanwhile (~25 MB).
 */
export const WORKER_CONSUMER_LIMITS: ConsumerLimits = { maxSourceBytes: 32 * 2 ** 20, maxFloat32Bytes: 12 * 2 ** 20, read: WORKER_LIMITS };
export const UNLIMITED: ConsumerLimits = { maxSourceBytes: Infinity, maxFloat32Bytes: Infinity, read: DEFAULT_LIMITS };

export interface ConsumerOptions {
  store: ObjectStore;
  /** Starts the TF.js backend (wasm) once; called before the first conversion. */
  ensureBackend: () => Promise<unknown>;
  /** Who converts: a Worker isolate or a watcher process (a per-call suffix is added). */
  owner: string;
  limits?: Partial<ConsumerLimits>;
  /** This delivery's number, from 1 (Queues' message.attempts); absent (the watcher): the status's attempts count. */
  attempt?: number;
  /** Deliveries (or, without `attempt`, attempts) allowed in all; at the last one a transient failure is final. */
  maxDeliveries?: number;
  /** Lease length (default DEFAULT_LEASE_MS); renewed every third of it while converting. */
  leaseMs?: number;
  retryDelaysMs?: readonly number[];
  /** Called when a version was published or a label moved (to drop cached index.json). */
  onPublished?: (name: string, version: number) => void;
  log?: (line: string) => void;
  /** Takeovers of conversions that died without an outcome before an upload is failed (default DEFAULT_MAX_TAKEOVERS). */
  maxTakeovers?: number;
  /** Calibration samples (fewer is faster; default the converter's). */
  samples?: number;
  /** Runs the conversion (default convertModel, in this thread; on Node, converter/isolated.ts's worker thread). */
  convert?: (input: DecodedModel, options: ConvertOptions) => Promise<ConvertResult>;
}

export type ConsumeOutcome =
  | { kind: 'ignored'; reason: string }
  /** Published now or earlier (a redelivery): ack. */
  | { kind: 'done'; uploadId: string; name: string; version: number; existing: boolean }
  /** Permanent: status says why; ack and send to the dead-letter queue. `earlier`: the status said so already. */
  | { kind: 'failed'; uploadId?: string; reason: string; earlier?: boolean }
  /** Transient, or another consumer holds the lease: deliver again later. */
  | { kind: 'retry'; uploadId: string; reason: string; delaySeconds: number; busy?: boolean };

const TOO_LARGE_HINT = 'run `npx edgeflow convert <file> --name <name> --out s3://<bucket>` on Node (with AWS_ENDPOINT_URL set for R2), which publishes the same way';

/** Error codes retrying cannot help with: the upload is failed at once. Any other error is transient. */
const PERMANENT_CODES: readonly ErrorCode[] = ['bad_request', 'unconvertible', 'tolerance_exceeded'];

const isPermanent = (error: unknown): boolean => isEdgeflowError(error, ...PERMANENT_CODES);

/** The code recorded in a status for an error: its own, or `unavailable` for anything that is no EdgeflowError (a store failing). */
const errorCode = (error: unknown): ErrorCode => (isEdgeflowError(error) ? error.code : 'unavailable');

/** Conversions of one upload that may die mid-way (a crashed watcher, a Worker past its limits) before it is failed. */
export const DEFAULT_MAX_TAKEOVERS = 10;

function randomSuffix(): string {
  return hex(crypto.getRandomValues(new Uint8Array(4)));
}

/** ConsumerOptions with every default filled in (resolveConsumerOptions). */
type ResolvedConsumerOptions = Required<Omit<ConsumerOptions, 'limits' | 'onPublished' | 'samples' | 'attempt' | 'convert'>> &
  Pick<ConsumerOptions, 'onPublished' | 'samples' | 'attempt' | 'convert'> & { limits: ConsumerLimits };

/** The one place the consumer's defaults are merged. */
function resolveConsumerOptions(options: ConsumerOptions): ResolvedConsumerOptions {
  return {
    ...options,
    limits: { ...UNLIMITED, ...options.limits },
    maxDeliveries: options.maxDeliveries ?? Infinity,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    retryDelaysMs: options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
    log: options.log ?? (() => {}),
    maxTakeovers: options.maxTakeovers ?? DEFAULT_MAX_TAKEOVERS,
  };
}

/** One upload being consumed: who it is, where it lives, and its status document as last written. */
interface UploadJob {
  key: string;
  name: string;
  uploadId: string;
  options: ResolvedConsumerOptions;
  /** The caller's store behind retries with backoff. */
  store: ObjectStore;
  status: UploadStatus | null;
}

type Claim = Awaited<ReturnType<typeof claimUpload>>;

/** Step parse event: the upload an R2 event notification names, or why the event is ignored. */
function parseEvent(message: unknown): { key: string; name: string; uploadId: string } | ConsumeOutcome {
  const event = message as Partial<UploadEvent> | null;
  const key = event?.object?.key;
  if (typeof key !== 'string') return { kind: 'ignored', reason: 'not an R2 event notification (no object.key)' };
  if (event?.action && !/^(PutObject|CopyObject|CompleteMultipartUpload)$/.test(event.action)) return { kind: 'ignored', reason: `action ${event.action}` };
  const parsed = parseManifestKey(key);
  if (!parsed) return { kind: 'ignored', reason: `${key} is not an upload manifest` };
  return { key, ...parsed };
}

/** Writes a change to the job's status document (stamped with the time). */
async function record(job: UploadJob, change: Partial<UploadStatus>): Promise<void> {
  job.status = await writeStatus(job.store, { ...job.status!, ...change, updated: new Date().toISOString() });
}

/** The attempt a failure counts against: the queue's delivery, else the status's attempts. */
const attemptOf = (job: UploadJob): number => job.options.attempt ?? job.status?.attempts ?? 0;

/** Step skip settled: re-reads the status; the outcome of an upload already published or failed, null when it still needs converting. */
async function skipSettled(job: UploadJob): Promise<ConsumeOutcome | null> {
  try {
    job.status = await readStatus(job.store, job.uploadId);
  } catch (error) {
    if (!(error instanceof InvalidStatusError)) throw error;
    // Not ours or torn: converting rewrites it from the manifest.
    job.options.log(`${job.uploadId}: ${error.message}`);
    job.status = null;
  }
  const current = job.status;
  if (current?.state === 'published' && current.version) return { kind: 'done', uploadId: job.uploadId, name: job.name, version: current.version, existing: true };
  if (current?.state === 'failed') return { kind: 'failed', uploadId: job.uploadId, reason: current.reason ?? 'failed earlier', earlier: true };
  return null;
}

/**
 * The lease for this conversion: doubled with each takeover (up to MAX_LEASE_MS). A conversion
 * blocks its thread, heartbeats included, so one longer than the lease is taken over by another
 * consumer although its holder lives; with the lease doubling, such takeovers stop once it
 * outlasts the conversion instead of passing the upload around until maxTakeovers.
 */
function leaseFor(job: UploadJob): number {
  const status = job.status;
  const takeovers = status?.state === 'converting' ? (status.takeovers ?? 0) + 1 : 0;
  return Math.min(job.options.leaseMs * 2 ** takeovers, Math.max(job.options.leaseMs, MAX_LEASE_MS));
}

/** Step lease: takes the upload's lease; a busy retry outcome when another consumer holds it. */
async function takeLease(job: UploadJob): Promise<{ lease: Claim; busy?: ConsumeOutcome }> {
  const lease = await claimUpload(job.store, job.uploadId, `${job.options.owner}#${randomSuffix()}`, leaseFor(job));
  if (!('busy' in lease)) return { lease };
  return {
    lease,
    busy: { kind: 'retry', uploadId: job.uploadId, reason: `${lease.busy.owner} is converting it`, delaySeconds: Math.min(300, Math.max(5, Math.ceil(lease.busy.expiresInMs / 1000))), busy: true },
  };
}

/**
 * Step start: the upload's manifest (null when it is gone), with the status marked converting.
 * A status still `converting` when we got the lease means its last holder died mid-conversion
 * (a killed watcher; in a Worker, usually the CPU or memory limit): a takeover, counted apart
 * from attempts, and refused past maxTakeovers, or at the queue's last delivery (a death there
 * would leave nothing to record it).
 */
async function startConversion(job: UploadJob): Promise<UploadManifest | null> {
  const { name, uploadId, options } = job;
  const manifest = await readManifest(job.store, name, uploadId);
  if (!manifest) return null;
  const now = new Date().toISOString();
  job.status ??= { id: uploadId, name, state: 'queued', created: manifest.created, updated: now, files: manifest.files, options: manifest.options, attempts: 0 };
  const takeover = job.status.state === 'converting';
  const takeovers = (job.status.takeovers ?? 0) + (takeover ? 1 : 0);
  const lastDelivery = options.attempt !== undefined && options.attempt >= options.maxDeliveries;
  if (takeover && (takeovers > options.maxTakeovers || lastDelivery)) {
    throw new ConversionError(
      `the conversion was interrupted ${takeovers} time${takeovers === 1 ? '' : 's'} without finishing (a Worker's CPU or memory limit, or a crashed watcher): ${TOO_LARGE_HINT}`,
    );
  }
  const attempts = job.status.attempts + (takeover ? 0 : 1);
  await record(job, { state: 'converting', attempts, ...(takeovers ? { takeovers } : {}), convertedBy: options.owner, lastError: undefined, code: undefined });
  options.log(`${uploadId}: converting ${name} (${manifest.files.map((f) => f.path).join(', ')}), attempt ${attempts}${takeover ? `, takeover ${takeovers}` : ''}`);
  return manifest;
}

/** Step size check (source): refuses an upload larger than this runtime converts. */
function checkSourceSize(manifest: UploadManifest, limits: ConsumerLimits): void {
  const sourceBytes = manifest.files.reduce((sum, f) => sum + f.size, 0);
  if (sourceBytes > limits.maxSourceBytes) {
    throw new ConversionError(
      `the upload is ${(sourceBytes / 2 ** 20).toFixed(1)} MiB, more than the ${(limits.maxSourceBytes / 2 ** 20).toFixed(0)} MiB this converter takes (a Worker has 128 MB of memory): ${TOO_LARGE_HINT}`,
    );
  }
}

/** Step read files: every file the manifest lists, each present and of the listed size. */
async function readUploadFiles(job: UploadJob, manifest: UploadManifest): Promise<FileSet> {
  return new Map(
    await Promise.all(
      manifest.files.map(async (file): Promise<[string, Uint8Array]> => {
        const object = await job.store.get(uploadKeys.file(job.name, job.uploadId, file.path));
        if (!object) throw new ConversionError(`${file.path} is listed in the manifest but missing from the upload: upload it again`);
        if (object.body.byteLength !== file.size) throw new ConversionError(`${file.path} has ${object.body.byteLength} bytes, the manifest says ${file.size}: upload it again`);
        return [file.path, object.body];
      }),
    ),
  );
}

/** Step size check (float32): refuses a model whose float32 weights are larger than this runtime converts. */
function checkFloat32Size(decoded: DecodedModel, limits: ConsumerLimits): void {
  const float32 = decoded.weights.reduce((sum, w) => sum + w.values.byteLength, 0);
  if (float32 > limits.maxFloat32Bytes) {
    throw new ConversionError(
      `the model has ${(float32 / 2 ** 20).toFixed(1)} MiB of float32 weights, more than the ${(limits.maxFloat32Bytes / 2 ** 20).toFixed(0)} MiB this converter takes (a Worker has 128 MB of memory): ${TOO_LARGE_HINT}`,
    );
  }
}

/**
 * Step convert: converts the decoded model with the manifest's options (defaults merged by
 * convertModel) and the upload's calibration files, in this thread or through options.convert.
 */
function convertUpload(job: UploadJob, decoded: DecodedModel, manifest: UploadManifest, calibrationFiles: CalibrationFile[], onProgress: (progress: ConvertProgress) => void) {
  return (job.options.convert ?? convertModel)(decoded, {
    ...manifest.options,
    name: job.name,
    // In this thread (a Worker's isolate): yield to requests between steps, within the time budget.
    ...(job.options.convert ? {} : { pause: pacer(job.options.limits.read.maxConvertMs, job.options.limits.read.scope, TOO_LARGE_HINT) }),
    ...(calibrationFiles.length ? { calibrationFiles } : {}),
    ...(job.options.samples ? { samples: job.options.samples } : {}),
    onProgress,
  });
}

/** Step publish: publishes with sourceId = uploadId, so a redelivered or retried publish finds its own version instead of adding one. */
async function publishUpload(job: UploadJob, converted: ConvertResult, onProgress: (progress: ConvertProgress) => void): Promise<PublishedConversion> {
  // The upload id goes into edgeflow.json's source.
  const metadata = { ...converted.metadata, source: { ...converted.metadata.source, uploadId: job.uploadId } };
  const result = await publishConverted(job.store, { ...converted, metadata }, { name: job.name, sourceId: job.uploadId, onProgress });
  job.options.onPublished?.(job.name, result.version);
  return result;
}

/** Step record status (published): the version, sizes, dtypes, report and timings. */
async function recordPublished(job: UploadJob, result: PublishedConversion): Promise<ConsumeOutcome> {
  await record(job, {
    state: 'published',
    version: result.version,
    existing: result.existing,
    sizes: result.metadata.sizes,
    quantization: dtypeCounts(result.metadata.quantization.weights),
    report: result.report,
    timings: Object.fromEntries(Object.entries(result.timings).map(([k, v]) => [k, Math.round(v)])),
    latencyMs: Date.now() - Date.parse(job.status!.created),
  });
  job.options.log(`${job.uploadId}: published ${job.name} version ${result.version}${result.existing ? ' (already published)' : ''}`);
  return { kind: 'done', uploadId: job.uploadId, name: job.name, version: result.version, existing: result.existing };
}

/** Step record status (failure): permanent errors (by code) and the last delivery fail the upload; anything else is retried. */
async function recordFailure(job: UploadJob, error: unknown): Promise<ConsumeOutcome> {
  const { store, uploadId, name, options } = job;
  const { log } = options;
  const attempt = attemptOf(job);
  const message = (error as Error).message;
  const code = errorCode(error);
  const permanent = isPermanent(error);
  if (permanent || attempt >= options.maxDeliveries) {
    const reason = permanent ? message : `gave up after ${attempt} ${options.attempt === undefined ? 'attempts' : 'deliveries'}: ${message}`;
    log(`${uploadId}: failed: ${reason}`);
    if (job.status) await record(job, { state: 'failed', reason, code, ...(error instanceof ToleranceError ? { report: error.report } : {}) }).catch(() => undefined);
    else {
      const now = new Date().toISOString();
      await writeStatus(store, { id: uploadId, name, state: 'failed', created: now, updated: now, files: [], options: {}, attempts: 1, reason, code }).catch(() => undefined);
    }
    return { kind: 'failed', uploadId, reason };
  }
  log(`${uploadId}: attempt ${attempt} failed, will retry: ${message}`);
  if (job.status) await record(job, { state: 'queued', lastError: message, code }).catch(() => undefined);
  return { kind: 'retry', uploadId, reason: message, delaySeconds: Math.min(300, 5 * 2 ** Math.max(0, attempt - 1)) };
}

/** Consumes one upload event: the steps above in order; the outcome tells the caller to ack, retry or dead-letter. */
export async function consumeUploadEvent(message: unknown, given: ConsumerOptions): Promise<ConsumeOutcome> {
  const parsed = parseEvent(message);
  if ('kind' in parsed) return parsed;
  const options = resolveConsumerOptions(given);
  const { uploadId } = parsed;
  const store = new RetryingStore(options.store, options.retryDelaysMs, (operation, k, error, n) => options.log(`${uploadId}: ${operation} ${k} failed (${error.message}); retry ${n}`));
  const job: UploadJob = { ...parsed, options, store, status: null };

  let lease: Claim | null = null;
  try {
    const before = await skipSettled(job);
    if (before) return before;
    const taken = await takeLease(job);
    lease = taken.lease;
    if (taken.busy) return taken.busy;
    // Re-read under the lease: the previous holder may have finished in between.
    const meanwhile = await skipSettled(job);
    if (meanwhile) return meanwhile;

    const manifest = await startConversion(job);
    if (!manifest) return { kind: 'ignored', reason: `${job.key} is gone` };
    checkSourceSize(manifest, options.limits);
    const files = await readUploadFiles(job, manifest);
    await options.ensureBackend();
    const calibrationFiles = takeCalibrationFiles(files);
    const decoded = await readModel(files, options.limits.read);
    files.clear();
    checkFloat32Size(decoded, options.limits);

    const onProgress = ({ stage, detail }: ConvertProgress) => options.log(`${uploadId}: ${stage} ${detail}`);
    const converted = await convertUpload(job, decoded, manifest, calibrationFiles, onProgress);
    // Stalled past the lease (another consumer took the upload over): leave the publish to it.
    if ('lease' in lease && !(await lease.lease.renew())) return { kind: 'retry', uploadId, reason: 'lost the lease while converting', delaySeconds: 30, busy: true };
    return await recordPublished(job, await publishUpload(job, converted, onProgress));
  } catch (error) {
    // Overtaken while it failed (it stalled past its lease): the status is the new holder's to write.
    if (lease && 'lease' in lease && !(await lease.lease.renew()))
      return { kind: 'retry', uploadId, reason: `lost the lease while converting: ${(error as Error).message}`, delaySeconds: 30, busy: true };
    return recordFailure(job, error);
  } finally {
    if (lease && 'lease' in lease) await lease.lease.release();
  }
}
