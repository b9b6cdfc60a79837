// The conversion pipeline: read → float32 reference → fold BatchNormalization → choose dtypes
// (rules or auto) → encode + shard → verify with stock TF.js → (publish). Runtime-neutral: web-standard APIs
// and TF.js only, so the Node CLI and the Worker's queue consumer run the same code.
// The caller must have a TF.js backend ready (wasm in Node and in Workers).
import * as tf from '@tensorflow/tfjs-core';
import { loadModel, type LoadedModel, type LoadModelOptions } from '../shared/model-loader.ts';
import type { AccuracyReport, TensorSignature } from '../shared/schemas/edgeflow-json.ts';
import { checkModelName } from '../shared/names.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { DEFAULT_SAMPLES, generateCalibration, type Calibration } from './calibration.ts';
import { type EncodeOptions, encodeWeights } from './encode.ts';
import { ConversionError, EdgeflowError } from '../shared/errors.ts';
import type { DecodedModel, FileSet } from './model.ts';
import { publishVersion, type VersionMetadata } from '../shared/bucket/publish.ts';
import { foldBatchNorm } from './optimize/fold-batchnorm.ts';
import { foldKeepsPrecision } from './optimize/fold-policy.ts';
import { equalizeChannels } from './optimize/equalize.ts';
import { chooseDtypes } from './quantize/auto.ts';
import { compensate, type Compensation, withBiases } from './quantize/compensate.ts';
import type { RoundedKernel } from './quantize/gptq.ts';
import { layerInputs, linearSites } from './quantize/layer-inputs.ts';
import { dtypeForWeight, parseQuantizeSpec, type QuantizeSpec, type StorageDtype } from '../shared/options/quantize-spec.ts';
import { readModel } from './read/index.ts';
import { shardModel, type ModelFiles } from './shard.ts';
import { resolveConversionOptions, type ConversionOptions, type ResolvedConversionOptions } from '../shared/options/conversion.ts';
import { accuracyReport, driftScore, measureDrift, noiseScore, runCalibration, targetUse, worstSnrDb, type Drift, type ModelOutputs, type Target } from './verify.ts';
import { inputHints } from './input-hints.ts';
import { NO_PAUSE, type Pause } from './pace.ts';
import { checkServingBackend, type BackendCheck } from './backend-check.ts';
import { compileToGraph, layersTfjsCannotBuild, requireGraph, type GraphCompilation } from './optimize/compile-graph.ts';
import { NotCompilable } from '../shared/graph/compile.ts';
import type { ServingReport } from '../shared/schemas/edgeflow-json.ts';
import { classifierMetadata, imageSpecFor, trainedClassifier } from './classifier-metadata.ts';
import { calibrationFromFiles, takeCalibrationFiles, type CalibrationFile } from './calibration-files.ts';

export type ConvertStage = 'read' | 'reference' | 'quantize' | 'verify' | 'publish';

export interface ConvertProgress {
  stage: ConvertStage;
  detail: string;
}

/** What only the pipeline takes, beside the user's conversion options (shared/options/conversion.ts). */
export interface PipelineOptions {
  name: string;
  /** Calibration inputs, or a function that builds them from the model's input signature. */
  calibration?: (inputs: TensorSignature[]) => Calibration;
  /**
   * Calibration files (one .json / .npy, or PNG / JPEG images through the model's image spec),
   * when `calibration` is not given; a FileSet input's own (converter/calibration-files.ts) otherwise.
   */
  calibrationFiles?: CalibrationFile[];
  /** Calibration samples when calibration is not given (default DEFAULT_SAMPLES). */
  samples?: number;
  /** Try clipped uint8 / uint16 ranges, kept where they lower the output error (default true). */
  clipOutliers?: boolean;
  onProgress?: (progress: ConvertProgress) => void;
  /** Yields between steps and calibration passes and bounds the time (converter/pace.ts): a conversion sharing its thread with serving (a Worker's queue consumer). */
  pause?: Pause;
}

/** The user's conversion options (quantize, shardBytes, tolerance, keepBatchNorm) and the pipeline's. */
export type ConvertOptions = ConversionOptions & PipelineOptions;

/** ConvertOptions with every default filled in (resolveConvertOptions). */
export interface ResolvedConvertOptions extends ResolvedConversionOptions {
  name: string;
  calibration?: (inputs: TensorSignature[]) => Calibration;
  calibrationFiles?: CalibrationFile[];
  samples: number;
  clipOutliers: boolean;
  onProgress: (progress: ConvertProgress) => void;
  pause: Pause;
}

/** The one place the pipeline's defaults are merged: the conversion options through resolveConversionOptions, then the pipeline's own. */
export function resolveConvertOptions(options: ConvertOptions): ResolvedConvertOptions {
  return {
    ...resolveConversionOptions(options),
    name: options.name,
    ...(options.calibration ? { calibration: options.calibration } : {}),
    ...(options.calibrationFiles?.length ? { calibrationFiles: options.calibrationFiles } : {}),
    samples: options.samples ?? DEFAULT_SAMPLES,
    clipOutliers: options.clipOutliers ?? true,
    onProgress: options.onProgress ?? (() => {}),
    pause: options.pause ?? NO_PAUSE,
  };
}

