// :classify and :regress over images, and the labels / image spec in v1 and v2 metadata: tiny
// models built here whose outputs read given pixels (so orientation and resize show), PNGs and
// JPEGs encoded here, and real photos through the nsfwjs MobileNetV2 fixture when it is present.
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { readInput } from '../../converter/read/files.ts';
import { createNodeApp } from '../../functions/node.ts';
import { encodeBase64 } from '../../shared/codecs.ts';
import { parseImageSpec } from '../../shared/options/image-spec.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { modelFiles } from '../../models/train/save.ts';
import { FIXTURES, HAVE_FIXTURES, NO_FIXTURES_REASON } from '../helpers/fixtures.ts';
import { greyJpeg, greyPng, topLeftWhite, withOrientation } from '../helpers/images.ts';
import { fixturePresent, MOBILENET_DIR } from '../helpers/publish-models.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

const store = new MemoryStore();
const SIZE = 4;

/** Input [4, 4, 1] → Flatten → Dense without bias whose units read the top-left, top-right and bottom-left pixels. */
async function cornerModel(units: number[]): Promise<Map<string, Uint8Array>> {
  const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [SIZE, SIZE, 1] }), tfl.layers.dense({ units: units.length, useBias: false, name: 'corners' })] });
  const kernel = new Float32Array(SIZE * SIZE * units.length);
  units.forEach((pixel, unit) => {
    kernel[pixel * units.length + unit] = 1;
  });
  model.setWeights([tf.tensor(kernel, [SIZE * SIZE, units.length])]);
  const files = await modelFiles(model);
  model.dispose();
  return files;
}

const TOP_LEFT = 0;
const TOP_RIGHT = SIZE - 1;
const BOTTOM_LEFT = SIZE * (SIZE - 1);
let app: ReturnType<typeof createNodeApp>['app'];

beforeAll(async () => {
  await useNodeBackend();
  const image = parseImageSpec(`${SIZE}x${SIZE},scale=${1 / 255}`);
  await convertAndPublish(store, await cornerModel([TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT]), { name: 'corners', quantize: 'none', samples: 2, labels: ['tl', 'tr', 'bl'], image });
  await convertAndPublish(store, await cornerModel([TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT]), { name: 'unlabelled', quantize: 'none', samples: 2 });
  await convertAndPublish(store, await cornerModel([TOP_LEFT]), { name: 'brightness', quantize: 'none', samples: 2, image });
  await convertAndPublish(store, await cornerModel([TOP_LEFT]), { name: 'binary', quantize: 'none', samples: 2, image, labels: ['dark', 'bright'] });
  await convertAndPublish(store, await tinyDenseModel(), { name: 'dense', samples: 2 });
  app = createNodeApp({ store, limits: { maxImagePixels: 4096 } }).app;
}, 120_000);

type Result = { result: [string, number][][] };
const post = (path: string, body: string | Uint8Array, type: string) =>
  app.request(path, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'Content-Type': type } });
const classifyJson = (model: string, images: Uint8Array[], extra: object = {}) =>
  post(`/v1/models/${model}:classify`, JSON.stringify({ examples: images.map((bytes) => ({ input: { b64: encodeBase64(bytes) } })), ...extra }), 'application/json');

describe('metadata', () => {
  it('v1 metadata answers edgeflow.labels and edgeflow.image (null when absent); v2 parameters.labels / image when present', async () => {
    const v1 = (await (await app.request('/v1/models/corners/metadata')).json()) as { edgeflow: Record<string, unknown> };
    expect(v1.edgeflow.labels).toEqual(['tl', 'tr', 'bl']);
    expect(v1.edgeflow.image).toEqual({ height: 4, width: 4, channels: 'grayscale', scale: 1 / 255, offset: 0 });
    const dense = (await (await app.request('/v1/models/dense/metadata')).json()) as { edgeflow: Record<string, unknown> };
    expect([dense.edgeflow.labels, dense.edgeflow.image]).toEqual([null, null]);
    const v2 = (await (await app.request('/v2/models/corners/versions/1')).json()) as { parameters: Record<string, unknown> };
    expect(v2.parameters.labels).toEqual(['tl', 'tr', 'bl']);
    expect(v2.parameters.image).toEqual({ height: 4, width: 4, channels: 'grayscale', scale: 1 / 255, offset: 0 });
    const v2Dense = (await (await app.request('/v2/models/dense')).json()) as { parameters: Record<string, unknown> };
    expect('labels' in v2Dense.parameters || 'image' in v2Dense.parameters).toBe(false);
  });

  it('infers the image spec of an [-1, H, W, 1] input left without --image (channels from the last dim, pixels as they are)', async () => {
    const v1 = (await (await app.request('/v1/models/unlabelled/metadata')).json()) as { edgeflow: Record<string, unknown> };
    expect(v1.edgeflow).toMatchObject({ labels: null, image: { height: 4, width: 4, channels: 'grayscale', scale: 1, offset: 0 } });
  });
});

