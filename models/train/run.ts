// The training job behind `edgeflow train`: load data, pick the backend, train with the chosen
// regularization, log every epoch (progress bar, TensorBoard, CSV, PNG), evaluate on held-out
// data, then save the model (--out) and/or upload it for conversion (--upload).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as z from 'zod';
import { findModel } from '../registry.ts';
import type { Dataset, ModelDefinition, Regularization } from '../types.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { openOutputStore } from '../../shared/store/open.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { BACKEND_REQUESTS, selectBackend, type BackendChoice, type BackendRequest, type NativeLoader } from './backend.ts';
import type { WebGpuLoader } from './webgpu.ts';
import { installFastGradients } from './fast-gradients.ts';
import { evaluate, formatTable, type Evaluation } from './evaluate.ts';
import { RunLog, splitLogs, type EpochRecord } from './history.ts';
import { probeTrainingKernels } from './kernels.ts';
import { parseSchedule, TrainingOptimizer } from './optimizer.ts';
import { plotHistory } from './plot.ts';
import { ProgressBar, type ProgressOutput } from './progress.ts';
import { fitInPhases, fromScratch, takeFrozenBase, trainSource } from './transfer.ts';
import { heldOutCalibration, modelFiles, servingMetadata, uploadModel, writeFolder } from './save.ts';
import { CALIBRATION_JSON } from '../../shared/bucket/calibration.ts';

const positive = (flag: string, integer = false) =>
  z
    .number()
    .refine((v) => v > 0 && (!integer || Number.isInteger(v)), { error: (issue) => `--${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${issue.input}` })
    .optional();
const fraction = (flag: string) =>
  z
    .number()
    .refine((v) => v >= 0 && v < 1, { error: (issue) => `--${flag} must be in [0, 1), got ${issue.input}` })
    .optional();
/** A value checked by a parser that throws a message naming the problem. */
const checkedBy = (check: (text: string) => unknown) =>
  z.string().superRefine((text, context) => {
    try {
      check(text);
    } catch (error) {
      context.addIssue({ code: 'custom', message: (error as Error).message });
    }
  });

/**
 * The training job's options, one schema for the CLI and every other caller; the flag names in
 * the messages are the CLI's. Defaults (the model's own, then the job's) are merged once, by
 * resolveTrainingOptions.
 */
export const TrainingOptions = z.object({
  model: checkedBy(findModel),
  epochs: positive('epochs', true),
  batchSize: positive('batch-size', true),
  backend: z.enum(BACKEND_REQUESTS, { error: (issue) => `--backend must be one of ${BACKEND_REQUESTS.join(', ')}, got ${JSON.stringify(issue.input)}` }).optional(),
  /** Accept a software WebGPU adapter (Mesa's lavapipe) for --backend webgpu or auto. */
  allowSoftwareGpu: z.boolean().optional(),
  /** Folder for the TF.js layers model. */
  out: z.string().optional(),
  /** Store (folder or s3://bucket/prefix, or an ObjectStore) to upload the model to. */
  upload: z
    .union([z.string(), z.custom<ObjectStore>((v) => typeof v === 'object' && v !== null && typeof (v as ObjectStore).put === 'function', 'upload must be a store location or an ObjectStore')])
    .optional(),
  /** Model name in the store; the model's own name by default. */
  name: z.string().optional(),
  /** TensorBoard log folder; runs/<model>-<time> by default. */
  logdir: z.string().optional(),
  /** Keep at most this many training examples (tiny runs). */
  limit: positive('limit', true),
  seed: z.number().optional(),
  dropout: fraction('dropout'),
  batchNorm: z.boolean().optional(),
  l2: z
    .number()
    .refine((v) => v >= 0, { error: (issue) => `--l2 must be >= 0, got ${issue.input}` })
    .optional(),
  learningRate: positive('learning-rate'),
  lrSchedule: checkedBy(parseSchedule).optional(),
  clipNorm: positive('clip-norm'),
  /** Stop after this many epochs without improvement of the monitored loss. */
  earlyStopping: positive('early-stopping', true),
  validationSplit: fraction('validation-split'),
  /** Report lines (default: stdout). */
  log: z.custom<(line: string) => void>((v) => typeof v === 'function').optional(),
  /** Progress bar output (default: stderr). */
  progress: z.custom<ProgressOutput>((v) => typeof v === 'object' && v !== null).optional(),
  /** How native packages are loaded (tests pass a stand-in). */
  loadNative: z.custom<NativeLoader>((v) => typeof v === 'function').optional(),
  /** How WebGPU is loaded (tests pass a stand-in). */
  loadWebGpu: z.custom<WebGpuLoader>((v) => typeof v === 'function').optional(),
});
export type TrainJobOptions = z.input<typeof TrainingOptions>;

