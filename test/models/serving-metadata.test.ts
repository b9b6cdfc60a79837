// The training job's classifier metadata: servingMetadata (models/train/save.ts) puts class
// names and an image spec in model.json's userDefinedMetadata, and the converter records them
// in edgeflow.json (what :classify reads) unless --labels / --image say otherwise.
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertModel } from '../../converter/convert.ts';
import { modelFiles, servingMetadata } from '../../models/train/save.ts';
import { buildCnn } from '../../models/mnist.ts';
import { MODELS } from '../../models/index.ts';

beforeAll(async () => {
  await useNodeBackend();
});

describe('servingMetadata', () => {
  it('names the MNIST CNN digits and its 28x28 grey pixels / 255; a one-unit sigmoid gets two (negative, positive)', () => {
    const cnn = buildCnn({}, { name: 'mnist_cnn', classes: 10, output: 'digit' });
    const digits = MODELS.mnist!.classes;
    expect(servingMetadata(cnn, digits)).toEqual({ labels: digits, image: { height: 28, width: 28, channels: 'grayscale', scale: 1 / 255, offset: 0 } });
    const sigmoid = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [8], units: 1, activation: 'sigmoid' })] });
    expect(servingMetadata(sigmoid, ['ham', 'spam'])).toEqual({ labels: ['ham', 'spam'] });
    expect(servingMetadata(sigmoid, ['a', 'b', 'c'])).toEqual({});
    cnn.dispose();
    sigmoid.dispose();
  });

  it('reaches edgeflow.json through the converter; --labels still wins', async () => {
    const cnn = buildCnn({}, { name: 'mnist_cnn', classes: 10, output: 'digit' });
    const names = Array.from({ length: 10 }, (_, i) => `digit ${i}`);
    const files = await modelFiles(cnn, { training: { epochs: 0 }, ...servingMetadata(cnn, names) });
    cnn.dispose();
    const recorded = await convertModel(files, { name: 'mnist', quantize: 'none', samples: 1 });
    expect(recorded.metadata.labels).toEqual(names);
    expect(recorded.metadata.image).toEqual({ height: 28, width: 28, channels: 'grayscale', scale: 1 / 255, offset: 0 });
    const overridden = await convertModel(files, { name: 'mnist', quantize: 'none', samples: 1, labels: Array.from({ length: 10 }, (_, i) => String(i)) });
    expect(overridden.metadata.labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  }, 120_000);
});
