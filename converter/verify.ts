// Runs models on calibration inputs and compares a converted model's outputs with the
// float32 reference: max / mean absolute error, scale-free relative error, SNR per output, top-1
// agreement; integer outputs (indices, counts) are compared exactly and reported apart.
import * as tf from '@tensorflow/tfjs-core';
import type { AccuracyReport } from '../shared/schemas/edgeflow-json.ts';
import type { LoadedModel } from '../shared/model-loader.ts';
import type { Calibration } from './calibration.ts';
import { NO_PAUSE, type Pause } from './pace.ts';

/** Every output of every batch: outputs[o][b] holds output o of batch b, with its shape and dtype. */
export type ModelOutputs = { values: Float32Array; shape: number[]; dtype: string }[][];

/** Runs every calibration batch through the model; pause (converter/pace.ts) is awaited before each. */
export async function runCalibration(model: LoadedModel, calibration: Calibration, pause: Pause = NO_PAUSE): Promise<ModelOutputs> {
  const outputs: ModelOutputs = [];
  for (const batch of calibration.batches) {
    await pause();
    const inputs = batch.map((t) => tf.tensor(t.values, t.shape, t.dtype));
    try {
      const results = await model.predict(inputs);
      for (let o = 0; o < results.length; o++) {
        const result = results[o]!;
        (outputs[o] ??= []).push({ values: Float32Array.from(await result.data()), shape: result.shape, dtype: result.dtype });
        result.dispose();
      }
    } finally {
      tf.dispose(inputs);
    }
  }
  return outputs;
}

function argmaxRows(values: Float32Array, width: number): Int32Array {
  const rows = new Int32Array(values.length / width);
  for (let r = 0; r < rows.length; r++) {
    let best = 0;
    for (let c = 1; c < width; c++) if (values[r * width + c]! > values[r * width + best]!) best = c;
    rows[r] = best;
  }
  return rows;
}

/** One output's drift: float outputs by error and SNR, integer outputs (indices, counts, classes) by exact agreement. */
export interface OutputDrift {
  index: number;
  kind: 'float' | 'integer';
  maxAbsError: number;
  /** 10·log10(Σ reference² / Σ error²); null when the output is unchanged (error 0). Float outputs only. */
  snrDb: number | null;
  /** Fraction of elements equal to the reference. Integer outputs only. */
  agreement: number | null;
}

export interface Drift {
  /** Over the float outputs: integer outputs are compared exactly, in integerAgreement. */
  maxAbsError: number;
  meanAbsError: number;
  relativeError: number;
  top1Agreement: number | null;
  /** Fraction of integer-output elements equal to the reference; null when the model has none. */
  integerAgreement: number | null;
  outputs: OutputDrift[];
}

const isIntegerOutput = (dtype: string) => dtype === 'int32' || dtype === 'bool';

export function measureDrift(reference: ModelOutputs, candidate: ModelOutputs): Drift {
  let maxAbs = 0;
  let sumAbs = 0;
  let count = 0;
  let peak = 0;
  let agree = 0;
  let rows = 0;
  let integerEqual = 0;
  let integerCount = 0;
  const outputs = reference.map((batches, o): OutputDrift => {
    const integer = isIntegerOutput(batches[0]?.dtype ?? 'float32');
    let outputMax = 0;
    let signal = 0;
    let noise = 0;
    let equal = 0;
    let elements = 0;
    batches.forEach((ref, b) => {
      const got = candidate[o]?.[b];
      if (!got || got.values.length !== ref.values.length) throw new Error(`output ${o} of batch ${b} has a different size after conversion`);
      for (let i = 0; i < ref.values.length; i++) {
        const r = ref.values[i]!;
        const d = Math.abs(got.values[i]! - r);
        if (integer) {
          if (d === 0) equal++;
          continue;
        }
        const e = Number.isNaN(d) ? Infinity : d;
        if (e > outputMax) outputMax = e;
        sumAbs += e;
        signal += r * r;
        noise += e * e;
        if (Math.abs(r) > peak) peak = Math.abs(r);
      }
      elements += ref.values.length;
      // Classifier outputs ([batch, classes], classes > 1): compare the top class per row.
      const width = ref.shape[ref.shape.length - 1] ?? 1;
      if (o === 0 && !integer && ref.shape.length === 2 && width > 1) {
        const a = argmaxRows(ref.values, width);
        const c = argmaxRows(got.values, width);
        for (let r = 0; r < a.length; r++) if (a[r] === c[r]) agree++;
        rows += a.length;
      }
    });
    if (integer) {
      integerEqual += equal;
      integerCount += elements;
      return { index: o, kind: 'integer', maxAbsError: 0, snrDb: null, agreement: elements ? equal / elements : 1 };
    }
    count += elements;
    if (outputMax > maxAbs) maxAbs = outputMax;
    const snrDb = noise === 0 ? null : noise === Infinity ? -Infinity : 10 * Math.log10(signal / noise);
    return { index: o, kind: 'float', maxAbsError: outputMax, snrDb: snrDb === null ? null : Number(snrDb.toFixed(2)), agreement: null };
  });
  return {
    maxAbsError: maxAbs,
    meanAbsError: count ? sumAbs / count : 0,
    relativeError: maxAbs / Math.max(peak, 1),
    top1Agreement: rows ? agree / rows : null,
    integerAgreement: integerCount ? integerEqual / integerCount : null,
    outputs,
  };
}

