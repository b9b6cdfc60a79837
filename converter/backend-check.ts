// Verifies the source model on the backend that serves it: edgeflow serves on wasm, and stock
// TF.js's wasm kernels can answer differently from its cpu reference kernels (an SSD detector
// with non-max suppression: 0 detections on wasm, 100 on cpu). The float32 source runs on the
// cpu backend for a sample or two and is compared with its wasm run; a disagreement beyond the
// tolerance is refused with a message instead of published silently. Runs where the cpu backend
// is registered (Node) and the serving backend is another one; skipped elsewhere (Workers).
import * as tf from '@tensorflow/tfjs-core';
import type { Calibration } from './calibration.ts';
import { driftScore, measureDrift, runCalibration, type ModelOutputs } from './verify.ts';
import type { LoadedModel } from '../shared/model-loader.ts';
import { EdgeflowError } from '../shared/errors.ts';

export interface BackendCheck {
  serving: string;
  reference: 'cpu';
  samples: number;
  relativeError: number;
  integerAgreement: number | null;
}

/** Samples run on the cpu backend: enough to see kernels that disagree, cheap next to a conversion. */
const CHECK_BATCHES = 1;
/** float32 kernels summing in another order differ by about 1e-7 relative: never a disagreement. */
const ROUNDING_NOISE = 1e-4;

export async function checkServingBackend(load: () => Promise<LoadedModel>, calibration: Calibration, servingOutputs: ModelOutputs, tolerance: number): Promise<BackendCheck | undefined> {
  const serving = tf.getBackend();
  if (serving === 'cpu' || !tf.findBackendFactory('cpu')) return undefined;
  const subset: Calibration = { ...calibration, batches: calibration.batches.slice(0, CHECK_BATCHES) };
  let cpuOutputs: ModelOutputs;
  await tf.setBackend('cpu');
  try {
    const model = await load();
    try {
      cpuOutputs = await runCalibration(model, subset);
    } finally {
      model.dispose();
    }
  } finally {
    await tf.setBackend(serving);
  }
  const drift = measureDrift(
    cpuOutputs,
    servingOutputs.map((batches) => batches.slice(0, CHECK_BATCHES)),
  );
  const check: BackendCheck = { serving, reference: 'cpu', samples: subset.batches.length, relativeError: drift.relativeError, integerAgreement: drift.integerAgreement };
  if (driftScore(drift) > Math.max(tolerance, ROUNDING_NOISE)) {
    throw new EdgeflowError(
      'tolerance_exceeded',
      `the source model itself computes differently on the serving backend (${serving}) than on TF.js's cpu reference backend: relative error ${drift.relativeError.toPrecision(3)}` +
        `${drift.integerAgreement === null ? '' : `, integer outputs ${(drift.integerAgreement * 100).toFixed(1)}% equal`} (tolerance ${tolerance}). ` +
        `Served here, it would not predict what it predicts elsewhere; nothing was published. Some ops (non-max suppression, for one) differ between TF.js backends; raise --tolerance to publish anyway.`,
    );
  }
  return check;
}
