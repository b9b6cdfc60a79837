// Lab 5, transfer learning (`edgeflow train mnist-transfer`): the base learns digits 0-4, the new
// head learns 5-9 from 50 images with the convolutions frozen, then conv_2 fine-tunes. One short
// run of the job checks what it does and says. The margin, on one base trained on 3,000 images of
// 0-4 (3 epochs): four transferred models against four trained from scratch on the same 50 images,
// same epochs; stated margin: the transferred models' mean held-out accuracy on 5-9 is at least 1
// point higher (measured: +3.1 points, 91.2% vs 88.1%; full runs in docs/train.md).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { MODELS } from '../../models/index.ts';
import { mnistTransfer, TRANSFER_PER_DIGIT } from '../../models/mnist-transfer.ts';
import { runTraining, type TrainJobResult } from '../../models/train/run.ts';
import { installFastGradients } from '../../models/train/fast-gradients.ts';
import { fitInPhases, fromScratch, takeFrozenBase, trainSource, unfreezeForFineTuning } from '../../models/train/transfer.ts';

const folder = mkdtempSync(join(tmpdir(), 'edgeflow-train-transfer-'));
const lines: string[] = [];
let result: TrainJobResult;

beforeAll(async () => {
  result = await runTraining({
    model: 'mnist-transfer',
    backend: 'wasm',
    limit: 1500,
    out: join(folder, 'out'),
    logdir: join(folder, 'logs'),
    log: (line) => lines.push(line),
    progress: { write: () => {}, isTTY: false },
  });
}, 300_000);

describe('lab 5: transfer learning', () => {
  it('is a model of edgeflow train', () => {
    expect(MODELS['mnist-transfer']).toBe(mnistTransfer);
  });

  it('splits the digits: a base task of 0-4, 10 images of each of 5-9 to learn from, 5-9 held out', async () => {
    const data = await mnistTransfer.loadData({ seed: 42, validationSplit: 0, limit: 1500 });
    const counts = (y: tf.Tensor) => tf.tidy(() => Array.from(tf.sum(y, 0).dataSync()));
    expect(data.source!.x.shape).toEqual([1500, 28, 28, 1]);
    expect(data.source!.y.shape).toEqual([1500, 5]);
    expect(counts(data.train.y)).toEqual([10, 10, 10, 10, 10].map(() => TRANSFER_PER_DIGIT));
    expect(data.test.y.shape[1]).toBe(5);
    expect(counts(data.test.y).every((n) => n > 100)).toBe(true);
    tf.dispose([data.train.x, data.train.y, data.test.x, data.test.y, data.source!.x, data.source!.y]);
  });

  it('copies the base into the new model frozen, then unfreezes the top convolution', () => {
    const transfer = mnistTransfer.transfer!;
    const source = transfer.buildSource({});
    const model = mnistTransfer.build({});
    takeFrozenBase(source, model, transfer);
    for (const name of ['conv_1', 'conv_2']) {
      const [a, b] = [source.getLayer(name).getWeights()[0]!, model.getLayer(name).getWeights()[0]!];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    }
    expect(model.layers.filter((l) => !l.trainable).map((l) => l.name)).toEqual(['conv_1', 'conv_2']);
    unfreezeForFineTuning(model, transfer);
    expect(model.layers.filter((l) => !l.trainable).map((l) => l.name)).toEqual(['conv_1']);
    source.dispose();
    model.dispose();
  });

  it('says what it did: the source task, the frozen and fine-tuned layers, the from-scratch comparison', () => {
    expect(lines).toContainEqual(
      expect.stringMatching(/^source: trained 3 epochs in [\d.]+ s on 1500 images of digits 0-4 \(training accuracy [\d.]+%\); its conv_1, conv_2 are frozen for 15 epochs/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^from scratch: the same network trained 20 epochs on the same 50 examples/));
    expect(lines.join('\n')).toMatch(/\| mnist-transfer \| +[\d.]+% \|.*\n\| from scratch +\| +[\d.]+% \|/);
    expect(result.history).toHaveLength(20);
    // The learning rate drops to a tenth when fine-tuning starts (epoch 16).
    expect(result.history[15]!.learningRate).toBeCloseTo(result.history[14]!.learningRate * 0.1, 8);
    const saved = JSON.parse(readFileSync(join(folder, 'out', 'model.json'), 'utf8'));
    const layers = saved.modelTopology.config.layers as Array<{ config: { name: string; trainable: boolean; units?: number } }>;
    expect(layers.find((l) => l.config.name === 'conv_1')!.config.trainable).toBe(false);
    expect(layers[layers.length - 1]!.config).toMatchObject({ name: 'digit_5_9', units: 5 });
  });

  it('beats training from scratch on the same small data by at least 1 point (mean of four each, one base)', async () => {
    await tf.setBackend('wasm');
    const restore = installFastGradients();
    const transfer = mnistTransfer.transfer!;
    const data = await mnistTransfer.loadData({ seed: 42, validationSplit: 0, limit: 3000 });
    const regularization = { dropout: mnistTransfer.defaults.dropout! };
    const { epochs, batchSize, learningRate } = mnistTransfer.defaults;
    const { source } = await trainSource(mnistTransfer, transfer, data, regularization, tf.train.adam(learningRate));
    const accuracy = async (predictions: tf.Tensor) => {
      const hits = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(predictions, -1), tf.argMax(data.test.y, -1)), 'float32')));
      const value = (await hits.data())[0]!;
      tf.dispose([hits, predictions]);
      return value;
    };
    const transferred: number[] = [];
    const scratch: number[] = [];
    for (let run = 0; run < 4; run++) {
      const model = mnistTransfer.build(regularization);
      takeFrozenBase(source, model, transfer);
      const compile = (rate: number) => model.compile({ optimizer: tf.train.adam(rate), loss: mnistTransfer.loss });
      compile(learningRate);
      const fitEpochs = (from: number, to: number) => model.fit(data.train.x, data.train.y, { initialEpoch: from, epochs: to, batchSize, shuffle: true, verbose: 0 });
      await fitInPhases(model, transfer, epochs, fitEpochs, (factor) => compile(learningRate * factor));
      transferred.push(await accuracy(model.predict(data.test.x) as tf.Tensor));
      model.dispose();
      scratch.push(await accuracy(await fromScratch(mnistTransfer, data, regularization, tf.train.adam(learningRate), epochs, batchSize)));
    }
    source.dispose();
    restore();
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const percent = (values: number[]) => values.map((v) => `${(v * 100).toFixed(2)}%`).join(' ');
    console.log(`held-out accuracy on 5-9: transfer ${percent(transferred)}; from scratch ${percent(scratch)}`);
    expect(mean(transferred) - mean(scratch)).toBeGreaterThanOrEqual(0.01);
    result.model.dispose();
  });
});
