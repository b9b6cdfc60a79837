// The one consumer of upload events, runtime-neutral: the Workers queue() handler
// (functions/queue.ts) and `edgeflow watch` (converter/watcher.ts) both call consumeUploadEvent
// with the R2 event notification message shape. Per event:
//   ignore keys other than an upload manifest; skip uploads already published or failed;
//   take the upload's lease (shared/bucket/claim.ts); read the manifest and files; refuse models
//   too large for this runtime; convert, verify, publish with sourceId = uploadId (a redelivery
//   publishes nothing twice); record the status. The caller maps the outcome to ack / retry /
//   dead-letter. Store errors are retried with backoff inside (RetryingStore); what still fails
//   is `retry` until the last delivery, then `failed`.
import { hex } from '../shared/bytes.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { InvalidNameError } from '../shared/names.ts';
import { dtypeCounts } from '../shared/bucket/published.ts';
import { claimUpload, DEFAULT_LEASE_MS } from '../shared/bucket/claim.ts';
import { convertModel, publishConverted, ToleranceError, type ConvertProgress } from './convert.ts';
import { ConversionError } from '../shared/errors.ts';
import type { FileSet } from './model.ts';
import { readModel } from './read/index.ts';
import { RetryingStore, DEFAULT_RETRY_DELAYS_MS } from '../shared/store/retrying.ts';
import { parseManifestKey, readManifest, readStatus, uploadKeys, writeStatus, type UploadEvent, type UploadStatus } from '../shared/bucket/uploads.ts';

export interface ConsumerLimits {
  /** Largest upload (sum of its files) this runtime converts. */
  maxSourceBytes: number;
  /** Largest model, as float32 weights, this runtime converts (a conversion holds ~3x this). */
  maxFloat32Bytes: number;
}

/**
 * Sized for a 128 MB Workers isolate. Measured in workerd: converting MobileNetV2 (10 MiB of
 * float32 weights) leaves a 69 MiB wasm heap (two loads and calibration runs), and the JS side
 * holds the source, the decoded float32 weights and the shards meanwhile (~25 MB).
 */
export const WORKER_CONSUMER_LIMITS: ConsumerLimits = { maxSourceBytes: 32 * 2 ** 20, maxFloat32Bytes: 12 * 2 ** 20 };
export const UNLIMITED: ConsumerLimits = { maxSourceBytes: Infinity, maxFloat32Bytes: Infinity };

export interface ConsumerOptions {
  store: ObjectStore;
  /** Starts the TF.js backend (wasm) once; called before the first conversion. */
  ensureBackend: () => Promise<unknown>;
  /** Who converts: a Worker isolate or a watcher process (a per-call suffix is added). */
  owner: string;
  limits?: Partial<ConsumerLimits>;
  /** This delivery's number, from 1 (Queues' message.attempts). */
  attempt?: number;
  /** Deliveries allowed in all (max_retries + 1); at the last one a transient failure is final. */
  maxDeliveries?: number;
  leaseMs?: number;
  retryDelaysMs?: readonly number[];
  /** Called when a version was published or a label moved (to drop cached index.json). */
  onPublished?: (name: string, version: number) => void;
  log?: (line: string) => void;
  /** Conversions that died without an outcome before an upload is failed (default 2). */
  maxInterrupted?: number;
  /** Calibration samples (fewer is faster; default the converter's). */
  samples?: number;
}

export type ConsumeOutcome =
  | { kind: 'ignored'; reason: string }
  /** Published now or earlier (a redelivery): ack. */
  | { kind: 'done'; uploadId: string; name: string; version: number; existing: boolean }
  /** Permanent: status says why; ack and send to the dead-letter queue. */
  | { kind: 'failed'; uploadId?: string; reason: string }
  /** Transient, or another consumer holds the lease: deliver again later. */
  | { kind: 'retry'; uploadId: string; reason: string; delaySeconds: number; busy?: boolean };

const TOO_LARGE_HINT = 'run `npx edgeflow convert <file> --name <name> --out s3://<bucket>` on Node (with AWS_ENDPOINT_URL set for R2), which publishes the same way';