export interface ConvertResult {
  modelFiles: ModelFiles;
  metadata: VersionMetadata;
  report: AccuracyReport;
  /** Milliseconds per stage. */
  timings: Record<ConvertStage, number>;
}

/** What to try after a miss at `quantize`: a wider mode than the one asked, or a looser tolerance. */
function widerModeHint(quantize: string): string {
  if (quantize === 'none') return 'The model itself is not reproducible at float32 on this backend (see the calibration); raise --tolerance only if that is expected.';
  if (quantize === 'float16') return 'Use --quantize none (float32 weights), or raise --tolerance.';
  return 'Use a wider dtype (float16, or auto), or raise --tolerance.';
}

/** A conversion that ran but missed its tolerance; carries the report. */
export class ToleranceError extends ConversionError {
  constructor(
    readonly report: AccuracyReport,
    quantize: string,
  ) {
    const integer = report.integerAgreement ?? null;
    const snrs = (report.outputs ?? []).filter((o) => o.kind === 'float' && o.snrDb !== null).map((o) => o.snrDb!);
    const snr = report.minSnrDb === undefined ? '' : `, worst output SNR ${snrs.length ? `${Math.min(...snrs).toFixed(1)} dB` : 'exact'} against the ${report.minSnrDb} dB asked`;
    super(
      `converted model drifts too far from the float32 model: relative error ${report.relativeError.toPrecision(3)}` +
        `${integer === null ? '' : `, integer outputs ${(integer * 100).toFixed(1)}% unchanged`} against tolerance ${report.tolerance}${snr} ` +
        `(max abs error ${report.maxAbsError.toPrecision(3)}${report.top1Agreement === null ? '' : `, top-1 agreement ${(report.top1Agreement * 100).toFixed(1)}%`}) ` +
        `with --quantize ${quantize}, on ${report.calibrationKind === 'synthetic' ? 'synthetic inputs' : 'your calibration data'}; nothing was published. ${widerModeHint(quantize)}`,
      'tolerance_exceeded',
    );
    this.name = 'ToleranceError';
  }
}

/** The vocabulary size of the model's first Embedding layer, to draw valid token ids. */
function embeddingVocabulary(topology: unknown): number | undefined {
  let found: number | undefined;
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    const config = record.config as Record<string, unknown> | undefined;
    if (record.class_name === 'Embedding' && typeof config?.input_dim === 'number') {
      found = Math.min(found ?? Infinity, config.input_dim);
    }
    Object.values(record).forEach(visit);
  };
  visit(topology);
  return found;
}

function encodeAndShard(model: DecodedModel, dtypeOf: (name: string) => StorageDtype, ranges: Ranges, shardBytes: number, rounded?: Map<string, RoundedKernel>) {
  const encoded = encodeWeights(model.weights, (w) => dtypeOf(w.name), { ...ranges, ...(rounded ? { rounded } : {}) });
  return { encoded, files: shardModel(model, encoded, shardBytes) };
}

function loadFiles(files: ModelFiles, options: LoadModelOptions = {}): Promise<LoadedModel> {
  return loadModel(
    files.modelJson,
    (path) => {
      const bytes = files.files.get(path);
      if (!bytes) throw new Error(`converted model lacks ${path}`);
      return bytes;
    },
    options,
  );
}

async function withLoaded<T>(files: ModelFiles, work: (model: LoadedModel) => Promise<T>): Promise<T> {
  const model = await loadFiles(files);
  try {
    return await work(model);
  } finally {
    model.dispose();
  }
}

type Candidate = ReturnType<typeof encodeAndShard> & { drift: Drift };

/** Clipping lowers each weight's own error; keep it only if it also lowers the output error. */
async function preferLowerDrift(clipped: Candidate, minMaxRanges: () => Promise<Candidate>, report: (detail: string) => void): Promise<Candidate> {
  if (!Object.values(clipped.encoded.quantization).some((q) => q.clipped)) return clipped;
  const plain = await minMaxRanges();
  const keep = driftScore(clipped.drift) <= driftScore(plain.drift);
  report(`outlier clipping: drift ${driftScore(clipped.drift).toPrecision(3)} vs ${driftScore(plain.drift).toPrecision(3)} with min/max ranges; keeping ${keep ? 'clipped' : 'min/max'} ranges`);
  return keep ? clipped : plain;
}

/** Milliseconds per stage: lap(stage) adds the time since the last lap to stage. */
function stageClock() {
  const timings: Record<ConvertStage, number> = { read: 0, reference: 0, quantize: 0, verify: 0, publish: 0 };
  let clock = performance.now();
  const lap = (stage: ConvertStage) => {
    const now = performance.now();
    timings[stage] += now - clock;
    clock = now;
  };
  return { timings, lap };
}

