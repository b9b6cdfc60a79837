// Cross-layer equalization (converter/optimize/equalize.ts): which layer pairs are equalized (in
// a layers model and in its compiled graph), that the equalized model computes what the original does in stock TF.js with both kernels'
// channel ranges balanced, and that a uint8 conversion keeps it, records it and gains SNR by it
// (the same conversion with equalize: false loses that gain); on the keras-wild denoiser (a
// fixture), auto:snr=60 meets issue 12's image-to-image goal on held-out photos.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import type { Calibration } from '../../converter/calibration.ts';
import { convertModel } from '../../converter/convert.ts';
import { encodeWeights } from '../../converter/encode.ts';
import type { DecodedModel, FileSet } from '../../converter/model.ts';
import { compileToGraph } from '../../converter/optimize/compile-graph.ts';
import { equalizeChannels } from '../../converter/optimize/equalize.ts';
import { readModel } from '../../converter/read/index.ts';
import { shardModel, type ModelFiles } from '../../converter/shard.ts';
import { memoryHandler } from '../../shared/model-loader.ts';
import { modelFiles } from '../../models/train/save.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { HAVE_FIXTURES, NO_FIXTURES_REASON, fixturePath, readFixture } from '../helpers/fixtures.ts';
import { decodeImage } from '../../shared/image/decode.ts';
import { imageToInput } from '../../shared/image/to-input.ts';

beforeAll(async () => {
  await useNodeBackend();
});

/**
 * An encoder-decoder like the keras-wild denoiser: conv (relu) → max pool → conv (relu) →
 * upsampling → conv (linear) → conv (sigmoid) → conv, plus a side conv reading the first one
 * (so that one has two readers). Equalizable: enc2 → dec1 (through upsampling), dec1 → dec2.
 * Not: enc1 (two readers), dec2 (sigmoid), side and out (model outputs).
 * The first convolutions' output channels are scaled by 2^(c-3), their readers' inputs by the
 * inverse: the same function, with channel ranges 1/8 to 16 apart that one per-tensor grid fits badly.
 */
async function denoiserFiles(): Promise<FileSet> {
  const input = tfl.input({ shape: [16, 16, 1], name: 'image' });
  const conv = (filters: number, activation: 'relu' | 'linear' | 'sigmoid', name: string) => tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation, name });
  const enc1 = conv(8, 'relu', 'enc1').apply(input) as tfl.SymbolicTensor;
  const pooled = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(enc1) as tfl.SymbolicTensor;
  const enc2 = conv(8, 'relu', 'enc2').apply(pooled) as tfl.SymbolicTensor;
  const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(enc2) as tfl.SymbolicTensor;
  const dec1 = conv(8, 'linear', 'dec1').apply(up) as tfl.SymbolicTensor;
  const dec2 = conv(4, 'sigmoid', 'dec2').apply(dec1) as tfl.SymbolicTensor;
  const out = conv(1, 'linear', 'out').apply(dec2) as tfl.SymbolicTensor;
  const side = conv(2, 'linear', 'side').apply(enc1) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: [out, side], name: 'denoiser' });
  setFixedWeights(model, 5);
  const unbalance = (a: string, b: string) => {
    const [kernelA, biasA] = model.getLayer(a).getWeights();
    const [kernelB, biasB] = model.getLayer(b).getWeights();
    const factors = tf.tensor1d(Array.from({ length: kernelA!.shape[3]! }, (_, c) => 2 ** (c - 3)));
    model.getLayer(a).setWeights([tf.mul(kernelA!, factors), tf.mul(biasA!, factors)]);
    model.getLayer(b).setWeights([tf.div(kernelB!, tf.reshape(factors, [1, 1, -1, 1])), biasB!]);
  };
  unbalance('enc2', 'dec1');
  unbalance('dec1', 'dec2');
  const files = await modelFiles(model);
  model.dispose();
  return files;
}

function calibration(samples: number, seed: number): Calibration {
  const batches = Array.from({ length: samples }, (_, i) => [{ shape: [1, 16, 16, 1], dtype: 'float32' as const, values: fixedValues(256, seed + i).map((v) => (v + 1) / 2) }]);
  return { description: `${samples} noise images`, kind: 'data', batches, samples };
}