describe(':classify', () => {
  it('classifies a raw PNG body: labels sorted by score, Server-Timing as predict', async () => {
    const response = await post('/v1/models/corners:classify', greyPng(topLeftWhite(SIZE)), 'image/png');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      result: [
        [
          ['tl', 1],
          ['tr', 0],
          ['bl', 0],
        ],
      ],
    });
    expect(response.headers.get('server-timing')).toMatch(/^read;dur=[\d.]+,parse;dur=[\d.]+,load;dur=[\d.]+,decode;dur=[\d.]+,infer;dur=[\d.]+,encode;dur=[\d.]+$/);
  });

  it('resizes a larger JPEG to the spec and takes TF Serving JSON with several examples and top_k', async () => {
    const bottomLeft = topLeftWhite(32).reverse();
    const response = await classifyJson('corners', [greyJpeg(topLeftWhite(32)), greyPng(bottomLeft)], { top_k: 1 });
    expect(response.status).toBe(200);
    const { result } = (await response.json()) as Result;
    expect(result.map((r) => r.length)).toEqual([1, 1]);
    expect(result.map((r) => r[0]![0])).toEqual(['tl', 'bl']);
    expect(result[0]![0]![1]).toBeGreaterThan(0.97);
    const query = (await (await post('/v1/models/corners:classify?top_k=2', greyPng(bottomLeft), 'image/png')).json()) as Result;
    expect(query.result[0]!.map(([label]) => label)).toEqual(['bl', 'tl']);
  });

  it('turns a JPEG upright by its EXIF orientation before resizing', async () => {
    const stored = greyJpeg(topLeftWhite(16));
    const top = async (orientation: number) => ((await (await post('/v1/models/corners:classify?top_k=1', withOrientation(stored, orientation), 'image/jpeg')).json()) as Result).result[0]![0]![0];
    // 6: rotated 90° clockwise for display, so the stored top-left corner shows top-right; 8: bottom-left.
    expect([await top(1), await top(6), await top(8)]).toEqual(['tl', 'tr', 'bl']);
  });

  it('a one-unit binary output with two labels answers both: p for the second, 1 - p for the first, sorted', async () => {
    const classify = async (rows: number[][]) => ((await (await post('/v1/models/binary:classify', greyPng(rows), 'image/png')).json()) as Result).result[0]!;
    const bright = await classify(topLeftWhite(SIZE));
    expect(bright.map(([label]) => label)).toEqual(['bright', 'dark']);
    expect(bright[0]![1]).toBeCloseTo(1, 5);
    expect(bright[1]![1]).toBeCloseTo(0, 5);
    const dark = await classify(Array.from({ length: SIZE }, () => Array(SIZE).fill(0)));
    expect(dark).toEqual([
      ['dark', 1],
      ['bright', 0],
    ]);
  });

  it('answers class indices as labels when the model has none', async () => {
    const { result } = (await (await post('/v1/models/unlabelled:classify', greyPng(topLeftWhite(SIZE)), 'image/png')).json()) as Result;
    expect(result[0]![0]).toEqual(['0', 255]);
  });

  it('refuses what it cannot classify, naming the problem', async () => {
    const error = async (response: Response) => [response.status, ((await response.json()) as { error: string }).error];
    expect(await error(await post('/v1/models/dense:classify', greyPng(topLeftWhite(SIZE)), 'image/png'))).toEqual([400, 'model dense has no image spec: convert it with --image HxW']);
    expect(await error(await post('/v1/models/corners:classify', 'hello', 'text/plain'))).toEqual([
      415,
      'Content-Type text/plain: send image/jpeg, image/png, or application/json with {"examples": [{"<input>": {"b64": ...}}]}: edgeflow decodes JPEG and PNG images',
    ]);
    expect(await error(await post('/v1/models/corners:classify', new TextEncoder().encode('GIF89a\x01\x00\x01\x00'), 'image/png'))).toEqual([
      415,
      'body: a GIF image: edgeflow decodes JPEG and PNG images',
    ]);
    const jpegBytes = greyJpeg(topLeftWhite(16));
    expect(await error(await classifyJson('corners', [jpegBytes.subarray(0, 30)]))).toEqual([400, 'examples[0].input.b64: corrupt JPEG (no frame header with its size; truncated?)']);
    expect(await error(await post('/v1/models/corners:classify', greyPng(topLeftWhite(128)), 'image/png'))).toEqual([
      413,
      'body: a 128x128 image (16384 pixels) exceeds the limit of 4096 pixels: send it downscaled',
    ]);
    expect(await error(await post('/v1/models/corners:classify?top_k=0', greyPng(topLeftWhite(SIZE)), 'image/png'))).toEqual([400, 'top_k: expected a positive integer, got "0"']);
    expect(await error(await post('/v1/models/corners:classify', JSON.stringify({ examples: [{ input: [1, 2] }] }), 'application/json'))).toEqual([
      400,
      'examples[0].input: expected {"b64": "<JPEG or PNG bytes, base64>"}',
    ]);
    expect(await error(await app.request('/v1/models/corners:classify'))).toEqual([405, 'classify needs POST']);
    expect(await error(await post('/v1/models/corners:regress', greyPng(topLeftWhite(SIZE)), 'image/png'))).toEqual([
      400,
      'regress: output corners has shape [1, 3]; regress needs [batch] or [batch, 1]',
    ]);
  });
});