/** What the steps after the float32 reference run share. */
interface Conversion {
  options: ResolvedConvertOptions;
  spec: QuantizeSpec;
  lap: (stage: ConvertStage) => void;
  calibration: Calibration;
  reference: ModelOutputs;
  outputNames: string[];
  /**
   * How uint8 / uint16 ranges are chosen. Outlier clipping is tried only on real calibration data
   * (judged on synthetic inputs it can lose to min/max ranges on real ones); without real data
   * every range is the anchor's (tensorflowjs_converter's), so that no choice made on made-up
   * inputs can come out worse than it.
   */
  ranges: Ranges;
  backendCheck: BackendCheck | undefined;
  format: DecodedModel['format'];
}

type Ranges = Required<Pick<EncodeOptions, 'clipOutliers' | 'holdZero'>>;
/** For files of float32 weights (the reference, calibration runs): no range is used. */
const FLOAT32_RANGES: Ranges = { clipOutliers: false, holdZero: false };

type Reference = Pick<Conversion, 'calibration' | 'reference'> & { signature: { inputs: TensorSignature[]; outputs: TensorSignature[] }; backendCheck?: BackendCheck };

type Converted = Candidate & { auto?: { trials: number; drift: number }; report: AccuracyReport; equalized: string[] };

/**
 * Step read: decodes the input (unless already decoded) and reports its float32 size. A FileSet's
 * calibration files (calibration.json beside the model, calibration/...) are set apart, and
 * calibrate the conversion unless the options give their own.
 */
async function readStep(input: FileSet | DecodedModel, options: ResolvedConvertOptions): Promise<{ model: DecodedModel; floatBytes: number; options: ResolvedConvertOptions }> {
  const progress = options.onProgress;
  progress({ stage: 'read', detail: 'reading the model' });
  let carried: CalibrationFile[] = [];
  if (input instanceof Map) {
    const files = new Map(input);
    carried = takeCalibrationFiles(files);
    input = files;
  }
  const model = input instanceof Map ? await readModel(input) : input;
  const floatBytes = model.weights.reduce((sum, w) => sum + w.values.byteLength, 0);
  progress({ stage: 'read', detail: `${model.source.format}: ${model.weights.length} weights, ${(floatBytes / 2 ** 20).toFixed(2)} MiB as float32` });
  if (carried.length === 0) return { model, floatBytes, options };
  const given = options.calibration || options.calibrationFiles;
  progress({ stage: 'read', detail: `calibration files with the model: ${carried.map((f) => f.path).join(', ')}${given ? ' (not used: calibration was given)' : ''}` });
  return { model, floatBytes, options: given ? options : { ...options, calibrationFiles: carried } };
}

/** The calibration inputs: the caller's, else its files', else generated following the model's hints. */
function calibrationFor(model: DecodedModel, inputs: TensorSignature[], options: ResolvedConvertOptions): Calibration {
  if (options.calibration) return options.calibration(inputs);
  if (options.calibrationFiles) return calibrationFromFiles(options.calibrationFiles, inputs, imageSpecFor(inputs, options.image ?? trainedClassifier(model).image));
  const hints = inputHints(model.modelJson.modelTopology, inputs.length, model.weights);
  return generateCalibration(inputs, options.samples, embeddingVocabulary(model.modelJson.modelTopology) ?? 10, 1, hints);
}

/** Step reference: runs the float32 model on the calibration inputs; its outputs are what every candidate is measured against. */
async function referenceStep(model: DecodedModel, options: ResolvedConvertOptions): Promise<Reference> {
  options.onProgress({ stage: 'reference', detail: 'running the float32 model on calibration inputs' });
  await options.pause();
  const float32Files = encodeAndShard(model, () => 'float32', FLOAT32_RANGES, options.shardBytes).files;
  return withLoaded(float32Files, async (loaded) => {
    const calibration = calibrationFor(model, loaded.inputs, options);
    options.onProgress({ stage: 'reference', detail: `calibration ${calibration.description}` });
    const reference = await runCalibration(loaded, calibration, options.pause);
    const backendCheck = await checkServingBackend(() => loadFiles(float32Files), calibration, reference, options.tolerance);
    // Graph models often leave output shapes unknown: record the ones the run produced (batch free).
    const outputs = loaded.outputs.map((output, o) => {
      const seen = reference[o]?.[0]?.shape;
      return output.shape.length === 0 && seen && seen.length > 0 ? { ...output, shape: [-1, ...seen.slice(1)] } : output;
    });
    return { signature: { inputs: loaded.inputs, outputs }, calibration, reference, backendCheck };
  });
}

/** The narrowest dtypes a conversion may store: every float32 weight at uint8 for auto, the rules' choice otherwise. */
const narrowestDtypes =
  (spec: QuantizeSpec) =>
  (name: string): StorageDtype =>
    spec.kind === 'auto' ? 'uint8' : dtypeForWeight(spec, name);

/**
 * Step fold: folds BatchNormalization layers into kernels stored at float32, and at uint8 where
 * the grid keeps their precision (none with keepBatchNorm; never at float16 / uint16, nor at uint8
 * without real calibration data, where the anchor's ranges are kept: optimize/fold-policy.ts).
 */