const float32Files = (model: DecodedModel) =>
  shardModel(
    model,
    encodeWeights(model.weights, () => 'float32'),
  );

/** The model's first output (`out` of the denoiser) on the inputs, loaded from its files by stock tf.loadLayersModel / tf.loadGraphModel. */
async function outputs(files: ModelFiles, inputs: Calibration): Promise<Float32Array> {
  const handler = memoryHandler(files.modelJson, (path) => files.files.get(path)!);
  const graph = files.modelJson.format === 'graph-model';
  const model = graph ? await loadGraphModel(handler) : await tfl.loadLayersModel(handler);
  try {
    const values = inputs.batches.map((batch) =>
      tf.tidy(() => {
        const x = tf.tensor(batch[0]!.values, batch[0]!.shape);
        const predicted = graph ? (model as Awaited<ReturnType<typeof loadGraphModel>>).execute(x, 'out') : model.predict(x);
        return ((Array.isArray(predicted) ? predicted[0] : predicted) as tf.Tensor).dataSync() as Float32Array;
      }),
    );
    return Float32Array.from(values.flatMap((v) => Array.from(v)));
  } finally {
    model.dispose();
  }
}

function snrDb(reference: Float32Array, values: Float32Array): number {
  let signal = 0;
  let noise = 0;
  reference.forEach((r, i) => {
    signal += r * r;
    noise += (values[i]! - r) ** 2;
  });
  return 10 * Math.log10(signal / noise);
}

/** Largest |w| per channel of one axis of a [kh, kw, in, out] kernel. */
function ranges(model: DecodedModel, name: string, axis: 2 | 3): number[] {
  const weight = model.weights.find((w) => w.name === name)!;
  const [, , inputs, outputs] = weight.shape as [number, number, number, number];
  const found = new Array<number>(axis === 3 ? outputs : inputs).fill(0);
  (weight.values as Float32Array).forEach((v, i) => {
    const c = axis === 3 ? i % outputs : Math.floor(i / outputs) % inputs;
    found[c] = Math.max(found[c]!, Math.abs(v));
  });
  return found;
}

describe('cross-layer equalization', () => {
  it('equalizes the chains through pooling and upsampling, and nothing with two readers or a non-homogeneous activation', async () => {
    const model = await readModel(await denoiserFiles());
    const { model: equalized, pairs } = equalizeChannels(model);
    expect(pairs).toEqual(['enc2 → dec1', 'dec1 → dec2']);
    // The last pair's kernels meet channel by channel (an earlier pair's B is A of the next).
    const [fromA, intoB] = [ranges(equalized, 'dec1/kernel', 3), ranges(equalized, 'dec2/kernel', 2)];
    fromA.forEach((r, c) => expect(r).toBeCloseTo(intoB[c]!, 6));
    // enc2's channels spanned 1/8 to 16 times each other; equalized, far less.
    const spread = (values: number[]) => Math.max(...values) / Math.min(...values);
    expect(spread(ranges(model, 'enc2/kernel', 3))).toBeGreaterThan(20);
    expect(spread(ranges(equalized, 'enc2/kernel', 3))).toBeLessThan(spread(ranges(model, 'enc2/kernel', 3)) / 4);
    for (const untouched of ['enc1/kernel', 'enc1/bias', 'dec2/bias', 'side/kernel', 'out/kernel']) {
      expect(equalized.weights.find((w) => w.name === untouched)!.values).toEqual(model.weights.find((w) => w.name === untouched)!.values);
    }
    // The same function in float32, loaded by stock TF.js.
    const inputs = calibration(4, 100);
    const reference = await outputs(float32Files(model), inputs);
    expect(snrDb(reference, await outputs(float32Files(equalized), inputs))).toBeGreaterThan(110);
  });

  it('equalizes the compiled graph model the same way: fused convolutions through ResizeNearestNeighbor, loaded by stock tf.loadGraphModel', async () => {
    const graph = compileToGraph(await readModel(await denoiserFiles())).model;
    const { model: equalized, pairs } = equalizeChannels(graph);
    expect(pairs).toEqual(['enc2 → dec1/BiasAdd', 'dec1/BiasAdd → dec2']);
    const inputs = calibration(4, 100);
    const reference = await outputs(float32Files(graph), inputs);
    expect(snrDb(reference, await outputs(float32Files(equalized), inputs))).toBeGreaterThan(110);
  });

  it('leaves models without a pair as they are', async () => {
    const single = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 2, activation: 'tanh' }), tfl.layers.dense({ units: 1 })] });
    const files = await modelFiles(single);
    single.dispose();
    expect(equalizeChannels(await readModel(files)).pairs).toEqual([]);
  });

  it.each([
    ['layers', ['enc2 → dec1', 'dec1 → dec2']],
    ['graph', ['enc2 → dec1/BiasAdd', 'dec1/BiasAdd → dec2']],
  ] as const)('a uint8 conversion (format %s) keeps it where it lowers the output noise, records it, and gains SNR on held-out inputs', async (format, expected) => {
    const files = await denoiserFiles();
    const convert = async (equalize: boolean) => {
      const details: string[] = [];
      const result = await convertModel(files, {
        name: 'denoiser',
        quantize: 'uint8',
        format,
        tolerance: Infinity,
        equalize,
        calibration: () => calibration(8, 1),
        onProgress: (p) => details.push(p.detail),
      });
      return { result, details };
    };
    const on = await convert(true);
    const off = await convert(false);
    expect(on.details.some((d) => /cross-layer equalization of 2 layer pair\(s\).*; kept/.test(d))).toBe(true);
    expect(on.result.metadata.optimizations?.equalized).toEqual(expected);
    expect(off.details.some((d) => /equalization/.test(d))).toBe(false);
    expect(off.result.metadata.optimizations?.equalized).toBeUndefined();
    // Equal bytes: equalization changes values, not what is stored.
    const bytes = (r: typeof on) => [...r.result.modelFiles.files.values()].reduce((sum, b) => sum + b.byteLength, 0) - r.result.modelFiles.files.get('model.json')!.byteLength;
    expect(bytes(on)).toBe(bytes(off));
    const heldOut = calibration(8, 500);
    const reference = await outputs(float32Files(await readModel(files)), heldOut);
    const gain = snrDb(reference, await outputs(on.result.modelFiles, heldOut)) - snrDb(reference, await outputs(off.result.modelFiles, heldOut));
    expect(gain).toBeGreaterThan(6);
  });
});