describe(':regress', () => {
  it('answers one value per example of a single-output regressor', async () => {
    const response = await post(
      '/v1/models/brightness:regress',
      JSON.stringify({ examples: [topLeftWhite(SIZE), topLeftWhite(SIZE).reverse()].map((rows) => ({ x: { b64: encodeBase64(greyPng(rows)) } })) }),
      'application/json',
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ result: [1, 0] });
  });
});

describe.skipIf(!HAVE_FIXTURES)('real photos through the nsfwjs MobileNetV2 (224x224 rgb, scale 1/255)', () => {
  it('classifies JPEG photos into its five classes, sorted, scores summing to 1', async () => {
    expect(await fixturePresent()).toBe(true);
    const labels = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];
    await convertAndPublish(store, await readInput(MOBILENET_DIR), { name: 'nsfw', samples: 2, labels, image: parseImageSpec('224x224,scale=0.00392156862745098') });
    const photos = await Promise.all(['cat.jpg', 'street.jpeg'].map((file) => readFile(`${FIXTURES}/images/${file}`)));
    const { app: photoApp } = createNodeApp({ store });
    const body = JSON.stringify({ examples: photos.map((bytes) => ({ input_1: { b64: encodeBase64(new Uint8Array(bytes)) } })) });
    const response = await photoApp.request('/v1/models/nsfw:classify', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    expect(response.status).toBe(200);
    const { result } = (await response.json()) as Result;
    for (const ranked of result) {
      expect(ranked.map(([label]) => label).sort()).toEqual(labels);
      expect(ranked.map(([, score]) => score)).toEqual([...ranked.map(([, score]) => score)].sort((a, b) => b - a));
      expect(ranked.reduce((sum, [, score]) => sum + score, 0)).toBeCloseTo(1, 3);
      // Both photos score over 0.98 Neutral on a stock TF.js pipeline (dog.jpg is borderline for this model: left out).
      expect(ranked[0]![0]).toBe('Neutral');
    }
  }, 300_000);
});
it.skipIf(HAVE_FIXTURES)(`real photos: ${NO_FIXTURES_REASON}`, () => {});