export const DEFAULT_SEED = 42;

/** TrainJobOptions checked, with every default filled in. */
export interface ResolvedTrainingOptions {
  definition: ModelDefinition;
  epochs: number;
  batchSize: number;
  backend: BackendRequest;
  allowSoftwareGpu: boolean;
  out?: string;
  upload?: string | ObjectStore;
  name: string;
  logdir: string;
  limit?: number;
  seed: number;
  regularization: Required<Regularization>;
  learningRate: number;
  lrSchedule: string;
  clipNorm?: number;
  earlyStopping?: number;
  validationSplit: number;
  log: (line: string) => void;
  progress: ProgressOutput;
  loadNative?: NativeLoader;
  loadWebGpu?: WebGpuLoader;
}

/** The one place the training defaults are merged; a bad_request naming the first bad option otherwise. */
export function resolveTrainingOptions(options: TrainJobOptions): ResolvedTrainingOptions {
  const parsed = TrainingOptions.safeParse(options);
  if (!parsed.success) throw new EdgeflowError('bad_request', parsed.error.issues[0]!.message);
  const o = parsed.data;
  const definition = findModel(o.model);
  const { defaults } = definition;
  return {
    definition,
    epochs: o.epochs ?? defaults.epochs,
    batchSize: o.batchSize ?? defaults.batchSize,
    backend: o.backend ?? 'auto',
    allowSoftwareGpu: o.allowSoftwareGpu ?? false,
    ...(o.out !== undefined ? { out: o.out } : {}),
    ...(o.upload !== undefined ? { upload: o.upload } : {}),
    name: o.name ?? definition.name,
    logdir: o.logdir ?? join('runs', `${definition.name}-${stamp()}`),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    seed: o.seed ?? DEFAULT_SEED,
    regularization: { dropout: o.dropout ?? defaults.dropout ?? 0, batchNorm: o.batchNorm ?? false, l2: o.l2 ?? 0 },
    learningRate: o.learningRate ?? defaults.learningRate,
    lrSchedule: o.lrSchedule ?? defaults.lrSchedule ?? 'constant',
    ...(o.clipNorm !== undefined ? { clipNorm: o.clipNorm } : {}),
    ...(o.earlyStopping !== undefined ? { earlyStopping: o.earlyStopping } : {}),
    validationSplit: o.validationSplit ?? defaults.validationSplit,
    log: o.log ?? ((line: string) => console.log(line)),
    progress: o.progress ?? process.stderr,
    ...(o.loadNative ? { loadNative: o.loadNative } : {}),
    ...(o.loadWebGpu ? { loadWebGpu: o.loadWebGpu } : {}),
  };
}

