// Runs models on calibration inputs and compares a converted model's outputs with the
// float32 reference: max / mean absolute error, scale-free relative error, top-1 agreement.
import * as tf from '@tensorflow/tfjs-core';
import type { AccuracyReport } from '../shared/schemas/edgeflow-json.ts';
import type { LoadedModel } from '../shared/model-loader.ts';
import type { Calibration } from './calibration.ts';

/** Every output of every batch: outputs[o][b] holds output o of batch b, with its shape. */
export type ModelOutputs = { values: Float32Array; shape: number[] }[][];

export async function runCalibration(model: LoadedModel, calibration: Calibration): Promise<ModelOutputs> {
  const outputs: ModelOutputs = [];
  for (const batch of calibration.batches) {
    const inputs = batch.map((t) => tf.tensor(t.values, t.shape, t.dtype));
    try {
      const results = await model.predict(inputs);
      for (let o = 0; o < results.length; o++) {
        const result = results[o]!;
        (outputs[o] ??= []).push({ values: Float32Array.from(await result.data()), shape: result.shape });
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

export interface Drift {
  maxAbsError: number;
  meanAbsError: number;
  relativeError: number;
  top1Agreement: number | null;
}

export function measureDrift(reference: ModelOutputs, candidate: ModelOutputs): Drift {
  let maxAbs = 0;
  let sumAbs = 0;
  let count = 0;
  let peak = 0;
  let agree = 0;
  let rows = 0;
  reference.forEach((batches, o) => {
    batches.forEach((ref, b) => {
      const got = candidate[o]?.[b];
      if (!got || got.values.length !== ref.values.length) throw new Error(`output ${o} of batch ${b} has a different size after conversion`);
      for (let i = 0; i < ref.values.length; i++) {
        const r = ref.values[i]!;
        const d = Math.abs(got.values[i]! - r);
        if (Number.isNaN(d)) maxAbs = Infinity;
        if (d > maxAbs) maxAbs = d;
        sumAbs += d;
        if (Math.abs(r) > peak) peak = Math.abs(r);
      }
      count += ref.values.length;
      // Classifier outputs ([batch, classes], classes > 1): compare the top class per row.
      const width = ref.shape[ref.shape.length - 1] ?? 1;
      if (o === 0 && ref.shape.length === 2 && width > 1) {
        const a = argmaxRows(ref.values, width);
        const c = argmaxRows(got.values, width);
        for (let r = 0; r < a.length; r++) if (a[r] === c[r]) agree++;
        rows += a.length;
      }
    });
  });
  return {
    maxAbsError: maxAbs,
    meanAbsError: count ? sumAbs / count : 0,
    relativeError: maxAbs / Math.max(peak, 1),
    top1Agreement: rows ? agree / rows : null,
  };
}

export function accuracyReport(drift: Drift, calibration: Calibration, tolerance: number): AccuracyReport {
  return { samples: calibration.samples, calibration: calibration.description, tolerance, ...drift, passed: drift.relativeError <= tolerance };
}