/**
 * One figure to compare candidates and to hold against the tolerance: the float outputs' relative
 * error, or the share of integer-output elements that changed, whichever is larger.
 */
export const driftScore = (drift: Drift): number => Math.max(drift.relativeError, 1 - (drift.integerAgreement ?? 1));

/** What a conversion must meet: the relative error within tolerance and, when asked, every float output's SNR at least minSnrDb. */
export interface Target {
  tolerance: number;
  minSnrDb?: number;
}

/** The worst float output's SNR in dB (Infinity when every float output is unchanged or there is none). */
export const worstSnrDb = (drift: Drift): number => Math.min(Infinity, ...drift.outputs.filter((o) => o.kind === 'float').map((o) => (o.snrDb === null ? Infinity : o.snrDb)));

/**
 * How much of the target a drift uses, one figure for auto's search and every keep-or-not
 * choice: ≤ 1 meets it. The larger of driftScore / tolerance and, with an SNR floor, the worst
 * output's noise power over the power the floor allows.
 */
export function targetUse(drift: Drift, target: Target): number {
  const score = driftScore(drift);
  const relative = target.tolerance > 0 ? score / target.tolerance : score > 0 ? Infinity : 0;
  if (target.minSnrDb === undefined) return relative;
  const snr = worstSnrDb(drift);
  return Math.max(relative, snr === Infinity ? 0 : 10 ** ((target.minSnrDb - snr) / 10));
}

export function accuracyReport(drift: Drift, calibration: Calibration, target: number | Target, outputNames: string[] = []): AccuracyReport {
  const { tolerance, minSnrDb } = typeof target === 'number' ? { tolerance: target, minSnrDb: undefined } : target;
  return {
    samples: calibration.samples,
    calibration: calibration.description,
    calibrationKind: calibration.kind,
    tolerance,
    ...(minSnrDb !== undefined ? { minSnrDb } : {}),
    maxAbsError: drift.maxAbsError,
    meanAbsError: drift.meanAbsError,
    relativeError: drift.relativeError,
    top1Agreement: drift.top1Agreement,
    integerAgreement: drift.integerAgreement,
    outputs: drift.outputs.map(({ index, ...output }) => ({ name: outputNames[index] ?? `output ${index}`, ...output, snrDb: output.snrDb === -Infinity ? -999 : output.snrDb })),
    passed: targetUse(drift, { tolerance, ...(minSnrDb !== undefined ? { minSnrDb } : {}) }) <= 1,
  };
}

/**
 * What refinements of one conversion are compared by: the worst float output's noise-to-signal
 * ratio (10^(−SNR/10)), or the share of integer-output elements that changed, whichever is larger.
 */
export const noiseScore = (drift: Drift): number =>
  Math.max(1 - (drift.integerAgreement ?? 1), ...drift.outputs.filter((o) => o.kind === 'float').map((o) => (o.snrDb === null ? 0 : 10 ** (-o.snrDb / 10))));
