// Calibration inputs for verification and `auto` quantization: parsed from a user's file
// (JSON in TF Serving's `instances` / `inputs` forms, or a .npy array for a single input) or
// generated deterministically from the model's input signature.
import { seededRandom } from '../shared/random.ts';
import type { TensorSignature } from '../shared/schemas/edgeflow-json.ts';
import { elementCount } from '../shared/codecs.ts';
import { ConversionError } from '../shared/errors.ts';
import type { InputHint } from './input-hints.ts';

/** One batch of inputs, in signature order: values plus the full shape (batch first). */
export interface CalibrationTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}
export type CalibrationBatch = CalibrationTensor[];

export interface Calibration {
  /** Where the inputs came from, for the report. */
  description: string;
  /** synthetic: generated from the signature (and the model's hints); data: the user's file. */
  kind: 'synthetic' | 'data';
  batches: CalibrationBatch[];
  samples: number;
}

export const DEFAULT_SAMPLES = 8;
/** Size used for unknown non-batch dimensions (e.g. images of any height and width). */
export const DEFAULT_FREE_DIMENSION = 64;

export const isIntegerDtype = (dtype: string) => /int|bool/i.test(dtype);

/** The batch size a model fixes in its input signature, or undefined when the batch is free. */
export const fixedBatch = (inputs: TensorSignature[]): number | undefined => inputs.map((input) => input.shape[0]).find((d) => d !== undefined && d > 0);

/**
 * Samples run one at a time (or in the model's fixed batch size): activations of a batch
 * would dominate the conversion's memory, and the wasm heap never shrinks.
 */
function batching(inputs: TensorSignature[], samples: number): { batchSize: number; count: number } {
  const batchSize = fixedBatch(inputs) ?? 1;
  return { batchSize, count: Math.max(1, Math.ceil(samples / batchSize)) };
}

/**
 * Splits a batch of n samples into batches of the model's fixed batch size (1 when the batch is
 * free); samples left over past the last whole batch are dropped, fewer than one batch is refused.
 */
export function splitSamples(batch: CalibrationBatch, inputs: TensorSignature[], source: string): { batches: CalibrationBatch[]; samples: number } {
  const samples = batch[0]!.shape[0]!;
  const size = fixedBatch(inputs) ?? 1;
  if (samples < size) throw new ConversionError(`${source} has ${samples} samples; the model takes batches of exactly ${size}`);
  const count = Math.floor(samples / size);
  const batches = Array.from({ length: count }, (_, b) =>
    batch.map((t) => {
      const perSample = t.values.length / samples;
      return { ...t, shape: [size, ...t.shape.slice(1)], values: t.values.slice(b * size * perSample, (b + 1) * size * perSample) };
    }),
  );
  return { batches, samples: count * size };
}

const describeHint = (hint: InputHint | undefined, input: TensorSignature, intRange: number): string => {
  if (hint?.kind === 'range') return `${input.name} uniform in [${round(hint.low)}, ${round(hint.high)}] (${hint.reason})`;
  if (hint?.kind === 'normal') return `${input.name} normal around the ${hint.reason}'s mean and variance`;
  if (hint?.kind === 'tokens') return `${input.name} token ids below ${hint.vocabulary} (${hint.reason})`;
  return isIntegerDtype(input.dtype) ? `${input.name} integers in [0, ${intRange})` : `${input.name} uniform in [0, 1)`;
};
const round = (value: number) => Number(value.toPrecision(4));

/**
 * Synthetic inputs that follow what the model tells (converter/input-hints.ts): a Rescaling
 * layer's range, a Normalization layer's mean and variance, an Embedding's vocabulary (also for
 * float inputs); otherwise uniform values in [0, 1) for float inputs and integers in
 * [0, intRange) for integer inputs (intRange: the model's embedding vocabulary when it has one).
 */
export function generateCalibration(inputs: TensorSignature[], samples = DEFAULT_SAMPLES, intRange = 10, seed = 1, hints: (InputHint | undefined)[] = []): Calibration {
  const next = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const { batchSize, count } = batching(inputs, samples);
  const batches: CalibrationBatch[] = [];
  for (let b = 0; b < count; b++) {
    batches.push(
      inputs.map((input, i) => {
        const shape = input.shape.map((d, axis) => (axis === 0 ? batchSize : d > 0 ? d : DEFAULT_FREE_DIMENSION));
        const n = elementCount(shape);
        const hint = hints[i];
        const integer = isIntegerDtype(input.dtype);
        const values = integer ? new Int32Array(n) : new Float32Array(n);
        const channels = shape[shape.length - 1] ?? 1;
        for (let e = 0; e < n; e++) {
          if (hint?.kind === 'tokens') values[e] = Math.floor(next() * hint.vocabulary);
          else if (hint?.kind === 'range') values[e] = hint.low + next() * (hint.high - hint.low);
          else if (hint?.kind === 'normal') {
            const c = hint.mean.length === channels ? e % channels : 0;
            values[e] = hint.mean[c]! + gaussian() * hint.std[c]!;
          } else values[e] = integer ? Math.floor(next() * intRange) : next();
        }
        return { shape, dtype: integer ? ('int32' as const) : ('float32' as const), values };
      }),
    );
  }
  const drawn = inputs.map((input, i) => describeHint(hints[i], input, intRange)).join('; ');
  return { description: `synthetic: ${batchSize * count} samples (seed ${seed}): ${drawn}`, kind: 'synthetic', batches, samples: batchSize * count };
}