function foldStep(model: DecodedModel, spec: QuantizeSpec, options: ResolvedConvertOptions, ranges: Ranges): { model: DecodedModel; folded: string[] } {
  if (options.keepBatchNorm) return { model, folded: [] };
  // auto judges each fold at uint8, the narrowest dtype its search may give a kernel.
  const folding = foldBatchNorm(model, foldKeepsPrecision(narrowestDtypes(spec), ranges));
  if (folding.folded.length > 0) options.onProgress({ stage: 'quantize', detail: `folded ${folding.folded.length} BatchNormalization layer(s) into the layers before them` });
  return folding;
}

/** The drift of converted files from the float32 reference, on the same calibration inputs. */
async function driftOf(run: Conversion, files: ModelFiles): Promise<Drift> {
  await run.options.pause();
  return measureDrift(run.reference, await withLoaded(files, (loaded) => runCalibration(loaded, run.calibration, run.options.pause)));
}

const choiceKey = (dtypes: Map<string, StorageDtype>) => [...dtypes].join();

/** What the conversion must meet: the tolerance, and the SNR floor when one was asked. */
const targetOf = (options: ResolvedConvertOptions): Target => ({ tolerance: options.tolerance, ...(options.minSnrDb !== undefined ? { minSnrDb: options.minSnrDb } : {}) });

const describeTarget = (target: Target) => `tolerance ${target.tolerance}${target.minSnrDb === undefined ? '' : ` and SNR ≥ ${target.minSnrDb} dB`}`;

/**
 * Step auto search: the narrowest per-weight dtypes within the target (tolerance, SNR floor), with
 * the drift of every trial (by choiceKey). chooseDtypes compares each trial's share of the target with 1.
 */
async function autoSearchStep(run: Conversion, target: DecodedModel) {
  const { onProgress: progress, shardBytes } = run.options;
  const { ranges } = run;
  const goal = targetOf(run.options);
  // auto's trials, by choice: its final choice was one of them, so it is not measured again.
  const measured = new Map<string, Drift>();
  progress({ stage: 'quantize', detail: `auto: searching per-weight dtypes within ${describeTarget(goal)}` });
  // Trials store uint8 kernels with the error-compensating rounding the final conversion uses (real
  // calibration data only): a kernel's codes depend on its own layer alone, so they are rounded once.
  const compensation = await compensationOf(run, target, () => 'uint8');
  const rounded = compensation?.rounded;
  if (rounded) progress({ stage: 'quantize', detail: `auto: trials round ${rounded.size} uint8 kernel(s) error-compensated` });
  let trials = 0;
  const trial = async (candidate: Map<string, StorageDtype>) => {
    const key = choiceKey(candidate);
    let drift = measured.get(key);
    if (!drift) {
      drift = await driftOf(run, encodeAndShard(target, (name) => candidate.get(name) ?? 'float32', ranges, shardBytes, rounded).files);
      measured.set(key, drift);
      const use = targetUse(drift, goal);
      progress({
        stage: 'quantize',
        detail: `auto trial ${++trials}: relative drift ${driftScore(drift).toPrecision(3)}, worst SNR ${worstSnrDb(drift).toFixed(1)} dB (target use ${use.toPrecision(3)}; ≤ 1 meets it)`,
      });
    }
    return targetUse(drift, goal);
  };
  // Every weight at uint8 first, the narrowest choice: where it meets the target (a source already on
  // uint8 grids, a model with room to spare), that one trial is the whole search.
  const allUint8 = new Map(target.weights.filter((w) => w.dtype === 'float32').map((w) => [w.name, 'uint8' as StorageDtype]));
  const choice = (await trial(allUint8)) <= 1 ? allUint8 : await chooseDtypes(target.weights, 1, trial, { clipOutliers: ranges.clipOutliers, perByte: run.calibration.kind === 'data' });
  return { choice, auto: { trials, drift: driftScore(measured.get(choiceKey(choice))!) }, measured, compensation };
}

/**
 * Step equalize (real calibration data only): where a model has convolution / dense pairs to equalize
 * (optimize/equalize.ts) and stores a weight on an affine grid (uint8 / uint16), both the model and its equalized weights
 * are measured at the narrowest dtypes asked; the equalized ones are kept where they measurably
 * lower the output noise. Off with options.equalize false. `drift`: the kept model's, measured so
 * (for a rules spec, exactly the conversion the quantize step makes next).
 */
async function equalizeStep(run: Conversion, target: DecodedModel): Promise<{ model: DecodedModel; equalized: string[]; drift?: Drift }> {
  const none = { model: target, equalized: [] };
  const dtypeOf = narrowestDtypes(run.spec);
  // Decided on real calibration data only, as clipping and compensation: made-up inputs could misjudge it.
  if (!run.options.equalize || run.calibration.kind !== 'data' || !target.weights.some((w) => w.dtype === 'float32' && ['uint8', 'uint16'].includes(dtypeOf(w.name)))) return none;
  const equalization = equalizeChannels(target);
  if (equalization.pairs.length === 0) return none;
  const measure = (model: DecodedModel) => driftOf(run, encodeAndShard(model, dtypeOf, run.ranges, run.options.shardBytes).files);
  const drifts = { plain: await measure(target), equalized: await measure(equalization.model) };
  const [plain, equalized] = [noiseScore(drifts.plain), noiseScore(drifts.equalized)];
  const keep = equalized < plain * MEASURABLY;
  run.options.onProgress({
    stage: 'quantize',
    detail: `cross-layer equalization of ${equalization.pairs.length} layer pair(s): output noise ${equalized.toPrecision(3)} vs ${plain.toPrecision(3)}; ${keep ? 'kept' : 'not kept'}`,
  });
  return keep ? { model: equalization.model, equalized: equalization.pairs, drift: drifts.equalized } : { ...none, drift: drifts.plain };
}