export interface TrainingRecord {
  model: string;
  summary: string;
  task: string;
  epochs: number;
  epochsRequested: number;
  batchSize: number;
  backend: string;
  backendPackage: string;
  usingGpu: boolean;
  /** The WebGPU adapter's description, when trained on WebGPU. */
  adapter?: string;
  metrics: Record<string, number>;
  baselines?: Record<string, Record<string, number>>;
  unit?: string;
  heldOutSamples: number;
  trainSamples: number;
  validationSplit: number;
  data: string;
  options: Record<string, unknown>;
  finalLoss: Record<string, number>;
  /** Per epoch: training and validation loss and metrics (the console draws them as curves). */
  history: { epoch: number; train: Record<string, number>; validation: Record<string, number> }[];
  seconds: number;
  trainedAt: string;
}

export interface TrainJobResult {
  definition: ModelDefinition;
  backend: BackendChoice;
  evaluation: Evaluation;
  history: EpochRecord[];
  record: TrainingRecord;
  files: Map<string, Uint8Array>;
  logdir: string;
  eventFiles: { train: string; validation: string };
  saved?: string[];
  uploaded?: { store: string; uploadId: string; keys: string[]; manifestKey: string };
  model: tfl.LayersModel;
}

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** A note for each regularization asked for that the model has no place for. */
function noteUnsupported(options: ResolvedTrainingOptions): void {
  const { definition, regularization, log } = options;
  const asked: Array<[keyof Regularization, boolean]> = [
    ['dropout', regularization.dropout > 0],
    ['batchNorm', regularization.batchNorm],
    ['l2', regularization.l2 > 0],
  ];
  for (const [option, given] of asked) if (given && !definition.supports.includes(option)) log(`note: ${definition.name} has no place for ${option}; ignored`);
}

function compile(definition: ModelDefinition, regularization: Regularization, optimizer: TrainingOptimizer): tfl.LayersModel {
  const model = definition.build(regularization);
  model.compile({ optimizer, loss: definition.loss, metrics: [...definition.metrics] });
  return model;
}

async function toBackend(data: Dataset): Promise<void> {
  // Tensors made before the backend was chosen move to it on first use; touching them now keeps
  // that copy out of the first epoch's time.
  const tensors = [data.train, data.test, ...(data.validation ? [data.validation] : [])].flatMap((s) => [s.x, s.y]);
  await Promise.all(tensors.map((t) => t.data()));
}