function flatten(value: unknown, out: number[], shape: number[], depth: number, field: string): void {
  if (Array.isArray(value)) {
    if (shape.length === depth) shape.push(value.length);
    else if (shape[depth] !== value.length) throw new ConversionError(`calibration ${field} is ragged: expected ${shape[depth]} items at depth ${depth}, found ${value.length}`);
    for (const item of value) flatten(item, out, shape, depth + 1, field);
    return;
  }
  if (typeof value !== 'number' && typeof value !== 'boolean') throw new ConversionError(`calibration ${field} holds a ${typeof value}; only numbers are accepted`);
  if (shape.length !== depth) throw new ConversionError(`calibration ${field} is ragged at depth ${depth}`);
  out.push(Number(value));
}

function toTensor(value: unknown, input: TensorSignature, field: string): CalibrationTensor {
  const out: number[] = [];
  const shape: number[] = [];
  flatten(value, out, shape, 0, field);
  const rank = input.shape.length;
  if (rank && shape.length !== rank) throw new ConversionError(`calibration ${field} has rank ${shape.length}; input ${input.name} needs rank ${rank} (batch first)`);
  input.shape.forEach((d, i) => {
    if (i > 0 && d > 0 && shape[i] !== d) throw new ConversionError(`calibration ${field} has shape [${shape}]; input ${input.name} needs [${input.shape}]`);
  });
  const integer = isIntegerDtype(input.dtype);
  return { shape, dtype: integer ? 'int32' : 'float32', values: integer ? Int32Array.from(out) : Float32Array.from(out) };
}

/**
 * JSON: `{"instances": [...]}` (one row per sample; objects keyed by input name when the model
 * has several inputs), `{"inputs": {name: [...]}}` or `{"inputs": [...]}` (columnar), or a bare array of rows.
 */
export function parseCalibrationJson(text: string, inputs: TensorSignature[], source = 'calibration file'): Calibration {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new ConversionError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  const record = (doc && typeof doc === 'object' && !Array.isArray(doc) ? doc : {}) as Record<string, unknown>;
  let columns: unknown[];
  if (Array.isArray(doc) || Array.isArray(record.instances)) {
    const rows = (Array.isArray(doc) ? doc : record.instances) as unknown[];
    if (rows.length === 0) throw new ConversionError(`${source} has no instances`);
    columns = inputs.map((input) => rows.map((row) => (inputs.length > 1 ? (row as Record<string, unknown>)?.[input.name] : row)));
  } else if (record.inputs !== undefined) {
    const value = record.inputs;
    columns = inputs.length === 1 && Array.isArray(value) ? [value] : inputs.map((input) => (value as Record<string, unknown>)[input.name]);
  } else {
    throw new ConversionError(`${source} must hold "instances" (rows) or "inputs" (columns), as in TF Serving's predict request`);
  }
  const batch = columns.map((column, i) => {
    if (column === undefined) throw new ConversionError(`${source} has no values for input ${inputs[i]!.name}`);
    return toTensor(column, inputs[i]!, `${source}: ${inputs[i]!.name}`);
  });
  if (batch.some((t) => t.shape[0] !== batch[0]!.shape[0])) throw new ConversionError(`${source}: every input needs the same number of samples`);
  return { description: `${source}: ${batch[0]!.shape[0]} samples`, kind: 'data', ...splitSamples(batch, inputs, source) };
}

/** A NumPy .npy array (little-endian f4, f8, i4, i8, u1) for a model with one input. */
export function parseNpy(bytes: Uint8Array, inputs: TensorSignature[], source = 'calibration.npy'): Calibration {
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== '\x93NUMPY') throw new ConversionError(`${source} is not a .npy file`);
  if (inputs.length !== 1) throw new ConversionError(`${source}: a .npy file can only calibrate a model with one input; use JSON for ${inputs.length} inputs`);
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!descr || fortran) throw new ConversionError(`${source}: only C-order arrays with a plain dtype are read`);
  const n = elementCount(shape);
  const data = bytes.subarray(headerStart + headerLength);
  const readers: Record<string, [number, (offset: number) => number]> = {
    '<f4': [4, (o) => view.getFloat32(o, true)],
    '<f8': [8, (o) => view.getFloat64(o, true)],
    '<i4': [4, (o) => view.getInt32(o, true)],
    '<i8': [8, (o) => Number(view.getBigInt64(o, true))],
    '|u1': [1, (o) => view.getUint8(o)],
  };
  const reader = readers[descr];
  if (!reader) throw new ConversionError(`${source}: dtype ${descr} is not supported (use float32, float64, int32, int64 or uint8)`);
  if (data.byteLength < n * reader[0]) throw new ConversionError(`${source} is truncated: shape [${shape}] needs ${n * reader[0]} bytes of data`);
  const input = inputs[0]!;
  const integer = isIntegerDtype(input.dtype);
  const values = integer ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = reader[1](headerStart + headerLength + i * reader[0]);
  if (input.shape.length && shape.length !== input.shape.length) throw new ConversionError(`${source} has shape [${shape}]; input ${input.name} needs rank ${input.shape.length}`);
  const batch: CalibrationBatch = [{ shape, dtype: integer ? 'int32' : 'float32', values }];
  return { description: `${source}: ${shape[0]} samples`, kind: 'data', ...splitSamples(batch, inputs, source) };
}