/** Step quantize + verify: equalizes where it pays, chooses the dtypes (rules or auto), encodes and shards target, and measures its drift from the reference. */
async function quantizeAndVerifyStep(run: Conversion, given: DecodedModel): Promise<Converted> {
  const { model: target, equalized, drift } = await equalizeStep(run, given);
  const { spec, lap } = run;
  const { onProgress: progress, shardBytes } = run.options;
  const { ranges } = run;
  const { choice, auto, measured, compensation } =
    spec.kind === 'auto'
      ? await autoSearchStep(run, target)
      : {
          choice: new Map(target.weights.filter((w) => w.dtype === 'float32').map((w) => [w.name, dtypeForWeight(spec, w.name)])),
          auto: undefined,
          measured: new Map<string, Drift>(),
          compensation: undefined,
        };
  const dtypeOf = (name: string) => choice.get(name) ?? 'float32';
  // auto's trials (and so its measured drift) stored uint8 kernels with compensated codes: so does this.
  const clipped = encodeAndShard(target, dtypeOf, ranges, shardBytes, compensation?.rounded);
  progress({ stage: 'quantize', detail: `${clipped.encoded.data.byteLength} bytes of weights in ${clipped.files.files.size - 1} shard(s)` });
  lap('quantize');

  progress({ stage: 'verify', detail: 'loading the converted files with stock TF.js and comparing outputs' });
  const kept = await preferLowerDrift(
    { ...clipped, drift: measured.get(choiceKey(choice)) ?? (spec.kind === 'rules' ? drift : undefined) ?? (await driftOf(run, clipped.files)) },
    async () => {
      const plain = encodeAndShard(target, dtypeOf, { ...ranges, clipOutliers: false }, shardBytes);
      return { ...plain, drift: await driftOf(run, plain.files) };
    },
    (detail) => progress({ stage: 'verify', detail }),
  );
  const best = await compensateStep(run, target, dtypeOf, kept, spec.kind === 'auto' ? { compensation, measured: kept.files === clipped.files } : undefined);
  lap('verify');
  const report = accuracyReport(best.drift, run.calibration, targetOf(run.options), run.outputNames);
  return { ...best, auto, equalized, report: run.backendCheck ? { ...report, backendCheck: run.backendCheck } : report };
}

/** GPTQ codes (and corrected biases) of target's linear kernels stored at uint8, on real calibration data only; undefined when there are none. */
async function compensationOf(run: Conversion, target: DecodedModel, dtypeOf: (name: string) => StorageDtype): Promise<Compensation | undefined> {
  if (run.calibration.kind !== 'data' || !target.weights.some((w) => w.dtype === 'float32' && dtypeOf(w.name) === 'uint8')) return undefined;
  // Kernels already on a uint8 grid (a quantized source) are stored on it losslessly.
  const onSourceGrid = new Set(target.weights.filter((w) => w.sourceGrid?.dtype === 'uint8').map((w) => w.name));
  const sites = linearSites(target).filter((site) => dtypeOf(site.kernel) === 'uint8' && !onSourceGrid.has(site.kernel));
  if (sites.length === 0) return undefined;
  const stats = await layerInputs(target, encodeAndShard(target, () => 'float32', FLOAT32_RANGES, run.options.shardBytes).files, sites, run.calibration, run.options.pause);
  const compensation = compensate(target, stats, dtypeOf, run.ranges.clipOutliers);
  return compensation.rounded.size > 0 ? compensation : undefined;
}

/** auto's compensation (every linear kernel at uint8) for the kernels its choice stores at uint8: codes and corrected biases are per kernel. */
function onlyUint8(compensation: Compensation, target: DecodedModel, dtypeOf: (name: string) => StorageDtype): Compensation | undefined {
  const kernelOf = new Map(linearSites(target).flatMap((site) => (site.bias ? [[site.bias, site.kernel] as const] : [])));
  const rounded = new Map([...compensation.rounded].filter(([kernel]) => dtypeOf(kernel) === 'uint8'));
  const biases = new Map([...compensation.biases].filter(([bias]) => dtypeOf(kernelOf.get(bias) ?? '') === 'uint8'));
  return rounded.size > 0 ? { ...compensation, rounded, biases } : undefined;
}

/** A candidate must lower the output noise by this factor to replace the one it refines (0.09 dB). */
const MEASURABLY = 0.98;