/** Grey 256×256 inputs in [0, 1] from fixture photos: each whole and mirrored. */
function photos(names: string[]): Calibration {
  const batches = names.flatMap((name) => {
    const image = decodeImage(readFileSync(fixturePath(`images/${name}`)), name, 50e6);
    const mirrored = { ...image, orientation: 2 };
    return [image, mirrored].map((view) => {
      const values = new Float32Array(256 * 256);
      imageToInput(view, { height: 256, width: 256, channels: 'grayscale', scale: 1 / 255, offset: 0 }, values);
      return [{ shape: [1, 256, 256, 1], dtype: 'float32' as const, values }];
    });
  });
  return { description: `${names.length} photos, whole and mirrored`, kind: 'data', batches, samples: batches.length };
}

describe.skipIf(!HAVE_FIXTURES)(`the keras-wild denoising autoencoder (image-to-image)${HAVE_FIXTURES ? '' : ` (${NO_FIXTURES_REASON})`}`, () => {
  it('auto:snr=60 is ≥ 3.5x smaller than float32 at ≥ 60 dB on held-out photos, loaded by stock tf.loadLayersModel', async () => {
    const files = readFixture('keras-wild/AryanMithbawkar__Denoicing-Images__autoencoder.keras');
    const result = await convertModel(files, { name: 'denoiser', quantize: 'auto:snr=60', calibration: () => photos(['cat.jpg', 'street.jpeg', 'photo_image02.jpeg', 'photo_image08.jpeg']) });
    expect(result.metadata.optimizations?.equalized).toHaveLength(4);
    expect(result.metadata.sizes.float32 / (result.metadata.sizes.converted - result.modelFiles.files.get('model.json')!.byteLength)).toBeGreaterThanOrEqual(3.5);
    const heldOut = photos(['dog.jpg', 'elephants.jpg', 'photo_image04.jpeg']);
    const reference = await outputs(float32Files(await readModel(files)), heldOut);
    expect(snrDb(reference, await outputs(result.modelFiles, heldOut))).toBeGreaterThanOrEqual(60);
  }, 600_000);
});