export async function runTraining(given: TrainJobOptions): Promise<TrainJobResult> {
  const options = resolveTrainingOptions(given);
  const { definition, epochs, batchSize, validationSplit, learningRate, lrSchedule, regularization, seed, name, logdir, log } = options;
  const progressOut = options.progress;
  noteUnsupported(options);
  const schedule = parseSchedule(lrSchedule);
  // A store that cannot be written is found out before the training, not after it.
  const store = typeof options.upload === 'string' ? await openOutputStore(options.upload) : options.upload;

  log(`model: ${definition.name}: ${definition.summary}`);
  const restoreGradient = installFastGradients();
  const disposables: tf.TensorContainer[] = [];
  try {
    await tf.setBackend('cpu');
    const data = await definition.loadData({ seed, validationSplit, ...(options.limit ? { limit: options.limit } : {}) });
    disposables.push(
      data.train.x,
      data.train.y,
      data.test.x,
      data.test.y,
      ...(data.validation ? [data.validation.x, data.validation.y] : []),
      ...(data.source ? [data.source.x, data.source.y] : []),
      ...Object.values(data.baselines ?? {}),
    );
    log(`data: ${data.description}`);

    const newOptimizer = (rate = learningRate) => new TrainingOptimizer({ learningRate: rate, schedule, epochs, ...(options.clipNorm ? { clipNorm: options.clipNorm } : {}) });
    const probeOptimizer = newOptimizer();
    const probeModel = compile(definition, regularization, probeOptimizer);
    const probeCount = Math.min(2, data.train.x.shape[0]);
    const kernels = await probeTrainingKernels(async () => {
      const x = tf.slice(data.train.x, 0, probeCount);
      const y = tf.slice(data.train.y, 0, probeCount);
      await probeModel.trainOnBatch(x, y);
      tf.dispose([x, y]);
    });
    probeModel.dispose();
    probeOptimizer.dispose();

    const backend = await selectBackend(options.backend, {
      requiredKernels: kernels,
      allowSoftwareGpu: options.allowSoftwareGpu,
      ...(options.loadNative ? { loadNative: options.loadNative } : {}),
      ...(options.loadWebGpu ? { loadWebGpu: options.loadWebGpu } : {}),
    });
    log(`backend: ${backend.backend} (${backend.package}): ${backend.reason}`);
    await toBackend(data);

    let optimizer = newOptimizer();
    const transfer = definition.transfer && data.source ? definition.transfer : undefined;
    const model = definition.build(regularization);
    if (transfer) {
      const sourceOptimizer = newOptimizer();
      const sourceStarted = Date.now();
      const { source, accuracy } = await trainSource(definition, transfer, data, regularization, sourceOptimizer);
      takeFrozenBase(source, model, transfer);
      source.dispose();
      sourceOptimizer.dispose();
      log(
        `source: trained ${transfer.sourceEpochs} epochs in ${((Date.now() - sourceStarted) / 1000).toFixed(1)} s on ${data.source!.description} (training accuracy ${(accuracy * 100).toFixed(2)}%); its ${transfer.baseLayers.join(', ')} are frozen for ${Math.min(transfer.headEpochs, epochs)} epochs of the new head, then ${transfer.fineTuneLayers.join(', ')} fine-tune at ${transfer.fineTuneRate}x the learning rate`,
      );
    }
    model.compile({ optimizer, loss: definition.loss, metrics: [...definition.metrics] });
    const trainSamples = data.train.x.shape[0];
    const fitSamples = data.validation ? trainSamples : Math.max(1, Math.round(trainSamples * (1 - validationSplit)));
    const progress = new ProgressBar(progressOut, epochs, Math.ceil(fitSamples / batchSize));
    mkdirSync(logdir, { recursive: true });
    const runLog = new RunLog(logdir);
    let epochStart = 0;
    let currentEpoch = 0;
    const recorder = new tfl.CustomCallback({
      onEpochBegin: async (epoch) => {
        currentEpoch = epoch;
        optimizer.startEpoch(epoch);
        epochStart = Date.now();
        progress.startEpoch();
      },
      onBatchEnd: async (batch, logs) => progress.batch(currentEpoch, batch, splitLogs((logs ?? {}) as Record<string, number>).train),
      onEpochEnd: async (epoch, logs) => {
        const values = splitLogs((logs ?? {}) as Record<string, number>);
        runLog.add({ epoch: epoch + 1, ...values, learningRate: optimizer.learningRate, seconds: (Date.now() - epochStart) / 1000 });
        await runLog.weights(epoch + 1, model);
        progress.endEpoch(epoch, { ...values.train, ...Object.fromEntries(Object.entries(values.validation).map(([k, v]) => [`val_${k}`, v])) });
      },
    });
    const callbacks: tfl.Callback[] = [recorder as unknown as tfl.Callback];
    const validates = Boolean(data.validation) || validationSplit > 0;
    if (options.earlyStopping) callbacks.push(tfl.callbacks.earlyStopping({ monitor: validates ? 'val_loss' : 'loss', patience: options.earlyStopping }));

    const started = Date.now();
    const fitEpochs = (initialEpoch: number, until: number) =>
      model.fit(data.train.x, data.train.y, {
        initialEpoch,
        epochs: until,
        batchSize,
        ...(data.validation ? { validationData: [data.validation.x, data.validation.y] as [tf.Tensor, tf.Tensor] } : { validationSplit }),
        shuffle: true,
        verbose: 0,
        callbacks,
      });
    if (transfer) {
      await fitInPhases(model, transfer, epochs, fitEpochs, (rateFactor) => {
        optimizer.dispose();
        optimizer = newOptimizer(learningRate * rateFactor);
        model.compile({ optimizer, loss: definition.loss, metrics: [...definition.metrics] });
      });
    } else {
      await fitEpochs(0, epochs);
    }
    const seconds = (Date.now() - started) / 1000;
    const epochsRun = runLog.epochs.length;
    log(`trained ${epochsRun} epoch${epochsRun === 1 ? '' : 's'} in ${seconds.toFixed(1)} s on ${backend.backend}${epochsRun < epochs ? ` (early stopping after ${epochsRun} of ${epochs})` : ''}`);

    if (transfer) {
      const scratchOptimizer = newOptimizer();
      const scratch = await fromScratch(definition, data, regularization, scratchOptimizer, epochs, batchSize);
      scratchOptimizer.dispose();
      disposables.push(scratch);
      data.baselines = { ...data.baselines, 'from scratch': scratch };
      log(`from scratch: the same network trained ${epochs} epochs on the same ${trainSamples} examples, for comparison`);
    }
    const evaluation = await evaluate(model, data, definition.task, definition.classes?.length ?? 0);
    log(formatTable(evaluation, definition.name));

    const metricNames = runLog.metricNames();
    writeFileSync(join(logdir, 'history.png'), plotHistory(runLog.epochs, metricNames, `${definition.name} on ${backend.backend}`));
    log(`logs: ${logdir} (TensorBoard event files in train/ and validation/ with weight histograms, history.csv, history.png)`);

    const last = runLog.epochs[runLog.epochs.length - 1];
    const record: TrainingRecord = {
      model: definition.name,
      summary: definition.summary,
      task: definition.task,
      epochs: epochsRun,
      epochsRequested: epochs,
      batchSize,
      backend: backend.backend,
      backendPackage: backend.package,
      usingGpu: backend.usingGpu,
      ...(backend.adapter ? { adapter: backend.adapter.description } : {}),
      metrics: evaluation.metrics,
      ...(Object.keys(evaluation.baselines).length ? { baselines: evaluation.baselines } : {}),
      ...(evaluation.unit ? { unit: evaluation.unit } : {}),
      heldOutSamples: evaluation.samples,
      trainSamples,
      validationSplit,
      data: data.description,
      options: { learningRate, lrSchedule, ...regularization, clipNorm: options.clipNorm ?? null, earlyStopping: options.earlyStopping ?? null, seed, limit: options.limit ?? null },
      finalLoss: { ...(last ? { train: last.train.loss! } : {}), ...(last?.validation.loss !== undefined ? { validation: last.validation.loss } : {}) },
      history: runLog.epochs.map(({ epoch, train, validation }) => ({ epoch, train, validation })),
      seconds,
      trainedAt: new Date().toISOString(),
    };
    const files = await modelFiles(model, { training: record, ...(data.preprocessing ? { preprocessing: data.preprocessing } : {}), ...servingMetadata(model, definition.classes) });
    // Held-out inputs travel with the model: the converter calibrates on them (calibrationKind: data).
    files.set(CALIBRATION_JSON, await heldOutCalibration(data.test.x));

    const result: TrainJobResult = { definition, backend, evaluation, history: runLog.epochs, record, files, logdir, eventFiles: runLog.eventFiles, model };
    if (options.out) {
      result.saved = writeFolder(options.out, files);
      log(`saved: ${options.out} (model.json + weights, a TF.js layers model; ${CALIBRATION_JSON}: held-out inputs the converter calibrates on)`);
    }
    if (store) {
      const uploaded = await uploadModel(store, name, files);
      result.uploaded = { store: store.description, ...uploaded };
      log(
        `uploaded: ${store.description}/uploads/${name}/${uploaded.uploadId}/ (manifest last; the trigger converts it into models/${name}/: the Workers queue on R2, else 'edgeflow watch --store ${store.description}' or 'edgeflow serve --watch')`,
      );
    }
    optimizer.dispose();
    return result;
  } finally {
    tf.dispose(disposables);
    restoreGradient();
  }
}