/**
 * Step compensate (real calibration data only, as every data-driven choice): the uint8 linear
 * kernels rounded by GPTQ on their layers' calibration inputs, then also with bias correction;
 * each kept only where it measurably lowers the model's output noise (and keeps the tolerance).
 * auto passes the compensation its trials used (`measured`: base is stored with those codes); where
 * they had none, its choice (a subset of their uint8 kernels) has none either: no second pass.
 */
async function compensateStep(
  run: Conversion,
  target: DecodedModel,
  dtypeOf: (name: string) => StorageDtype,
  base: Candidate,
  auto?: { compensation: Compensation | undefined; measured: boolean },
): Promise<Candidate> {
  const { shardBytes, tolerance, onProgress: progress } = run.options;
  const compensation = auto ? auto.compensation && onlyUint8(auto.compensation, target, dtypeOf) : await compensationOf(run, target, dtypeOf);
  if (!compensation) return base;
  const ranges = { ...run.ranges, clipOutliers: Object.values(base.encoded.quantization).some((q) => q.clipped) };
  const gainDb = 10 * Math.log10(compensation.nearestError / Math.max(compensation.compensatedError, 1e-300));
  progress({
    stage: 'verify',
    detail: `error-compensating rounding of ${compensation.rounded.size} uint8 kernel(s) on their calibration inputs: layer output error ${gainDb.toFixed(1)} dB lower${auto ? ' (over every kernel auto rounded)' : ''}`,
  });
  let best = base;
  // auto's choice was measured with compensated codes already: only bias correction is left to try.
  const variants: [string, DecodedModel][] = auto?.measured ? [] : [['compensated rounding', target]];
  if (compensation.biases.size > 0) variants.push(['compensated rounding + bias correction', withBiases(target, compensation.biases)]);
  for (const [label, model] of variants) {
    const encoded = encodeAndShard(model, dtypeOf, ranges, shardBytes, compensation.rounded);
    const candidate = { ...encoded, drift: await driftOf(run, encoded.files) };
    const better = noiseScore(candidate.drift) < noiseScore(best.drift) * MEASURABLY && (driftScore(candidate.drift) <= tolerance || driftScore(best.drift) > tolerance);
    progress({ stage: 'verify', detail: `${label}: output noise ${noiseScore(candidate.drift).toPrecision(3)} vs ${noiseScore(best.drift).toPrecision(3)}; ${better ? 'kept' : 'not kept'}` });
    if (better) best = candidate;
  }
  return best;
}

/**
 * Steps quantize + verify on the folded model, and on the unfolded one where folding could cost
 * precision (any weight stored narrower than float32; auto judges its folds per kernel only) or
 * missed the tolerance: folding is kept only where it does not raise the measured output noise at
 * the dtypes asked (nor breaks the tolerance). Throws ToleranceError if the kept one misses.
 */
async function candidatesStep(run: Conversion, model: DecodedModel, folding: { model: DecodedModel; folded: string[] }): Promise<Converted & { folded: number }> {
  let converted = await quantizeAndVerifyStep(run, folding.model);
  let folded = folding.folded.length;
  const narrowed = Object.values(converted.encoded.quantization).some((q) => q.dtype !== 'float32');
  if (folded > 0 && (!converted.report.passed || (narrowed && run.spec.kind !== 'auto'))) {
    // Folding scales each output channel of a kernel; a per-tensor uint8 grid can lose precision on that.
    const missed = !converted.report.passed;
    run.options.onProgress({
      stage: 'verify',
      detail: missed
        ? `drift ${converted.report.relativeError.toPrecision(3)} over the tolerance with BatchNormalization folded; converting again with it kept`
        : 'measuring the output error with BatchNormalization kept, against folded',
    });
    const unfolded = await quantizeAndVerifyStep(run, model);
    const keepFolded = converted.report.passed && (noiseScore(converted.drift) <= noiseScore(unfolded.drift) || !unfolded.report.passed);
    if (!missed) {
      run.options.onProgress({
        stage: 'verify',
        detail: `output noise ${noiseScore(converted.drift).toPrecision(3)} folded vs ${noiseScore(unfolded.drift).toPrecision(3)} kept; ${keepFolded ? `folding ${folded}` : 'BatchNormalization kept'}`,
      });
    }
    if (!keepFolded) [converted, folded] = [unfolded, 0];
  }
  if (!converted.report.passed) throw new ToleranceError(converted.report, run.options.quantize);
  return { ...converted, folded };
}

/** Step report: the version's edgeflow.json metadata (source, signature, dtypes, sizes, accuracy report, training). */
function reportStep(model: DecodedModel, floatBytes: number, signature: Reference['signature'], converted: Converted & { folded: number }, quantize: string): VersionMetadata {
  const { encoded, files, auto, report, folded, equalized } = converted;
  const training = (model.modelJson.userDefinedMetadata as { training?: Record<string, unknown> } | undefined)?.training;
  return {
    format: model.format,
    source: { format: model.source.format, files: model.source.files, bytes: model.source.bytes, ...(model.source.generatedBy ? { generatedBy: model.source.generatedBy } : {}) },
    signature,
    quantization: { spec: quantize, weights: encoded.quantization, ...(auto ? { auto } : {}) },
    ...(folded > 0 || equalized.length > 0 ? { optimizations: { ...(folded > 0 ? { batchNormFolded: folded } : {}), ...(equalized.length > 0 ? { equalized } : {}) } } : {}),
    sizes: { float32: floatBytes, converted: [...files.files.values()].reduce((sum, b) => sum + b.byteLength, 0), source: model.source.bytes },
    report,
    ...(training ? { training } : {}),
  };
}

