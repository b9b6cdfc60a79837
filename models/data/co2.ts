// Monthly CO2 at Mauna Loa (vega-datasets' co2-concentration.csv) as forecasting windows.
// The network sees the last `window` month-to-month changes and predicts the next change, so the
// forecast is last value + predicted change; the naive forecast (last value, change 0) is the baseline.
// The last `testMonths` months are held out; scaling uses the training months only.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { DataOptions, Dataset } from '../types.ts';
import { packageFolder } from './packages.ts';

export const CO2_FILE = 'co2-concentration.csv';
export const CO2_WINDOW = 24;
export const CO2_TEST_MONTHS = 72;

export function co2CsvPath(): string {
  const path = join(packageFolder('vega-datasets'), 'data', CO2_FILE);
  if (!existsSync(path)) throw new Error(`${CO2_FILE} is missing from the vega-datasets package: run 'npm ci' in the edgeflow checkout`);
  return path;
}

/** Month index (years·12 + month) → ppm, with missing months filled by linear interpolation. */
export function readMonthlyCo2(csv: string): { months: string[]; ppm: number[] } {
  const rows = csv
    .trim()
    .split(/\r?\n/)
    .slice(1)
    .map((line) => line.split(','));
  const points = rows
    .map(([date, value]) => ({ month: Number(date!.slice(0, 4)) * 12 + Number(date!.slice(5, 7)) - 1, ppm: Number(value) }))
    .filter((p) => Number.isFinite(p.month) && Number.isFinite(p.ppm) && p.ppm > 0)
    .sort((a, b) => a.month - b.month);
  const months: string[] = [];
  const ppm: number[] = [];
  for (let i = 0; i < points.length; i++) {
    const point = points[i]!;
    const previous = points[i - 1];
    if (previous) {
      for (let m = previous.month + 1; m < point.month; m++) {
        ppm.push(previous.ppm + ((point.ppm - previous.ppm) * (m - previous.month)) / (point.month - previous.month));
        months.push(monthName(m));
      }
    }
    ppm.push(point.ppm);
    months.push(monthName(point.month));
  }
  return { months, ppm };
}

const monthName = (m: number) => `${Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, '0')}`;

export async function loadCo2({ limit }: DataOptions): Promise<Dataset> {
  const { months, ppm } = readMonthlyCo2(readFileSync(co2CsvPath(), 'utf8'));
  const changes = ppm.slice(1).map((v, i) => v - ppm[i]!);
  // Window k: changes[k .. k+window-1] → changes[k+window] (= ppm[k+window+1] - ppm[k+window]).
  const windows = changes.length - CO2_WINDOW;
  const firstTest = windows - CO2_TEST_MONTHS;
  const trainChanges = changes.slice(0, firstTest + CO2_WINDOW);
  const scale = Math.sqrt(trainChanges.reduce((s, c) => s + c * c, 0) / trainChanges.length);
  const build = (from: number, to: number) => {
    const count = to - from;
    const x = new Float32Array(count * CO2_WINDOW);
    const y = new Float32Array(count);
    for (let k = from; k < to; k++) {
      for (let j = 0; j < CO2_WINDOW; j++) x[(k - from) * CO2_WINDOW + j] = changes[k + j]! / scale;
      y[k - from] = changes[k + CO2_WINDOW]! / scale;
    }
    return { x: tf.tensor3d(x, [count, CO2_WINDOW, 1]), y: tf.tensor2d(y, [count, 1]) };
  };
  // A tiny run trains on the most recent windows before the held-out tail.
  const trainFrom = limit ? Math.max(0, firstTest - limit) : 0;
  const test = build(firstTest, windows);
  return {
    train: build(trainFrom, firstTest),
    test,
    description: `${CO2_FILE}: ${ppm.length} months ${months[0]}..${months[months.length - 1]}; ${firstTest - trainFrom} training windows, the last ${CO2_TEST_MONTHS} months (${months[firstTest + CO2_WINDOW + 1]}..) held out`,
    targetScale: scale,
    unit: 'ppm',
    baselines: { 'naive (last value)': tf.zerosLike(test.y) },
    preprocessing: {
      input: `the last ${CO2_WINDOW} month-to-month changes of CO2 in ppm, each divided by changeScale, shape [n, ${CO2_WINDOW}, 1]`,
      output: 'the next month-to-month change divided by changeScale: forecast = last value + output * changeScale',
      window: CO2_WINDOW,
      changeScale: scale,
    },
  };
}
