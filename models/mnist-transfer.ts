// Lab 5, transfer learning: the MNIST CNN is trained on digits 0-4 (the source task); its two
// convolution blocks then serve a new head (Dense 128 → 5-way softmax) for digits 5-9, trained on a
// small set (10 images of each digit) with the convolutions frozen, then fine-tuned with the top
// convolution unfrozen at a tenth of the learning rate. The job reports it beside the same CNN
// trained from scratch on the same 50 images. (Freezing the source's Dense layer too, features
// tuned to 0-4, did worse than training from scratch.)
import { readDigits, gather, MNIST_TEST_FRACTION } from './data/mnist.ts';
import { limitTo, stratifiedSplit } from './data/random.ts';
import { buildCnn } from './mnist.ts';
import type { DataOptions, Dataset, ModelDefinition, Regularization } from './types.ts';

/** Images of each digit 5-9 the new head trains on. */
export const TRANSFER_PER_DIGIT = 10;

const isTarget = (digit: number) => digit >= 5;

async function loadData({ limit, seed }: DataOptions): Promise<Dataset> {
  const digits = readDigits();
  const split = stratifiedSplit(digits.labels, MNIST_TEST_FRACTION, seed);
  // The first TRANSFER_PER_DIGIT training images of each of 5-9 (the split is shuffled).
  const taken = new Map<number, number>();
  const train = split.train.filter((i) => {
    const digit = digits.labels[i]!;
    if (!isTarget(digit) || (taken.get(digit) ?? 0) >= TRANSFER_PER_DIGIT) return false;
    taken.set(digit, (taken.get(digit) ?? 0) + 1);
    return true;
  });
  const source = limitTo(
    split.train.filter((i) => !isTarget(digits.labels[i]!)),
    limit,
  );
  const testAll = split.test.filter((i) => isTarget(digits.labels[i]!));
  const test = limit ? limitTo(testAll, Math.max(100, Math.round(limit / 2))) : testAll;
  return {
    train: gather(digits, train, 0, seed, 5, 5),
    test: gather(digits, test, 0, seed, 5, 5),
    source: { ...gather(digits, source, 0, seed, 0, 5), description: `${source.length} images of digits 0-4` },
    description: `mnist package: the base learns digits 0-4 from ${source.length} images; the new head learns 5-9 from ${train.length} (${TRANSFER_PER_DIGIT} of each); ${test.length} of 5-9 held out`,
    preprocessing: { input: '28x28x1 grey image, values 0..1 (0 = background)', classes: 'digits 5-9' },
  };
}

const cnn = (output: string) => (regularization: Regularization) => buildCnn(regularization, { name: `${output}_cnn`, classes: 5, output, namedBase: true });

export const mnistTransfer: ModelDefinition = {
  name: 'mnist-transfer',
  summary: 'digits 5-9 from 50 images, on CNN convolutions trained on digits 0-4 (transfer learning)',
  task: 'multiclass-classification',
  classes: ['5', '6', '7', '8', '9'],
  defaults: { epochs: 20, batchSize: 16, learningRate: 0.002, validationSplit: 0, dropout: 0.5 },
  supports: ['dropout', 'l2'],
  loadData,
  build: cnn('digit_5_9'),
  loss: 'categoricalCrossentropy',
  metrics: ['accuracy'],
  transfer: {
    buildSource: cnn('digit_0_4'),
    sourceEpochs: 3,
    sourceBatchSize: 64,
    baseLayers: ['conv_1', 'conv_2'],
    fineTuneLayers: ['conv_2'],
    headEpochs: 15,
    fineTuneRate: 0.1,
  },
};