/**
 * Step required graph: a layers model with layers stock TF.js cannot build (GRU with
 * reset_after, MultiHeadAttention, ...) is compiled to a graph model before anything runs it,
 * whatever --format says; refused by name when the compiler cannot lower it either.
 */
function requiredGraphStep(model: DecodedModel, options: ResolvedConvertOptions): GraphCompilation | undefined {
  if (model.format !== 'layers-model') return undefined;
  const unbuildable = layersTfjsCannotBuild(model);
  if (unbuildable.length === 0) return undefined;
  try {
    const compilation = compileToGraph(model, { foldBatchNorm: !options.keepBatchNorm });
    options.onProgress({ stage: 'read', detail: `TF.js layers cannot build ${unbuildable.join(', ')}: compiled to a graph model of standard TF ops` });
    return compilation;
  } catch (error) {
    if (!(error instanceof NotCompilable)) throw error;
    throw new EdgeflowError(
      'unconvertible',
      `TF.js layers cannot build ${unbuildable.slice(0, 5).join(', ')}${unbuildable.length > 5 ? ` and ${unbuildable.length - 5} more` : ''}, and the graph compiler cannot lower the model yet: ${error.message}`,
    );
  }
}

/** Whether a rules spec stores any float32 weight of the model at float16 or uint16. */
function storesSixteenBit(model: DecodedModel, spec: QuantizeSpec): boolean {
  if (spec.kind !== 'rules') return false;
  return model.weights.some((w) => w.dtype === 'float32' && ['float16', 'uint16'].includes(dtypeForWeight(spec, w.name)));
}

/** Step format: a layers model compiled to a graph model for `--format graph` (refused by name if it cannot be) or `auto` (where it can be). */
function formatStep(model: DecodedModel, spec: QuantizeSpec, options: ResolvedConvertOptions): { model: DecodedModel; compiled: GraphCompilation['summary'] | undefined } {
  if (model.format !== 'layers-model' || options.format === 'layers') return { model, compiled: undefined };
  let compilation: GraphCompilation;
  // BN folded in float32 (fast, self-contained); --keep-batchnorm keeps the layers model's BN values (docs/convert.md).
  if (options.format === 'graph') compilation = requireGraph(model, { foldBatchNorm: !options.keepBatchNorm });
  else if (storesSixteenBit(model, spec)) {
    // The compiler folds BN in float32 before quantizing; at 16 bits the layers model keeps BN's
    // values (fold-policy.ts), the anchor's, and is served with BN folded at load: fused speed too.
    options.onProgress({ stage: 'quantize', detail: '--format auto: keeping the layers model (weights stored at float16/uint16 keep BatchNormalization unfolded)' });
    return { model, compiled: undefined };
  } else {
    try {
      compilation = compileToGraph(model);
    } catch (error) {
      if (!(error instanceof NotCompilable)) throw error;
      options.onProgress({ stage: 'quantize', detail: `--format auto: keeping the layers model (${error.message})` });
      return { model, compiled: undefined };
    }
  }
  const { summary } = compilation;
  options.onProgress({
    stage: 'quantize',
    detail: `compiled to a graph model: ${summary.layers} layers → ${Object.values(summary.ops).reduce((a, b) => a + b, 0)} ops (${summary.fusedLayers} layers fused)`,
  });
  return { model: compilation.model, compiled: summary };
}

/**
 * Step serving: a layers model is served compiled to fused graph ops at load time (the stored
 * files keep their quantization grid) where the compiled graph computes what the converted
 * layers model computes on the calibration inputs; edgeflow.json's `serving` tells the runtime.
 */
async function servingStep(run: Conversion, converted: Converted, compiled: GraphCompilation['summary'] | undefined): Promise<ServingReport> {
  if (compiled) return { runtime: 'graph', ops: compiled.ops, fusedLayers: compiled.fusedLayers };
  if (run.format !== 'layers-model') return { runtime: 'graph' };
  await run.options.pause();
  const graph = await loadFiles(converted.files, { compile: true });
  try {
    if (graph.runtime !== 'compiled-graph') return { runtime: 'layers', reason: 'a layer has no graph lowering yet' };
    return await withLoaded(converted.files, async (layers) => {
      const drift = measureDrift(await runCalibration(layers, run.calibration, run.options.pause), await runCalibration(graph, run.calibration, run.options.pause));
      if (driftScore(drift) > COMPILED_MATCH) return { runtime: 'layers', reason: `the compiled graph differs from the layers model by ${driftScore(drift).toPrecision(3)}` };
      // Both ran once (warm); the faster of two more interleaved passes each decides.
      const times = { layers: Infinity, graph: Infinity };
      for (let round = 0; round < 2; round++) {
        for (const [kind, model] of [
          ['layers', layers],
          ['graph', graph],
        ] as const) {
          await run.options.pause();
          const start = performance.now();
          await runCalibration(model, run.calibration);
          times[kind] = Math.min(times[kind], performance.now() - start);
        }
      }
      // Below MEASURABLE_MS a pass is mostly timer noise, and either runtime is fast; in a Worker
      // performance.now() does not advance without I/O, so nothing is measured there.
      if (Math.min(times.layers, times.graph) <= 0) return { runtime: 'compiled-graph' };
      const speedup = Number((times.layers / times.graph).toFixed(2));
      if (Math.max(times.layers, times.graph) >= MEASURABLE_MS && speedup < 0.9) return { runtime: 'layers', reason: `the compiled graph ran slower (${speedup}x) on the calibration inputs`, speedup };
      run.options.onProgress({ stage: 'verify', detail: `served compiled to fused graph ops: same outputs as the layers model, ${speedup}x its speed on the calibration inputs` });
      return { runtime: 'compiled-graph', speedup };
    });
  } finally {
    graph.dispose();
  }
}

