// Calibration inputs and drift: synthetic inputs follow the model's own hints (Rescaling,
// Normalization, Embedding), calibration files are split to a fixed batch size, integer outputs
// are compared exactly and apart from float drift, and the report says what the inputs were.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { generateCalibration, parseCalibrationJson } from '../../converter/calibration.ts';
import { convertModel, ToleranceError } from '../../converter/convert.ts';
import { inputHints } from '../../converter/input-hints.ts';
import { accuracyReport, measureDrift, type ModelOutputs } from '../../converter/verify.ts';
import { modelFiles } from '../../models/train/save.ts';
import { useNodeBackend } from '../../cli/backend.ts';
import { fixedValues } from '../helpers/tiny-models.ts';

const sequential = (layers: { class_name: string; config: Record<string, unknown> }[]) => ({
  class_name: 'Sequential',
  config: { name: 'seq', layers: layers.map((l, i) => ({ ...l, config: { name: `layer${i}`, ...l.config } })) },
});

const range = (values: ArrayLike<number>) => {
  let [lo, hi] = [Infinity, -Infinity];
  for (let i = 0; i < values.length; i++) [lo, hi] = [Math.min(lo, values[i]!), Math.max(hi, values[i]!)];
  return [lo, hi] as const;
};

describe('synthetic calibration follows the model', () => {
  it('draws pixels in [0, 255] for Rescaling(1/255) and in [0, 255] for Rescaling(1/127.5, -1)', () => {
    for (const [scale, offset] of [
      [1 / 255, 0],
      [1 / 127.5, -1],
    ]) {
      const topology = sequential([{ class_name: 'Rescaling', config: { scale, offset, batch_input_shape: [null, 8, 8, 3] } }]);
      const hints = inputHints(topology, 1, []);
      expect(hints[0]).toMatchObject({ kind: 'range', low: expect.closeTo(0, 6), high: expect.closeTo(255, 6) });
      const calibration = generateCalibration([{ name: 'x', dtype: 'float32', shape: [-1, 8, 8, 3] }], 4, 10, 1, hints);
      const [lo, hi] = range(calibration.batches.flatMap((b) => Array.from(b[0]!.values)));
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeGreaterThan(200);
      expect(hi).toBeLessThanOrEqual(255);
      expect(calibration.kind).toBe('synthetic');
      expect(calibration.description).toMatch(/synthetic: 4 samples .*x uniform in \[0, 255\] \(Rescaling layer "layer0"/);
    }
  });

  it('draws token ids across the Embedding vocabulary, also for a float input', () => {
    const topology = sequential([{ class_name: 'Embedding', config: { input_dim: 500, output_dim: 4, batch_input_shape: [null, 20] } }]);
    const calibration = generateCalibration([{ name: 'tokens', dtype: 'float32', shape: [-1, 20] }], 8, 10, 1, inputHints(topology, 1, []));
    const values = calibration.batches.flatMap((b) => Array.from(b[0]!.values));
    expect(values.every((v) => Number.isInteger(v) && v >= 0 && v < 500)).toBe(true);
    expect(new Set(values).size).toBeGreaterThan(50);
  });

  it('draws around a Normalization layer mean and variance (from its config or its weights)', () => {
    const topology = sequential([{ class_name: 'Normalization', config: { axis: -1, batch_input_shape: [null, 2] } }]);
    const weights = [
      { name: 'layer0/mean', shape: [2], dtype: 'float32' as const, values: Float32Array.from([100, -5]) },
      { name: 'layer0/variance', shape: [2], dtype: 'float32' as const, values: Float32Array.from([25, 0.01]) },
    ];
    const calibration = generateCalibration([{ name: 'x', dtype: 'float32', shape: [-1, 2] }], 64, 10, 1, inputHints(topology, 1, weights));
    const rows = calibration.batches.map((b) => Array.from(b[0]!.values));
    const mean = (c: number) => rows.reduce((s, r) => s + r[c]!, 0) / rows.length;
    expect(mean(0)).toBeGreaterThan(97);
    expect(mean(0)).toBeLessThan(103);
    expect(mean(1)).toBeCloseTo(-5, 0);
  });

  it('gives no hint to inputs a plain layer reads, and none for graph models', () => {
    expect(inputHints(sequential([{ class_name: 'Dense', config: { units: 2, batch_input_shape: [null, 3] } }]), 1, [])).toEqual([undefined]);
    expect(inputHints(undefined, 1, [])).toEqual([]);
  });
});

describe('calibration files', () => {
  it('splits 8 instances into 8 batches for a model with a fixed batch of 1', () => {
    const instances = Array.from({ length: 8 }, (_, i) => [i, i + 1, i + 2]);
    const calibration = parseCalibrationJson(JSON.stringify({ instances }), [{ name: 'x', dtype: 'float32', shape: [1, 3] }]);
    expect(calibration.kind).toBe('data');
    expect(calibration.samples).toBe(8);
    expect(calibration.batches).toHaveLength(8);
    expect(calibration.batches.map((b) => b[0]!.shape)).toEqual(Array(8).fill([1, 3]));
    expect(Array.from(calibration.batches[7]![0]!.values)).toEqual([7, 8, 9]);
  });

  it('refuses fewer samples than the fixed batch, naming both', () => {
    expect(() => parseCalibrationJson(JSON.stringify({ instances: [[1], [2]] }), [{ name: 'x', dtype: 'float32', shape: [4, 1] }], 'cal.json')).toThrow(
      /cal.json has 2 samples; the model takes batches of exactly 4/,
    );
  });
});

describe('drift', () => {
  const outputs = (float: number[], integer: number[]): ModelOutputs => [
    [{ values: Float32Array.from(float), shape: [1, float.length], dtype: 'float32' }],
    [{ values: Float32Array.from(integer), shape: [1, integer.length], dtype: 'int32' }],
  ];

  it('compares integer outputs exactly and apart: large index values do not count as float drift', () => {
    const drift = measureDrift(outputs([0.5, 0.25], [12804, 7, 3, 1]), outputs([0.5, 0.26], [12804, 9, 3, 1]));
    expect(drift.relativeError).toBeCloseTo(0.01, 6);
    expect(drift.integerAgreement).toBe(0.75);
    expect(drift.outputs[1]).toMatchObject({ kind: 'integer', agreement: 0.75 });
    const snr = 10 * Math.log10((0.25 + 0.0625) / 0.0001);
    expect(drift.outputs[0]!.snrDb).toBeCloseTo(snr, 1);
    const calibration = { description: 'test', kind: 'data' as const, batches: [], samples: 1 };
    // A quarter of the indices changed: over a 0.05 tolerance, whatever the float error.
    expect(accuracyReport(drift, calibration, 0.05, ['scores', 'indices'])).toMatchObject({ passed: false, outputs: [{ name: 'scores' }, { name: 'indices' }] });
    expect(accuracyReport(measureDrift(outputs([1], [5]), outputs([1], [5])), calibration, 0.05).outputs).toEqual([
      { name: 'output 0', kind: 'float', maxAbsError: 0, snrDb: null, agreement: null },
      { name: 'output 1', kind: 'integer', maxAbsError: 0, snrDb: null, agreement: 1 },
    ]);
  });
});

describe('conversion report', () => {
  async function rescalingModel() {
    const model = tfl.sequential({
      layers: [
        tfl.layers.rescaling({ scale: 1 / 255, offset: 0, inputShape: [6, 6, 1], name: 'rescale' }),
        tfl.layers.flatten({ name: 'flat' }),
        tfl.layers.dense({ units: 3, activation: 'softmax', name: 'probs' }),
      ],
    });
    model.setWeights(model.weights.map((w, i) => tf.tensor(fixedValues(w.shape.reduce((a, b) => a! * b!, 1)!, i + 3), w.shape as number[])));
    const files = await modelFiles(model);
    model.dispose();
    return files;
  }

  it('records synthetic calibration drawn from the Rescaling range, with SNR per output', async () => {
    await useNodeBackend();
    const result = await convertModel(await rescalingModel(), { name: 'rescaled', quantize: 'uint8', samples: 4 });
    expect(result.report).toMatchObject({ calibrationKind: 'synthetic', passed: true });
    expect(result.report.calibration).toMatch(/uniform in \[0, 255\] \(Rescaling layer "rescale"/);
    expect(result.report.outputs).toEqual([expect.objectContaining({ name: 'probs', kind: 'float', snrDb: expect.any(Number) })]);
    expect(result.report.outputs![0]!.snrDb!).toBeGreaterThan(20);
    // The float32 source also ran on TF.js's cpu reference backend, next to wasm (what serves).
    expect(result.report.backendCheck).toMatchObject({ serving: 'wasm', reference: 'cpu', samples: 1 });
    expect(result.report.backendCheck!.relativeError).toBeLessThan(1e-4);
  });

  it('suggests float32 when float16 was the mode that missed the tolerance', async () => {
    await useNodeBackend();
    const error = await convertModel(await rescalingModel(), { name: 'rescaled', quantize: 'float16', samples: 4, tolerance: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToleranceError);
    expect((error as Error).message).toMatch(/with --quantize float16, on synthetic inputs; nothing was published\. Use --quantize none/);
  });
});
