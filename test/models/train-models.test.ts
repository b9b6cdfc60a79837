// Tiny training runs of the MNIST CNN, the CO2 forecaster and the spam classifier through the
// `edgeflow train` command (few examples, one or two epochs: these check the plumbing, not the
// accuracy; the full runs' figures are in the README), plus the regularization controls.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { convertAndPublish } from '../../converter/convert.ts';
import { trainCommand } from '../../cli/train.ts';
import { decodeEventFile } from '../../models/train/tensorboard.ts';
import { clipByGlobalNorm, learningRateAt, parseSchedule } from '../../models/train/optimizer.ts';
import { classificationMetrics, regressionMetrics } from '../../models/train/evaluate.ts';
import { readMonthlyCo2 } from '../../models/data/co2.ts';
import { mailText } from '../../models/data/spam.ts';
import { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { getJson } from '../../shared/store/util.ts';

const folder = mkdtempSync(join(tmpdir(), 'edgeflow-train-models-'));
const printed: string[] = [];

beforeAll(() => {
  vi.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterAll(() => vi.restoreAllMocks());

interface Saved {
  logdir: string;
  modelJson: { userDefinedMetadata: { training: Record<string, unknown> & { metrics: Record<string, number> }; preprocessing?: Record<string, unknown> } };
  files: Map<string, Uint8Array>;
}

async function train(args: string[]): Promise<Saved> {
  const out = join(folder, `${args[0]}-${printed.length}`);
  printed.length = 0;
  const code = await trainCommand([...args, '--out', out, '--logdir', join(out, 'logs')]);
  expect(code, printed.join('\n')).toBe(0);
  const files = new Map(['model.json', 'group1-shard1of1.bin'].map((f) => [f, new Uint8Array(readFileSync(join(out, f)))]));
  return { logdir: join(out, 'logs'), modelJson: JSON.parse(new TextDecoder().decode(files.get('model.json'))), files };
}

const eventsIn = (logdir: string, run: string) => {
  const dir = join(logdir, run);
  const file = readdirSync(dir)[0]!;
  return decodeEventFile(new Uint8Array(readFileSync(join(dir, file))));
};

describe('tiny runs through edgeflow train', () => {
  it('MNIST CNN: trains on wasm with the faster Conv2D gradient and reports accuracy, precision, recall', async () => {
    const { modelJson, logdir } = await train(['mnist', '--limit', '200', '--epochs', '2', '--batch-size', '32']);
    const training = modelJson.userDefinedMetadata.training;
    expect(training).toMatchObject({ model: 'mnist', backend: 'wasm', epochs: 2, trainSamples: 180 });
    expect(Object.keys(training.metrics).sort()).toEqual(['accuracy', 'precision', 'recall']);
    expect(printed.join('\n')).toMatch(/\| held-out \| accuracy \| precision \| recall \|\n\|-+\|-+:\|-+:\|-+:\|\n\| mnist +\| +[\d.]+% \|/);
    const layers = (modelJson as unknown as { modelTopology: { config: { layers: { class_name: string }[] } } }).modelTopology.config.layers.map((l) => l.class_name);
    expect(layers).toEqual(['Conv2D', 'MaxPooling2D', 'Conv2D', 'MaxPooling2D', 'Flatten', 'Dropout', 'Dense', 'Dropout', 'Dense']);
    // Lab 8: a histogram of every layer's kernel and bias after each epoch, beside the scalars.
    const histograms = eventsIn(logdir, 'train').filter((e) => e.histograms);
    expect(histograms.map((e) => e.step)).toEqual([1, 2]);
    for (const event of histograms) {
      const tags = Object.keys(event.histograms!);
      expect(tags.map((tag) => tag.replace(/^(conv2d|dense)_\w+?\d+\//, '$1/'))).toEqual([
        'conv2d/kernel',
        'conv2d/bias',
        'conv2d/kernel',
        'conv2d/bias',
        'dense/kernel',
        'dense/bias',
        'digit/kernel',
        'digit/bias',
      ]);
      expect(Object.values(event.histograms!).map((h) => h.num)).toEqual([144, 16, 4608, 32, 1568 * 128, 128, 1280, 10]);
    }
    const kernelSpread = (step: number) => histograms[step]!.histograms!['digit/kernel']!;
    expect(kernelSpread(1).sumSquares).not.toBe(kernelSpread(0).sumSquares);
  });

  it('CO2 LSTM: prints its MAE beside the naive forecast, and conversion publishes both', async () => {
    const { modelJson, files } = await train(['co2', '--limit', '96', '--epochs', '2']);
    const training = modelJson.userDefinedMetadata.training;
    expect(training).toMatchObject({ model: 'co2', backend: 'wasm', unit: 'ppm', heldOutSamples: 72 });
    expect(Object.keys(training.metrics).sort()).toEqual(['mae', 'mse']);
    const naive = (training.baselines as Record<string, Record<string, number>>)['naive (last value)']!;
    // The naive forecast's error is a property of the data: the held-out months' mean absolute change.
    expect(naive.mae).toBeGreaterThan(0.8);
    expect(naive.mae).toBeLessThan(2);
    expect(printed.join('\n')).toMatch(/\| co2 +\| +[\d.]+ \| +[\d.]+ \|\n\| naive \(last value\) \| +[\d.]+ \|/);
    expect(modelJson.userDefinedMetadata.preprocessing).toMatchObject({ window: 24 });

    const store = new MemoryStore();
    const published = await convertAndPublish(store, files, { name: 'co2' });
    const edgeflow = EdgeflowJson.parse((await getJson(store, `models/co2/${published.version}/edgeflow.json`))!.value);
    expect(edgeflow.training).toMatchObject({ model: 'co2', metrics: training.metrics, baselines: training.baselines });
  });

  it('spam classifier: Embedding over token ids, vocabulary saved with the model', async () => {
    const { modelJson, files } = await train(['spam', '--limit', '300', '--epochs', '1']);
    const training = modelJson.userDefinedMetadata.training;
    expect(training).toMatchObject({ model: 'spam', backend: 'wasm', task: 'binary-classification', heldOutSamples: 100 });
    expect(Object.keys(training.metrics).sort()).toEqual(['accuracy', 'precision', 'recall']);
    const preprocessing = modelJson.userDefinedMetadata.preprocessing as { vocabulary: string[]; sequenceLength: number };
    expect(preprocessing.sequenceLength).toBe(256);
    expect(preprocessing.vocabulary.length).toBeGreaterThan(1000);
    // Its class names (one sigmoid unit: ham, then spam) reach edgeflow.json through the converter.
    expect((modelJson.userDefinedMetadata as { labels?: string[] }).labels).toEqual(['ham', 'spam']);
    const store = new MemoryStore();
    const published = await convertAndPublish(store, files, { name: 'spam', quantize: 'none', samples: 1 });
    expect(EdgeflowJson.parse((await getJson(store, `models/spam/${published.version}/edgeflow.json`))!.value).labels).toEqual(['ham', 'spam']);
  });

  it('regularization options: BatchNorm, L2, clipping, a step schedule, early stopping', async () => {
    const args = [
      'mnist',
      '--limit',
      '120',
      '--epochs',
      '3',
      '--batch-norm',
      '--l2',
      '0.001',
      '--clip-norm',
      '1',
      '--lr-schedule',
      'step:1:0.5',
      '--learning-rate',
      '0.004',
      '--early-stopping',
      '5',
      '--dropout',
      '0.2',
    ];
    const { modelJson } = await train(args);
    const training = modelJson.userDefinedMetadata.training as unknown as { options: Record<string, unknown>; epochs: number };
    expect(training.options).toMatchObject({ batchNorm: true, l2: 0.001, clipNorm: 1, lrSchedule: 'step:1:0.5', earlyStopping: 5, dropout: 0.2 });
    const layers = JSON.stringify(modelJson);
    expect(layers).toContain('"class_name":"BatchNormalization"');
    expect(layers).toContain('"l2":0.001');
    const csvLine = printed.find((l) => l.startsWith('logs: '))!;
    const logdir = csvLine.slice('logs: '.length, csvLine.indexOf(' (TensorBoard'));
    const rates = eventsIn(logdir, 'train')
      .filter((e) => 'epoch_learning_rate' in e.scalars)
      .map((e) => e.scalars.epoch_learning_rate);
    expect(rates).toEqual([0.004, 0.002, 0.001].map(Math.fround));
  });
});

describe('early stopping', () => {
  it('stops once the validation loss stops falling (a learning rate far too high makes it bounce)', async () => {
    const { modelJson } = await train(['celsius', '--epochs', '20', '--early-stopping', '1', '--learning-rate', '50']);
    const training = modelJson.userDefinedMetadata.training as unknown as { epochs: number; epochsRequested: number };
    expect(training.epochsRequested).toBe(20);
    expect(training.epochs).toBeLessThan(20);
    expect(printed).toContainEqual(expect.stringMatching(new RegExp(`^trained ${training.epochs} epochs in [\\d.]+ s on wasm \\(early stopping after ${training.epochs} of 20\\)$`)));
  });
});

describe('pieces', () => {
  it('learning-rate schedules', () => {
    expect(parseSchedule('exponential:0.5')).toEqual({ kind: 'exponential', decay: 0.5 });
    expect(learningRateAt(parseSchedule('exponential:0.5'), 1, 3, 10)).toBe(0.125);
    expect(learningRateAt(parseSchedule('step:2:0.1'), 1, 3, 10)).toBeCloseTo(0.1);
    expect(learningRateAt(parseSchedule('cosine:0'), 1, 9, 10)).toBeCloseTo(0);
    expect(learningRateAt(parseSchedule('cosine'), 1, 0, 10)).toBe(1);
    expect(() => parseSchedule('warp')).toThrow(/bad --lr-schedule/);
    expect(() => parseSchedule('step:-1')).toThrow(/not a positive number/);
  });
  it('clipping by global norm scales every gradient by the same factor', async () => {
    const clipped = clipByGlobalNorm({ a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) }, 1);
    expect(Array.from(await clipped.a!.data())).toEqual([expect.closeTo(0.6, 6), 0]);
    expect(Array.from(await clipped.b!.data())).toEqual([0, expect.closeTo(0.8, 6)]);
    const untouched = clipByGlobalNorm({ a: tf.tensor1d([0.3, 0.4]) }, 1);
    expect(Array.from(await untouched.a!.data())).toEqual([expect.closeTo(0.3, 6), expect.closeTo(0.4, 6)]);
  });
  it('metrics', () => {
    expect(regressionMetrics(Float32Array.of(1, 2, 5), Float32Array.of(1, 3, 3), 2)).toEqual({ mae: 2, mse: 20 / 3 });
    // binary: positive class 1; 2 true positives, 1 false positive, 1 false negative.
    expect(classificationMetrics([1, 1, 1, 0, 0], [1, 1, 0, 1, 0], 2)).toEqual({ accuracy: 0.6, precision: 2 / 3, recall: 2 / 3 });
    const multi = classificationMetrics([0, 1, 2, 2], [0, 1, 1, 2], 3);
    expect(multi.accuracy).toBe(0.75);
    expect(multi.precision).toBeCloseTo((1 + 1 + 0.5) / 3);
    expect(multi.recall).toBeCloseTo((1 + 0.5 + 1) / 3);
  });
  it('CO2 months: gaps are filled by interpolation', () => {
    const { months, ppm } = readMonthlyCo2('Date,CO2,adjusted CO2\n1958-03-01,315.70,314.44\n1958-06-01,318.70,0\n1958-07-01,315.86,315.19\n');
    expect(months).toEqual(['1958-03', '1958-04', '1958-05', '1958-06', '1958-07']);
    expect(ppm.map((v) => +v.toFixed(2))).toEqual([315.7, 316.7, 317.7, 318.7, 315.86]);
  });
  it('mail text keeps the subject and the body, without other headers or markup', () => {
    expect(mailText('From: a@b\nSubject: Cheap pills\nX-Spam: yes\n\n<p>Buy <b>now</b>&nbsp;!</p>')).toBe('Cheap pills\n\n\n Buy  now  ! ');
  });
});