/** A calibration pass shorter than this is not timed against the other runtime. */
const MEASURABLE_MS = 20;

/** How close the load-time compiled graph must stay to the layers model (float32 rounding: ~1e-6). */
const COMPILED_MATCH = 1e-4;

/** Converts without publishing. Throws ConversionError (or ToleranceError) naming the problem. */
export async function convertModel(input: FileSet | DecodedModel, given: ConvertOptions): Promise<ConvertResult> {
  checkModelName(given.name);
  const resolved = resolveConvertOptions(given);
  const spec = parseQuantizeSpec(resolved.quantize);
  const { timings, lap } = stageClock();
  await tf.ready();

  const read = await readStep(input, resolved);
  const { options } = read;
  const { floatBytes } = read;
  const required = requiredGraphStep(read.model, options);
  const source = required?.model ?? read.model;
  lap('read');
  await options.pause();
  const { signature, calibration, reference, backendCheck } = await referenceStep(source, options);
  lap('reference');
  const { inferred, ...classifier } = classifierMetadata(signature, { ...trainedClassifier(source), ...options });
  if (inferred) options.onProgress({ stage: 'reference', detail: inferred });
  const ranges = { clipOutliers: options.clipOutliers && calibration.kind === 'data', holdZero: calibration.kind !== 'data' };
  if (options.clipOutliers && !ranges.clipOutliers) options.onProgress({ stage: 'quantize', detail: 'outlier clipping off: it is decided on real inputs only (give --calibration)' });
  const formatted = required ? { model: source, compiled: required.summary } : formatStep(source, spec, options);
  let { model, compiled } = formatted;
  const base = { options, spec, lap, calibration, reference, outputNames: signature.outputs.map((o) => o.name), ranges, backendCheck };
  let run: Conversion = { ...base, format: model.format };
  let converted: Converted & { folded: number };
  try {
    converted = await candidatesStep(run, model, compiled ? { model, folded: [] } : foldStep(model, spec, options, ranges));
  } catch (error) {
    // auto: BN folded into kernels can lose a quantization grid the layers model keeps (and serves fused anyway).
    if (!(error instanceof ToleranceError) || !compiled || options.format !== 'auto') throw error;
    options.onProgress({
      stage: 'verify',
      detail: `--format auto: the graph model misses the tolerance at ${options.quantize} (${error.report.relativeError.toPrecision(3)}); keeping the layers model`,
    });
    [model, compiled] = [source, undefined];
    run = { ...base, format: model.format };
    converted = await candidatesStep(run, model, foldStep(model, spec, options, ranges));
  }
  await options.pause();
  const serving = await servingStep(run, converted, compiled);
  lap('verify');
  const metadata = { ...reportStep(model, floatBytes, signature, converted, options.quantize), ...classifier, serving };
  return { modelFiles: converted.files, metadata, report: converted.report, timings };
}

export interface PublishedConversion extends ConvertResult {
  name: string;
  version: number;
  /** True when this source was already published (idempotent retry). */
  existing: boolean;
}

type PublishOptions = Pick<ConvertOptions, 'name' | 'onProgress'> & { sourceId?: string };

/** Publishes a conversion as a new version (timed). sourceId makes a retried publish idempotent. */
export async function publishConverted(store: ObjectStore, result: ConvertResult, options: PublishOptions): Promise<PublishedConversion> {
  const started = performance.now();
  options.onProgress?.({ stage: 'publish', detail: `writing ${result.modelFiles.files.size} files to ${store.description}` });
  const published = await publishVersion(store, { name: options.name, files: result.modelFiles.files, metadata: result.metadata, sourceId: options.sourceId });
  return { ...result, timings: { ...result.timings, publish: performance.now() - started }, name: options.name, ...published };
}

/** Converts, verifies and publishes a new version. */
export async function convertAndPublish(store: ObjectStore, input: FileSet | DecodedModel, options: ConvertOptions & { sourceId?: string }): Promise<PublishedConversion> {
  return publishConverted(store, await convertModel(input, options), options);
}
