// Held-out evaluation: MAE / MSE (in the target's real unit) for regression, and accuracy,
// precision, recall for classification (binary: of the positive class; multiclass: macro average).
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Dataset, Task } from '../types.ts';

export type Metrics = Record<string, number>;

export interface Evaluation {
  /** Metrics of the trained model on the held-out set. */
  metrics: Metrics;
  /** The same metrics for each baseline (e.g. the naive forecast), when the data has baselines. */
  baselines: Record<string, Metrics>;
  samples: number;
  unit?: string;
}

export function regressionMetrics(predicted: Float32Array, actual: Float32Array, scale = 1): Metrics {
  let abs = 0;
  let sq = 0;
  for (let i = 0; i < actual.length; i++) {
    const error = (predicted[i]! - actual[i]!) * scale;
    abs += Math.abs(error);
    sq += error * error;
  }
  return { mae: abs / actual.length, mse: sq / actual.length };
}

/** predicted and actual are class indices. */
export function classificationMetrics(predicted: ArrayLike<number>, actual: ArrayLike<number>, classes: number): Metrics {
  const truePositive = new Array<number>(classes).fill(0);
  const predictedCount = new Array<number>(classes).fill(0);
  const actualCount = new Array<number>(classes).fill(0);
  let correct = 0;
  for (let i = 0; i < actual.length; i++) {
    const p = predicted[i]!;
    const a = actual[i]!;
    predictedCount[p]!++;
    actualCount[a]!++;
    if (p === a) {
      correct++;
      truePositive[a]!++;
    }
  }
  const ratio = (n: number, d: number) => (d === 0 ? 0 : n / d);
  const accuracy = ratio(correct, actual.length);
  if (classes === 2) return { accuracy, precision: ratio(truePositive[1]!, predictedCount[1]!), recall: ratio(truePositive[1]!, actualCount[1]!) };
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    accuracy,
    precision: mean(truePositive.map((tp, c) => ratio(tp, predictedCount[c]!))),
    recall: mean(truePositive.map((tp, c) => ratio(tp, actualCount[c]!))),
  };
}

async function classIndices(values: tf.Tensor, task: Task): Promise<Int32Array> {
  const indices = tf.tidy(() => (task === 'binary-classification' ? tf.cast(tf.greater(tf.reshape(values, [-1]), 0.5), 'int32') : tf.argMax(values, -1)));
  const data = (await indices.data()) as Int32Array;
  indices.dispose();
  return data;
}

function metricsOf(task: Task, predicted: Float32Array | Int32Array, actual: Float32Array | Int32Array, classes: number, scale: number): Metrics {
  return task === 'regression' ? regressionMetrics(predicted as Float32Array, actual as Float32Array, scale) : classificationMetrics(predicted, actual, classes);
}

export async function evaluate(model: LayersModel, data: Dataset, task: Task, classCount: number, batchSize = 256): Promise<Evaluation> {
  const output = model.predict(data.test.x, { batchSize }) as tf.Tensor;
  const flat = async (t: tf.Tensor) => (task === 'regression' ? ((await t.data()) as Float32Array) : classIndices(t, task));
  const actual = await flat(data.test.y);
  const predicted = await flat(output);
  output.dispose();
  const scale = data.targetScale ?? 1;
  const baselines: Record<string, Metrics> = {};
  for (const [name, values] of Object.entries(data.baselines ?? {})) baselines[name] = metricsOf(task, await flat(values), actual, classCount, scale);
  return { metrics: metricsOf(task, predicted, actual, classCount, scale), baselines, samples: actual.length, ...(data.unit ? { unit: data.unit } : {}) };
}

/** The evaluation as a text table: one row per model (trained, then baselines), one column per metric. */
export function formatTable(evaluation: Evaluation, modelLabel: string): string {
  const rows: Array<[string, Metrics]> = [[modelLabel, evaluation.metrics], ...Object.entries(evaluation.baselines)];
  const columns = Object.keys(evaluation.metrics);
  const unitOf = (c: string) => (evaluation.unit && c === 'mae' ? ` (${evaluation.unit})` : evaluation.unit && c === 'mse' ? ` (${evaluation.unit}²)` : '');
  const header = ['held-out', ...columns.map((c) => `${c}${unitOf(c)}`)];
  const cell = (c: string, v: number) => (c === 'mae' || c === 'mse' ? v.toPrecision(4) : `${(v * 100).toFixed(2)}%`);
  const body = rows.map(([label, metrics]) => [label, ...columns.map((c) => cell(c, metrics[c]!))]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...body.map(line), `(${evaluation.samples} held-out samples)`].join('\n');
}