function isPermanent(error: unknown): boolean {
  return error instanceof ConversionError || error instanceof InvalidNameError;
}

function randomSuffix(): string {
  return hex(crypto.getRandomValues(new Uint8Array(4)));
}

export async function consumeUploadEvent(message: unknown, options: ConsumerOptions): Promise<ConsumeOutcome> {
  const event = message as Partial<UploadEvent> | null;
  const key = event?.object?.key;
  if (typeof key !== 'string') return { kind: 'ignored', reason: 'not an R2 event notification (no object.key)' };
  if (event?.action && !/^(PutObject|CopyObject|CompleteMultipartUpload)$/.test(event.action)) return { kind: 'ignored', reason: `action ${event.action}` };
  const parsed = parseManifestKey(key);
  if (!parsed) return { kind: 'ignored', reason: `${key} is not an upload manifest` };
  const { name, uploadId } = parsed;
  const log = options.log ?? (() => {});
  const limits = { ...UNLIMITED, ...options.limits };
  const attempt = options.attempt ?? 1;
  const store = new RetryingStore(options.store, options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS, (operation, k, error, n) =>
    log(`${uploadId}: ${operation} ${k} failed (${error.message}); retry ${n}`),
  );
  const owner = `${options.owner}#${randomSuffix()}`;

  let status: UploadStatus | null = null;
  const record = async (change: Partial<UploadStatus>) => {
    status = { ...status!, ...change, updated: new Date().toISOString() };
    await writeStatus(store, status);
  };

  /** The outcome of an upload already settled (published or failed); null when it still needs converting. */
  const settled = (current: UploadStatus | null): ConsumeOutcome | null => {
    if (current?.state === 'published' && current.version) return { kind: 'done', uploadId, name, version: current.version, existing: true };
    if (current?.state === 'failed') return { kind: 'failed', uploadId, reason: current.reason ?? 'failed earlier' };
    return null;
  };

  let lease: Awaited<ReturnType<typeof claimUpload>> | null = null;
  try {
    status = await readStatus(store, uploadId);
    const before = settled(status);
    if (before) return before;

    lease = await claimUpload(store, uploadId, owner, options.leaseMs ?? DEFAULT_LEASE_MS);
    if ('busy' in lease) {
      return { kind: 'retry', uploadId, reason: `${lease.busy.owner} is converting it`, delaySeconds: Math.min(300, Math.max(5, Math.ceil(lease.busy.expiresInMs / 1000))), busy: true };
    }
    // Re-read under the lease: the previous holder may have finished in between.
    status = await readStatus(store, uploadId);
    const meanwhile = settled(status);
    if (meanwhile) return meanwhile;

    // A status still `converting` under a lapsed lease: the last holder died mid-conversion
    // (in a Worker, usually the CPU or memory limit). Do not loop on it forever.
    if (status?.state === 'converting' && status.attempts >= (options.maxInterrupted ?? 2)) {
      throw new ConversionError(`the conversion was interrupted ${status.attempts} times without finishing (a Worker's CPU or memory limit, or a crashed watcher): ${TOO_LARGE_HINT}`);
    }
    const manifest = await readManifest(store, name, uploadId);
    if (!manifest) return { kind: 'ignored', reason: `${key} is gone` };
    const now = new Date().toISOString();
    status ??= { id: uploadId, name, state: 'queued', created: manifest.created, updated: now, files: manifest.files, options: manifest.options, attempts: 0 };
    await record({ state: 'converting', attempts: status.attempts + 1, convertedBy: options.owner, lastError: undefined });
    log(`${uploadId}: converting ${name} (${manifest.files.map((f) => f.path).join(', ')}), delivery ${attempt}`);

    const sourceBytes = manifest.files.reduce((sum, f) => sum + f.size, 0);
    if (sourceBytes > limits.maxSourceBytes) {
      throw new ConversionError(
        `the upload is ${(sourceBytes / 2 ** 20).toFixed(1)} MiB, more than the ${(limits.maxSourceBytes / 2 ** 20).toFixed(0)} MiB this converter takes (a Worker has 128 MB of memory): ${TOO_LARGE_HINT}`,
      );
    }
    const files: FileSet = new Map(
      await Promise.all(
        manifest.files.map(async (file): Promise<[string, Uint8Array]> => {
          const object = await store.get(uploadKeys.file(name, uploadId, file.path));
          if (!object) throw new ConversionError(`${file.path} is listed in the manifest but missing from the upload: upload it again`);
          if (object.body.byteLength !== file.size) throw new ConversionError(`${file.path} has ${object.body.byteLength} bytes, the manifest says ${file.size}: upload it again`);
          return [file.path, object.body];
        }),
      ),
    );
    await options.ensureBackend();
    const decoded = await readModel(files);
    files.clear();
    const float32 = decoded.weights.reduce((sum, w) => sum + w.values.byteLength, 0);
    if (float32 > limits.maxFloat32Bytes) {
      throw new ConversionError(
        `the model has ${(float32 / 2 ** 20).toFixed(1)} MiB of float32 weights, more than the ${(limits.maxFloat32Bytes / 2 ** 20).toFixed(0)} MiB this converter takes (a Worker has 128 MB of memory): ${TOO_LARGE_HINT}`,
      );
    }
    const onProgress = ({ stage, detail }: ConvertProgress) => log(`${uploadId}: ${stage} ${detail}`);
    const converted = await convertModel(decoded, {
      name,
      quantize: manifest.options.quantize,
      shardBytes: manifest.options.shardBytes,
      tolerance: manifest.options.tolerance,
      foldBatchNorm: !manifest.options.keepBatchNorm,
      ...(options.samples ? { samples: options.samples } : {}),
      onProgress,
    });
    // Stalled past the lease (another consumer took the upload over): leave the publish to it.
    if (!lease.lease.held()) return { kind: 'retry', uploadId, reason: 'lost the lease while converting', delaySeconds: 30, busy: true };
    // The upload id goes into edgeflow.json's source; sourceId = uploadId makes a redelivered or
    // retried publish find its own version instead of adding one.
    const metadata = { ...converted.metadata, source: { ...converted.metadata.source, uploadId } };
    const result = await publishConverted(store, { ...converted, metadata }, { name, sourceId: uploadId, onProgress });
    options.onPublished?.(name, result.version);
    await record({
      state: 'published',
      version: result.version,
      existing: result.existing,
      sizes: result.metadata.sizes,
      quantization: dtypeCounts(result.metadata.quantization.weights),
      report: result.report,
      timings: Object.fromEntries(Object.entries(result.timings).map(([k, v]) => [k, Math.round(v)])),
      latencyMs: Date.now() - Date.parse(status.created),
    });
    log(`${uploadId}: published ${name} version ${result.version}${result.existing ? ' (already published)' : ''}`);
    return { kind: 'done', uploadId, name, version: result.version, existing: result.existing };
  } catch (error) {
    const message = (error as Error).message;
    const last = attempt >= (options.maxDeliveries ?? Infinity);
    if (isPermanent(error) || last) {
      const reason = isPermanent(error) ? message : `gave up after ${attempt} deliveries: ${message}`;
      log(`${uploadId}: failed: ${reason}`);
      if (status) await record({ state: 'failed', reason, ...(error instanceof ToleranceError ? { report: error.report } : {}) }).catch(() => undefined);
      else
        await writeStatus(store, { id: uploadId, name, state: 'failed', created: new Date().toISOString(), updated: new Date().toISOString(), files: [], options: {}, attempts: 1, reason }).catch(
          () => undefined,
        );
      return { kind: 'failed', uploadId, reason };
    }
    log(`${uploadId}: delivery ${attempt} failed, will retry: ${message}`);
    if (status) await record({ state: 'queued', lastError: message }).catch(() => undefined);
    return { kind: 'retry', uploadId, reason: message, delaySeconds: Math.min(300, 5 * 2 ** (attempt - 1)) };
  } finally {
    if (lease && 'lease' in lease) await lease.lease.release();
  }
}
